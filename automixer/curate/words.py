"""Words of a text exactly as datatrove's spaCy word tokenizer splits them, at a fraction of its cost."""

import re
from bisect import bisect_left, bisect_right
from itertools import chain, compress
from operator import itemgetter, not_
from typing import Any, NamedTuple

from datatrove.utils.text import PUNCTUATION_SET, split_into_words


class WordStats(NamedTuple):
    """A text's word tokens with the per-word counts Gopher quality needs."""

    words: list[str]
    n_non_symbol: int  # words with a character outside datatrove's PUNCTUATION_SET
    non_symbol_chars: int  # total length of those words
    n_alpha: int  # words with an alphabetic character


def _chunk_entry(tokens: tuple[str, ...]) -> tuple:
    """Cache entry of one chunk: its tokens and their Gopher counts."""
    lengths = [len(w) for w in tokens if not PUNCTUATION_SET.issuperset(w)]
    return tokens, len(lengths), sum(lengths), sum(1 for w in tokens if any(c.isalpha() for c in w))


def _can_match(items: Any, alphabet: frozenset[str]) -> bool:
    """Whether a parsed regex may match some string (empty included) made only of `alphabet`; conservative."""
    from re import _constants as c  # type: ignore[attr-defined]

    for op, av in items:
        if op is c.LITERAL:
            ok = chr(av) in alphabet
        elif op is c.IN:
            ok = _class_hits(av, alphabet)
        elif op is c.BRANCH:
            ok = any(_can_match(b, alphabet) for b in av[1])
        elif op is c.SUBPATTERN:
            ok = bool(av[1] & re.IGNORECASE) or _can_match(av[3], alphabet)
        elif op in (c.MAX_REPEAT, c.MIN_REPEAT, c.POSSESSIVE_REPEAT):
            ok = av[0] == 0 or _can_match(av[2], alphabet)
        elif op is c.ASSERT:
            ok = _can_match(av[1], alphabet)
        elif op is c.ATOMIC_GROUP:
            ok = _can_match(av, alphabet)
        else:  # anchors, negative look-arounds, back references, `.`: assume they may match
            ok = True
        if not ok:
            return False
    return True


def _class_hits(items: Any, alphabet: frozenset[str]) -> bool:
    """Whether some character of `alphabet` belongs to a parsed character class (`[...]`)."""
    from re import _constants as c  # type: ignore[attr-defined]

    codes = sorted(map(ord, alphabet))
    negate, covered = False, set()
    for op, av in items:
        if op is c.NEGATE:
            negate = True
        elif op is c.LITERAL:
            covered.update({chr(av)} & alphabet)
        elif op is c.RANGE:
            lo, hi = bisect_left(codes, av[0]), bisect_right(codes, av[1])
            covered.update(map(chr, codes[lo:hi]))
        elif op is c.CATEGORY and av.name in _CATEGORIES:
            covered.update(ch for ch in alphabet if re.fullmatch(_CATEGORIES[av.name], ch))
        else:
            return True
    return len(covered) < len(alphabet) if negate else bool(covered)


_CATEGORIES = {
    "CATEGORY_DIGIT": r"\d",
    "CATEGORY_NOT_DIGIT": r"\D",
    "CATEGORY_SPACE": r"\s",
    "CATEGORY_NOT_SPACE": r"\S",
    "CATEGORY_WORD": r"\w",
    "CATEGORY_NOT_WORD": r"\W",
}
# candidate alphabets for chunks that are one token as they stand (checked against the tokenizer's rules)
_ALPHABETS = (
    frozenset(ch for ch in map(chr, range(0x2000)) if ch.isalpha()),
    frozenset("0123456789"),
)


