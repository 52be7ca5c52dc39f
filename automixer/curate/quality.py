"""Fast web quality filter: datatrove's Gopher quality, Gopher repetition, C4 and FineWeb rules in one step.

`FastWebQualityFilter` keeps and drops exactly the documents datatrove's four blocks drop when chained in
that order (same first reason, same C4-modified text), but tokenizes each text once instead of once per
block and skips work whose result cannot change a decision. The quality signals it computed are stored
on `doc.metadata` under the keys in `QUALITY_SIGNALS` (NaN for a rule never reached or switched off):

- `n_words`: Gopher word count (tokens with a non-punctuation character); `mean_word_length` of those
- `hash_word_ratio`, `ellipsis_word_ratio`: "#" and "..."/"…" counts per token
- `frac_lines_bullet`, `frac_lines_end_ellipsis`: lines starting with a bullet / ending with an ellipsis
- `frac_words_alpha`: tokens with an alphabetic character; `n_stop_words`: distinct stop words present
- `dup_para_frac`, `dup_para_char_frac`, `dup_line_frac`, `dup_line_char_frac`: Gopher duplicate fractions
- `top_ngram_char_frac`, `dup_ngram_char_frac`: the largest top / duplicated n-gram character fractions
  over the n evaluated
- `c4_lines_kept_frac`: fraction of lines C4 kept
- `line_punct_ratio`, `short_line_ratio`, `char_dup_ratio`, `list_ratio`: FineWeb's ratios
"""

import math
from collections import Counter
from itertools import accumulate, compress
from typing import Any

from datatrove.data import Document
from datatrove.pipeline.filters.base_filter import BaseFilter
from datatrove.pipeline.filters.c4_filters import (
    CITATION_REGEX,
    ELLIPSIS,
    END_PUNCTUATION,
    POLICY_SUBSTRINGS,
    C4QualityFilter,
)
from datatrove.pipeline.filters.fineweb_quality_filter import FineWebQualityFilter
from datatrove.pipeline.filters.gopher_quality_filter import GopherQualityFilter
from datatrove.pipeline.filters.gopher_repetition_filter import GopherRepetitionFilter, find_duplicates
from datatrove.pipeline.writers.disk_base import DiskWriter
from datatrove.utils.text import split_into_sentences

from automixer.curate.words import CachedWordTokenizer, WordStats

QUALITY_SIGNALS: tuple[str, ...] = (
    "n_words",
    "mean_word_length",
    "hash_word_ratio",
    "ellipsis_word_ratio",
    "frac_lines_bullet",
    "frac_lines_end_ellipsis",
    "frac_words_alpha",
    "n_stop_words",
    "dup_para_frac",
    "dup_para_char_frac",
    "dup_line_frac",
    "dup_line_char_frac",
    "top_ngram_char_frac",
    "dup_ngram_char_frac",
    "c4_lines_kept_frac",
    "line_punct_ratio",
    "short_line_ratio",
    "char_dup_ratio",
    "list_ratio",
)

Signals = dict[str, float]


def _options(block: type, value: bool | dict | None) -> Any:
    """A datatrove block holding the given constructor options (its defaults for True), or None when off."""
    if value is None or value is False:
        return None
    return block(**({} if value is True else value))


def _div(num: float, den: float, strict: Any) -> float:
    """num / den; NaN for a zero `den` unless `strict` (the rule is on, so datatrove would divide too)."""
    return num / den if den or strict else math.nan


def _raise_signal(sig: Signals, key: str, value: float) -> None:
    """Keep the largest value seen for a max-type signal."""
    if math.isnan(sig[key]) or value > sig[key]:
        sig[key] = value


class _NGrams:
    """The joined n-grams of one word list, sliced from two strings joined once."""

    def __init__(self, words: list[str]) -> None:
        lengths = list(map(len, words))
        self.spaced_text, self.glued_text = " ".join(words), "".join(words)
        self.spaced_starts = [0, *accumulate(map((1).__add__, lengths))]
        self.spaced_ends = [start - 1 for start in self.spaced_starts]
        self.glued_starts = [0, *accumulate(lengths)]

    def spaced(self, n: int) -> list[str]:
        """`" ".join(words[i : i + n])` for every i, as datatrove's `get_n_grams`."""
        return list(map(self.spaced_text.__getitem__, map(slice, self.spaced_starts, self.spaced_ends[n:])))

    def glued(self, n: int) -> list[str]:
        """`"".join(words[i : i + n])` for every i, as datatrove's `find_all_duplicate` compares them."""
        return list(map(self.glued_text.__getitem__, map(slice, self.glued_starts, self.glued_starts[n:])))


