"""Proofs about, and a faster drop-in for, the affix regexes of a spaCy rule-based tokenizer.

`plain_alphabets` finds the alphabets (letters; digits) whose strings no prefix, suffix or infix rule can
match, by walking the parsed regexes; a chunk made of one of them is a single token. `AlternativeDispatch`
answers the suffix and infix regexes by running only the alternatives that could match the string.
"""

import re
from bisect import bisect_left, bisect_right
from typing import Any

from datatrove.utils.text import PUNCTUATION_SET


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
# candidate alphabets for chunks that are one token as they stand (checked against the tokenizer's rules);
# each is all letters or all non-letters and shares no character with datatrove's PUNCTUATION_SET
ALPHABETS = (
    frozenset(ch for ch in map(chr, range(0x2000)) if ch.isalpha()) - PUNCTUATION_SET,
    frozenset("0123456789") - PUNCTUATION_SET,
)


def plain_alphabets(tokenizer: Any) -> list[frozenset[str]]:
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
        return [a for a in ALPHABETS if not any(_can_match(p, a) for p in patterns)]
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


class AlternativeDispatch:
    """A drop-in for a spaCy affix regex's `search` (suffix: keyed by the last character) or `finditer`
    (infix: keyed by the characters outside `plain`), running only the alternatives that could match.

    An alternative is skipped only when no character of the string can be the one it must consume first
    (infix) or last (suffix, every alternative anchored by `$`). The rest run one by one: an alternation's
    leftmost match is the earliest-starting match of its alternatives, ties going to the first listed.
    """

    def __init__(self, pattern: re.Pattern, suffix: bool, plain: frozenset[str]) -> None:
        from re import _constants as c  # type: ignore[attr-defined]
        from re import _parser

        if pattern.flags & ~re.UNICODE or re.search(r"\(\?P=|\(\?\(|\\\d", pattern.pattern):  # group references
            raise ValueError("unsupported regex")
        self.pattern, self.plain = pattern, plain
        self.alternatives = [re.compile(source, pattern.flags) for source in _split_alternatives(pattern.pattern)]
        self.tests: list[re.Pattern | None] = []
        for alternative in self.alternatives:
            items = list(_parser.parse(alternative.pattern, pattern.flags))
            if suffix:
                anchored = bool(items) and items[-1] == (c.AT, c.AT_END)
                test = _char_test(_edge_atoms(items[:-1], last=True), pattern.flags) if anchored else None
            else:
                test = _char_test(_edge_atoms(items, last=False), pattern.flags)
                test = None if test is not None and any(test.fullmatch(ch) for ch in plain) else test
            self.tests.append(test)
        self._by_char: dict[str, tuple[int, ...]] = {}
        self._by_key: dict = {}

    def _relevant(self, key: str | frozenset[str]) -> tuple[re.Pattern, ...] | None:
        """The alternatives that could match a string with these key characters (None: any may match empty)."""
        if len(self._by_key) > 100_000:
            self._by_key.clear()
        keep = {i for i, t in enumerate(self.tests) if t is None}
        for ch in key:
            if ch not in self._by_char:
                self._by_char[ch] = tuple(i for i, t in enumerate(self.tests) if t is not None and t.fullmatch(ch))
            keep.update(self._by_char[ch])
        unknown = any(self.tests[i] is None for i in keep)
        self._by_key[key] = found = None if unknown else tuple(self.alternatives[i] for i in sorted(keep))
        return found

    def search(self, string: str) -> re.Match | None:
        """`pattern.search(string)` for a suffix regex."""
        if not string or string[-1] == "\n":
            return self.pattern.search(string)
        key = string[-1]
        alternatives = self._by_key[key] if key in self._by_key else self._relevant(key)
        if alternatives is None:
            return self.pattern.search(string)
        best = None
        for alternative in alternatives:
            match = alternative.search(string)
            if match is not None and (best is None or match.start() < best.start()):
                best = match
        return best

    def finditer(self, string: str) -> Any:
        """`pattern.finditer(string)` for an infix regex (every kept alternative consumes a character)."""
        key = frozenset(string).difference(self.plain)
        alternatives = self._by_key[key] if key in self._by_key else self._relevant(key)
        if alternatives is None:
            return self.pattern.finditer(string)
        if len(alternatives) <= 1:
            return alternatives[0].finditer(string) if alternatives else iter(())
        found, pending = [], [a.search(string) for a in alternatives]
        while any(m is not None for m in pending):
            best = min((m for m in pending if m is not None), key=lambda m: m.start())  # first listed on ties
            found.append(best)
            end = best.end()
            pending = [
                m if m is None or m.start() >= end else alternatives[i].search(string, end)
                for i, m in enumerate(pending)
            ]
        return iter(found)


def speed_up_affixes(tokenizer: Any, plain: frozenset[str]) -> None:
    """Swap a tokenizer's suffix and infix regexes for equivalent dispatchers (left as they are if unsupported)."""
    try:
        suffix = AlternativeDispatch(tokenizer.suffix_search.__self__, suffix=True, plain=plain)
        infix = AlternativeDispatch(tokenizer.infix_finditer.__self__, suffix=False, plain=plain)
    except (AttributeError, ValueError, re.error):
        return
    tokenizer.suffix_search = suffix.search
    tokenizer.infix_finditer = infix.finditer