def _plain_alphabets(tokenizer: Any) -> list[frozenset[str]]:
    """The alphabets no prefix, suffix or infix rule of a spaCy tokenizer can match a character of."""
    from re import _parser  # type: ignore[attr-defined]

    patterns = []
    for fn in (tokenizer.prefix_search, tokenizer.suffix_search, tokenizer.infix_finditer):
        pattern = getattr(fn, "__self__", None)
        if fn is not None and (not isinstance(pattern, re.Pattern) or pattern.flags & ~re.UNICODE):
            return []
        if fn is not None:
            patterns.append(_parser.parse(pattern.pattern, pattern.flags))
    try:
        return [a for a in _ALPHABETS if not any(_can_match(p, a) for p in patterns)]
    except Exception:  # an unexpected regex construct: no shortcut, spaCy tokenizes every chunk
        return []


def _split_alternatives(source: str) -> list[str]:
    """The top-level `|`-separated alternatives of a regex source (escapes, classes and groups respected)."""
    parts, depth, start, i, in_class = [], 0, 0, 0, False
    while i < len(source):
        ch = source[i]
        if ch == "\\":
            i += 1
        elif in_class:
            in_class = ch != "]"
        elif ch == "[":
            in_class = True
            i += source.startswith("^", i + 1)
            i += source.startswith("]", i + 1)
        elif ch in "()":
            depth += 1 if ch == "(" else -1
        elif ch == "|" and depth == 0:
            parts.append(source[start:i])
            start = i + 1
        i += 1
    return [*parts, source[start:]]


def _edge_atoms(items: Any, last: bool) -> list | None:
    """Literal/class nodes one of which the first (`last`: final) consumed character must match; None if unknown."""
    from re import _constants as c  # type: ignore[attr-defined]

    for op, av in reversed(items) if last else items:
        if op in (c.AT, c.ASSERT, c.ASSERT_NOT):
            continue
        if op in (c.LITERAL, c.IN):
            return [(op, av)]
        if op is c.SUBPATTERN and not av[1] & re.IGNORECASE:
            return _edge_atoms(list(av[3]), last)
        if op is c.BRANCH:
            found = [_edge_atoms(list(b), last) for b in av[1]]
            return None if any(f is None for f in found) else [a for f in found for a in f]
        if op in (c.MAX_REPEAT, c.MIN_REPEAT, c.POSSESSIVE_REPEAT) and av[0] >= 1:
            return _edge_atoms(list(av[2]), last)
        return None
    return None


def _char_test(atoms: list | None, flags: int) -> re.Pattern | None:
    """A regex matching exactly the single characters one of the atoms matches (None: unknown atoms)."""
    from re import _constants as c  # type: ignore[attr-defined]

    if atoms is None:
        return None
    sources = []
    for op, av in atoms:
        if op is c.LITERAL:
            sources.append(f"\\U{av:08x}")
            continue
        parts = []
        for i, (item, value) in enumerate(av):
            if item is c.NEGATE and i == 0:
                parts.append("^")
            elif item is c.LITERAL:
                parts.append(f"\\U{value:08x}")
            elif item is c.RANGE:
                parts.append(f"\\U{value[0]:08x}-\\U{value[1]:08x}")
            elif item is c.CATEGORY and value.name in _CATEGORIES:
                parts.append(_CATEGORIES[value.name])
            else:
                return None
        sources.append(f"[{''.join(parts)}]")
    return re.compile("|".join(sources), flags)


