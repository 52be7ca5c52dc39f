"""Words of a text exactly as datatrove's spaCy word tokenizer splits them, at a fraction of its cost."""

from functools import lru_cache
from itertools import chain, compress
from operator import itemgetter, not_
from typing import Any, NamedTuple

from datatrove.utils.text import PUNCTUATION_SET, split_into_words

from automixer.curate.spacy_affixes import plain_alphabets, speed_up_affixes


class WordStats(NamedTuple):
    """A text's word tokens with the per-word counts Gopher quality needs."""

    words: list[str]
    n_non_symbol: int  # words with a character outside datatrove's PUNCTUATION_SET
    non_symbol_chars: int  # total length of those words
    n_alpha: int  # words with an alphabetic character


@lru_cache(maxsize=1 << 16)
def _token_counts(word: str) -> tuple[int, int, int]:
    """Gopher's per-word counts: (has a non-punctuation character, its length if so, has a letter)."""
    plain = not PUNCTUATION_SET.issuperset(word)
    return int(plain), len(word) * plain, int(any(map(str.isalpha, word)))


def _chunk_entry(tokens: tuple[str, ...]) -> tuple:
    """Cache entry of one chunk: its tokens and their summed Gopher counts."""
    counts = list(map(_token_counts, tokens))
    return tokens, *(sum(map(itemgetter(i), counts)) for i in (0, 1, 2))


class CachedWordTokenizer:
    """Words of a text exactly as datatrove's `split_into_words(text, language)` returns them, memoised per chunk.

    spaCy's rule-based tokenizer splits the text at whitespace first and tokenizes each whitespace-free
    chunk on its own (no tokenizer exception of a blank pipeline contains whitespace with other text), so
    the words of a text are the concatenated words of its `str.split()` chunks. A chunk no exception,
    prefix, suffix or infix rule applies to is one token (the rules' regexes are proven, once, to match
    no string of its alphabet); a chunk that one prefix/suffix split turns into such a word is split as
    spaCy's `_split_affixes` would; every other distinct chunk is tokenized by spaCy once (suffix and infix
    regexes sped up by `AlternativeDispatch`). Languages whose tokenizer is not rule-based spaCy use
    datatrove directly.
    """

    def __init__(self, language: str, max_cache: int = 1_000_000) -> None:
        self.language = language
        self.max_cache = max_cache
        self._cache: dict[str, tuple] = {}
        self._nlp: Any = None
        self._fast: bool | None = None
        self._rules: dict = {}
        self._alphabets: list[frozenset[str]] = []
        self._plain: tuple[frozenset[str], frozenset[str]] = (frozenset(), frozenset())
        self._affix_shortcut = False

    def __getstate__(self) -> dict:
        """Pickle without the spaCy pipeline and caches (rebuilt on first use)."""
        return {
            **self.__dict__,
            "_cache": {},
            "_nlp": None,
            "_fast": None,
            "_rules": {},
            "_alphabets": [],
            "_plain": (frozenset(), frozenset()),
            "_affix_shortcut": False,
        }

    def _load(self) -> None:
        """Build our own copy of datatrove's spaCy tokenizer for the language and prove its shortcuts."""
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
            self._alphabets = plain_alphabets(self._nlp.tokenizer)
            self._plain = (*self._alphabets, frozenset(), frozenset())[:2]
            speed_up_affixes(self._nlp.tokenizer, frozenset().union(*self._alphabets))
            tokenizer = self._nlp.tokenizer
            self._affix_shortcut = tokenizer.token_match is None and tokenizer.prefix_search is not None
            self._affix_shortcut &= tokenizer.suffix_search is not None

    def _is_plain(self, text: str) -> bool:
        """Whether all characters of `text` are in one alphabet no affix rule can match."""
        return bool(text) and (self._plain[0].issuperset(text) or self._plain[1].issuperset(text))

    def _affix_split(self, chunk: str) -> tuple[str, ...] | None:
        """spaCy's tokens for a chunk whose first affix pass leaves a plain word (as in `_split_affixes`), else None.

        After one pass splitting a prefix and/or a suffix, a plain, non-exception core is final: no affix
        or infix rule applies to it. Any exception on the way (which spaCy would apply) defers to spaCy.
        """
        tokenizer, rules = self._nlp.tokenizer, self._rules
        if not self._affix_shortcut or chunk in rules:
            return None
        match = tokenizer.prefix_search(chunk)
        pre = match.end() - match.start() if match else 0
        if pre and chunk[pre:] in rules:
            return None
        match = tokenizer.suffix_search(chunk[pre:])
        suf = match.end() - match.start() if match else 0
        if suf and chunk[:-suf] in rules:
            return None
        if pre and suf and pre + suf <= len(chunk):
            parts, core = (chunk[:pre], chunk[pre:-suf], chunk[-suf:]), chunk[pre:-suf]
        elif pre or suf:
            parts = (chunk[:pre], chunk[pre:]) if pre else (chunk[:-suf], chunk[-suf:])
            core = parts[1] if pre else parts[0]
        else:
            return None
        if core in rules or not self._is_plain(core) or any(len(rules.get(t, ())) > 1 for t in parts):
            return None
        return parts

    def _new_entries(self, missing: list[str]) -> dict[str, tuple] | None:
        """Cache entries for chunks not seen yet (also cached); None when spaCy did not split them one by one."""
        if len(self._cache) + len(missing) > self.max_cache:
            self._cache.clear()
        entries, hard = {}, []
        first, second = self._plain
        edge = first | second
        for chunk in missing:
            if (first.issuperset(chunk) or second.issuperset(chunk)) and chunk not in self._rules:
                entries[chunk] = ((chunk,), 1, len(chunk), int(chunk[0].isalpha()))  # see spacy_affixes.ALPHABETS
            elif (chunk[0] not in edge or chunk[-1] not in edge) and (split := self._affix_split(chunk)):
                entries[chunk] = _chunk_entry(split)
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