def _repeated_chars(keys: list[str], n: int) -> int:
    """Characters in duplicated n-grams, scanning like datatrove's `find_all_duplicate` (skip n after a hit).

    Only n-grams occurring more than once can be hits, so the scan jumps between those positions.
    """
    if len(set(keys)) == len(keys):
        return 0
    counts = Counter(keys)
    repeated_at = compress(range(len(keys)), map((1).__lt__, map(counts.__getitem__, keys)))
    seen: set[str] = set()
    repeated, idx = 0, 0
    for pos in repeated_at:
        if pos < idx:
            continue
        key = keys[pos]
        if key in seen:
            repeated += len(key)
            idx = pos + n
        else:
            seen.add(key)
            idx = pos + 1
    return repeated


class FastWebQualityFilter(BaseFilter):
    """Gopher quality → Gopher repetition → C4 → FineWeb rules in one pass, with datatrove's decisions.

    Each rule group takes datatrove's constructor options of its block as a dict (`True` = defaults,
    `False`/`None` = off), e.g. `gopher_quality={"min_doc_words": 20}, c4=False`.
    """

    name = "⚡ Fast Web Quality"

    def __init__(
        self,
        gopher_quality: bool | dict | None = True,
        gopher_repetition: bool | dict | None = True,
        c4: bool | dict | None = True,
        fineweb: bool | dict | None = True,
        record_signals: bool = True,
        exclusion_writer: DiskWriter | None = None,
    ) -> None:
        super().__init__(exclusion_writer)
        self.gq: GopherQualityFilter | None = _options(GopherQualityFilter, gopher_quality)
        self.gr: GopherRepetitionFilter | None = _options(GopherRepetitionFilter, gopher_repetition)
        self.c4: C4QualityFilter | None = _options(C4QualityFilter, c4)
        self.fw: FineWebQualityFilter | None = _options(FineWebQualityFilter, fineweb)
        self.record_signals = record_signals
        self._tokenizers: dict[str, CachedWordTokenizer] = {}

    def _words(self, text: str, language: str, memo: dict) -> WordStats:
        """Words of `text`, tokenized at most once per document and language."""
        key = (language, text)
        if key not in memo:
            if language not in self._tokenizers:
                self._tokenizers[language] = CachedWordTokenizer(language)
            memo[key] = self._tokenizers[language].analyze(text)
        return memo[key]

    def filter(self, doc: Document) -> bool | tuple[bool, str]:
        """Apply the enabled rule groups in datatrove's order; drop with the first failing rule's reason."""
        sig: Signals = dict.fromkeys(QUALITY_SIGNALS, math.nan)
        memo: dict = {}
        reason = None
        if self.gq is not None:
            reason = self._gopher_quality(doc.text, self._words(doc.text, self.gq.language, memo), sig)
        if reason is None and self.gr is not None:
            reason = self._gopher_repetition(doc.text, memo, sig)
        if reason is None and self.c4 is not None:
            reason = self._c4(doc, sig)
        if reason is None and self.fw is not None:
            reason = self._fineweb(doc.text, memo, sig)
        if self.record_signals:
            doc.metadata.update((key, float(value)) for key, value in sig.items())
        return True if reason is None else (False, reason)

    def _gopher_quality(self, text: str, stats: WordStats, sig: Signals) -> str | None:
        """Datatrove's `GopherQualityFilter.filter` on shared words; the reason or None."""
        o = self.gq
        n_words = len(stats.words)
        n_non_symbol = stats.n_non_symbol
        sig["n_words"] = n_non_symbol
        if o.min_doc_words and n_non_symbol < o.min_doc_words:
            return "gopher_short_doc"
        if o.max_doc_words and n_non_symbol > o.max_doc_words:
            return "gopher_long_doc"
        avg = stats.non_symbol_chars / n_non_symbol if n_non_symbol else math.nan
        sig["mean_word_length"] = avg
        if o.min_avg_word_length and avg < o.min_avg_word_length:
            return "gopher_below_avg_threshold"
        if o.max_avg_word_length and avg > o.max_avg_word_length:
            return "gopher_above_avg_threshold"
        sig["hash_word_ratio"] = _div(text.count("#"), n_words, o.max_symbol_word_ratio)
        if o.max_symbol_word_ratio and sig["hash_word_ratio"] > o.max_symbol_word_ratio:
            return "gopher_too_many_hashes"
        sig["ellipsis_word_ratio"] = _div(text.count("...") + text.count("…"), n_words, o.max_symbol_word_ratio)
        if o.max_symbol_word_ratio and sig["ellipsis_word_ratio"] > o.max_symbol_word_ratio:
            return "gopher_too_many_ellipsis"
        lines = text.splitlines()
        bullets = sum(s.lstrip().startswith(("•", "-")) for s in lines)
        sig["frac_lines_bullet"] = _div(bullets, len(lines), o.max_bullet_lines_ratio)
        if o.max_bullet_lines_ratio and sig["frac_lines_bullet"] > o.max_bullet_lines_ratio:
            return "gopher_too_many_bullets"
        end_ellipsis = sum(s.rstrip().endswith(("...", "…")) for s in lines)
        sig["frac_lines_end_ellipsis"] = _div(end_ellipsis, len(lines), o.max_ellipsis_lines_ratio)
        if o.max_ellipsis_lines_ratio and sig["frac_lines_end_ellipsis"] > o.max_ellipsis_lines_ratio:
            return "gopher_too_many_end_ellipsis"
        sig["frac_words_alpha"] = _div(stats.n_alpha, n_words, o.max_non_alpha_words_ratio)
        if o.max_non_alpha_words_ratio and sig["frac_words_alpha"] < o.max_non_alpha_words_ratio:
            return "gopher_below_alpha_threshold"
        sig["n_stop_words"] = len(o.stop_words.intersection(stats.words))
        if o.min_stop_words and sig["n_stop_words"] < o.min_stop_words:
            return "gopher_enough_stop_words"
        return None

    def _gopher_repetition(self, text: str, memo: dict, sig: Signals) -> str | None:
        """Datatrove's `GopherRepetitionFilter.filter` with n-grams sliced from shared words; the reason or None."""
        o = self.gr
        if not text:
            return "empty"
        for unit, split, part_text in (
            ("para", o.paragraph_exp.split, text.strip()),
            ("line", o._line_splitter.split, text),
        ):
            parts = split(part_text)  # lines are split only once the paragraph rules have passed
            dups, chars = find_duplicates(parts)
            frac, char_frac = f"dup_{unit}_frac", f"dup_{unit}_char_frac"
            sig[frac], sig[char_frac] = dups / len(parts), chars / len(text)
            if getattr(o, frac) and sig[frac] > getattr(o, frac):
                return frac
            if getattr(o, char_frac) and sig[char_frac] > getattr(o, char_frac):
                return char_frac
        grams = _NGrams(self._words(text, o.language, memo).words)
        for n, n_frac in o.top_n_grams:
            n_grams = grams.spaced(n)
            if not n_grams:
                continue
            top, count = Counter(n_grams).most_common(1)[0]
            frac = len(top) * count / len(text)
            _raise_signal(sig, "top_ngram_char_frac", frac)
            if frac > n_frac:
                return f"top_{n}_gram"
        for n, n_frac in o.dup_n_grams:
            frac = _repeated_chars(grams.glued(n), n) / len(text)
            _raise_signal(sig, "dup_ngram_char_frac", frac)
            if frac > n_frac:
                return f"duplicated_{n}_n_grams"
        return None

    def _c4(self, doc: Document, sig: Signals) -> str | None:
        """Datatrove's `C4QualityFilter.filter` (drops or rewrites `doc.text`); the reason or None."""
        o = self.c4
        paragraphs = o.split_paragraph
        lines = doc.text.splitlines() if paragraphs else split_into_sentences(doc.text, o.language)
        stats: Counter = Counter()
        kept, reason = self._c4_lines(lines, stats)
        for key, value in stats.items():
            self.stat_update(key, value=value)
        if reason is not None:
            return reason
        sig["c4_lines_kept_frac"] = len(kept) / len(lines) if lines else math.nan
        if o.min_num_sentences != -1:
            if paragraphs:
                # a non-blank line holds at least one sentence: count exactly only when that is not enough
                n_sentences = sum(1 for line in kept if line.strip())
                if n_sentences < o.min_num_sentences:
                    n_sentences = sum(len(split_into_sentences(line, o.language)) for line in kept)
            else:
                n_sentences = len(kept)
            if n_sentences < o.min_num_sentences:
                return "too_few_sentences"
        doc.text = ("\n" if paragraphs else " ").join(kept).strip()
        return None

    def _c4_lines(self, lines: list[str], stats: Counter) -> tuple[list[str], str | None]:
        """C4's per-line loop: the kept lines, or a whole-document drop reason."""
        o = self.c4
        max_len = o.max_word_length
        kept: list[str] = []
        for line in lines:
            line = line.strip()
            words = line.split()
            stats["line-total"] += 1
            if max_len != -1 and len(line) > max_len and any(len(word) > max_len for word in words):
                stats["line-filter-too_long_word"] += 1
                continue
            if o.remove_citations and "[" in line:
                line = CITATION_REGEX.sub("", line)
            if o.filter_no_terminal_punct and (not line.endswith(END_PUNCTUATION) or line.endswith(ELLIPSIS)):
                stats["line-filter-no_terminal_punc"] += 1
                continue
            if len(words) < o.min_words_per_line:
                stats["line-filter-too_few_words"] += 1
                continue
            line_l = line.lower()
            if o.filter_lorem_ipsum and "lorem ipsum" in line_l:
                return kept, "lorem_ipsum"
            if o.filter_javascript and "javascript" in line_l:
                stats["line-filter-javascript"] += 1
                continue
            if o.filter_curly_bracket and "{" in line:
                return kept, "curly_bracket"
            if o.filter_policy and any(p in line_l for p in POLICY_SUBSTRINGS):
                stats["line-filter-policy"] += 1
                continue
            kept.append(line)
            stats["line-kept"] += 1
        return kept, None

    def _fineweb(self, text: str, memo: dict, sig: Signals) -> str | None:
        """Datatrove's `FineWebQualityFilter.filter`; the reason or None."""
        o = self.fw
        lines = [line for line in text.split("\n") if line.strip() != ""]
        if not lines:
            return "empty"
        sig["line_punct_ratio"] = ratio = sum(1 for line in lines if line.endswith(o.stop_chars)) / len(lines)
        if ratio < o.line_punct_thr and not (ratio == 0 and o.line_punct_exclude_zero):
            return "line_punct_ratio"
        sig["short_line_ratio"] = sum(1 for line in lines if len(line) <= o.short_line_length) / len(lines)
        if sig["short_line_ratio"] > o.short_line_threshold:
            return "short_line_ratio"
        sig["char_dup_ratio"] = find_duplicates(lines)[1] / (len(text) - text.count("\n"))
        if sig["char_dup_ratio"] > o.char_duplicates_ratio:
            return "char_dup_ratio"
        sig["list_ratio"] = text.count("\n") / len(self._words(text, o.language, memo).words)
        if sig["list_ratio"] > o.new_line_ratio:
            return "list_ratio"
        return None


def apply_chain(filters: list[BaseFilter], docs: list[Document]) -> list[tuple[str | None, str]]:
    """Run filters in order on copies of docs: (first drop reason or None, final text) per document."""
    import copy

    from datatrove.pipeline.filters.base_filter import get_filter_result

    out: list[tuple[str | None, str]] = []
    for doc in copy.deepcopy(docs):
        reason = None
        for f in filters:
            keep, why = get_filter_result(f.filter(doc))
            if not keep:
                reason = why
                break
        out.append((reason, doc.text))
    return out