class _AlternativeDispatch:
    """A drop-in for a spaCy affix regex's `search` (suffix: keyed by the last character) or `finditer`
    (infix: keyed by the characters outside `plain`), running only the alternatives that could match.

    An alternative is skipped only when no character of the string can be the one it must consume first
    (infix) or last (suffix, every alternative anchored by `$`), so results equal the full regex's.
    """

    max_compiled = 12  # compiling a subset of a big affix regex takes ~10 ms

    def __init__(self, pattern: re.Pattern, suffix: bool, plain: frozenset[str]) -> None:
        from re import _constants as c  # type: ignore[attr-defined]
        from re import _parser

        if pattern.flags & ~re.UNICODE or "(?P=" in pattern.pattern or re.search(r"\\\d", pattern.pattern):
            raise ValueError("unsupported regex")
        self.pattern, self.plain = pattern, plain
        self.sources = _split_alternatives(pattern.pattern)
        self.tests: list[re.Pattern | None] = []
        for source in self.sources:
            items = list(_parser.parse(source, pattern.flags))
            if suffix:
                anchored = bool(items) and items[-1] == (c.AT, c.AT_END)
                test = _char_test(_edge_atoms(items[:-1], last=True), pattern.flags) if anchored else None
            else:
                test = _char_test(_edge_atoms(items, last=False), pattern.flags)
                test = None if test is not None and any(test.fullmatch(ch) for ch in plain) else test
            self.tests.append(test)
        self._always = frozenset(i for i, t in enumerate(self.tests) if t is None)
        self._by_char: dict[str, frozenset[int]] = {}
        self._by_key: dict = {}
        self._compiled: dict[frozenset[int], re.Pattern] = {}

    def _regex(self, key: str | frozenset[str]) -> re.Pattern | None:
        """The regex of the alternatives that could match a string whose key characters are `key`."""
        if len(self._by_key) > 100_000:
            self._by_key.clear()
        keep = set(self._always)
        for ch in key:
            if ch not in self._by_char:
                self._by_char[ch] = frozenset(i for i, t in enumerate(self.tests) if t is not None and t.fullmatch(ch))
            keep.update(self._by_char[ch])
        self._by_key[key] = regex = self._pick(frozenset(keep))
        return regex

    def _pick(self, keep: frozenset[int]) -> re.Pattern | None:
        """A compiled regex of `keep`'s alternatives, or of the fewest extra ones (they cannot match either)."""
        if not keep:
            return None
        if keep not in self._compiled:
            supersets = [k for k in self._compiled if k >= keep]
            if supersets or len(self._compiled) >= self.max_compiled:
                return self._compiled[min(supersets, key=len)] if supersets else self.pattern
            source = "|".join(self.sources[i] for i in sorted(keep))
            self._compiled[keep] = re.compile(source, self.pattern.flags)
        return self._compiled[keep]

    def search(self, string: str) -> re.Match | None:
        """`pattern.search(string)` for a suffix regex."""
        if not string or string[-1] == "\n":
            return self.pattern.search(string)
        key = string[-1]
        regex = self._by_key[key] if key in self._by_key else self._regex(key)
        return None if regex is None else regex.search(string)

    def finditer(self, string: str) -> Any:
        """`pattern.finditer(string)` for an infix regex."""
        key = frozenset(string).difference(self.plain)
        regex = self._by_key[key] if key in self._by_key else self._regex(key)
        return iter(()) if regex is None else regex.finditer(string)


def _speed_up_affixes(tokenizer: Any, plain: frozenset[str]) -> None:
    """Swap a tokenizer's suffix and infix regexes for equivalent dispatchers (left as they are if unsupported)."""
    try:
        suffix = _AlternativeDispatch(tokenizer.suffix_search.__self__, suffix=True, plain=plain)
        infix = _AlternativeDispatch(tokenizer.infix_finditer.__self__, suffix=False, plain=plain)
    except (AttributeError, ValueError, re.error):
        return
    tokenizer.suffix_search = suffix.search
    tokenizer.infix_finditer = infix.finditer


class CachedWordTokenizer:
    """Words of a text exactly as datatrove's `split_into_words(text, language)` returns them, memoised per chunk.

    spaCy's rule-based tokenizer splits the text at whitespace first and tokenizes each whitespace-free
    chunk on its own (no tokenizer exception of a blank pipeline contains whitespace with other text), so
    the words of a text are the concatenated words of its `str.split()` chunks. A chunk no exception,
    prefix, suffix or infix rule applies to is one token (the rules' regexes are checked, once, to match
    no character of its alphabet); every other distinct chunk is tokenized by spaCy once. Languages whose
    tokenizer is not rule-based spaCy use datatrove directly.
    """

    def __init__(self, language: str, max_cache: int = 1_000_000) -> None:
        self.language = language
        self.max_cache = max_cache
        self._cache: dict[str, tuple] = {}
        self._nlp: Any = None
        self._fast: bool | None = None
        self._rules: dict = {}
        self._alphabets: list[frozenset[str]] = []

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_cache": {}, "_nlp": None, "_fast": None, "_rules": {}, "_alphabets": []}

    def _load(self) -> None:
        from datatrove.utils.word_tokenizers import SpaCyTokenizer, load_word_tokenizer
        from spacy.tokenizer import Tokenizer

        tok = load_word_tokenizer(self.language)
        self._fast = False
        if type(tok) is SpaCyTokenizer and tok.config is None:
            self._nlp = SpaCyTokenizer(tok.language).tokenizer
            self._fast = type(self._nlp.tokenizer) is Tokenizer
        rules = self._nlp.tokenizer.rules if self._fast else {}
        if any(not r.isspace() and len(r.split()) != 1 for r in rules):  # an exception spanning whitespace
            self._fast = False
        if self._fast:
            self._nlp.vocab.lex_attr_getters = {}  # lexical attributes play no part in splitting
            self._rules = self._nlp.tokenizer.rules
            self._alphabets = _plain_alphabets(self._nlp.tokenizer)
            _speed_up_affixes(self._nlp.tokenizer, frozenset().union(*self._alphabets))

    def _new_entries(self, missing: list[str]) -> dict[str, tuple] | None:
        """Cache entries for chunks not seen yet (also cached); None when spaCy did not split them one by one."""
        if len(self._cache) + len(missing) > self.max_cache:
            self._cache.clear()
        entries, hard = {}, []
        for chunk in missing:
            if chunk not in self._rules and any(a.issuperset(chunk) for a in self._alphabets):
                plain = not PUNCTUATION_SET.issuperset(chunk)
                entries[chunk] = ((chunk,), int(plain), len(chunk) * plain, int(any(map(str.isalpha, chunk))))
            else:
                hard.append(chunk)
        groups: list[tuple[str, ...]] = []
        current: list[str] = []
        if hard:
            # one call for all new chunks; the newline tokens between them keep every chunk on its own
            joined = "\n".join(hard)
            with self._nlp.memory_zone():
                spans = self._nlp.tokenizer(joined).to_array(["IDX", "LENGTH"]).tolist()
            for start, length in spans:
                if joined[start] == "\n":
                    groups.append(tuple(current))
                    current = []
                else:
                    current.append(joined[start : start + length])
            groups.append(tuple(current))
            if len(groups) != len(hard) or not all(groups):
                return None
        entries.update((chunk, _chunk_entry(g)) for chunk, g in zip(hard, groups, strict=True))
        self._cache.update(entries)
        return entries

    def _parts(self, chunks: list[str]) -> list[tuple] | None:
        """The cache entry of every chunk, tokenizing the new ones; None when spaCy must see the whole text."""
        parts = list(map(self._cache.get, chunks))
        if None not in parts:
            return parts
        try:
            entries = self._new_entries(list(dict.fromkeys(compress(chunks, map(not_, parts)))))
        except Exception:  # datatrove retries odd texts its own way: defer to it
            return None
        if entries is None:
            return None
        return [entries[c] if p is None else p for c, p in zip(chunks, parts, strict=True)]

    def analyze(self, text: str) -> WordStats:
        """The word tokens of `text` (datatrove's spaCy tokenization) and their Gopher counts."""
        if self._fast is None:
            self._load()
        parts = self._parts(text.split()) if self._fast else None
        if parts is None:
            words = list(split_into_words(text, self.language))
            _, n_non_symbol, chars, n_alpha = _chunk_entry(tuple(words))
            return WordStats(words, n_non_symbol, chars, n_alpha)
        words = list(chain.from_iterable(map(itemgetter(0), parts)))
        return WordStats(words, *(sum(map(itemgetter(i), parts)) for i in (1, 2, 3)))
