"""Decontamination: drop documents sharing a word n-gram with an item of a local eval set, and report why.

Normalisation (eval items and documents alike): lowercase, then every maximal run of Unicode word characters
(letters, digits, underscore: regex `\\w+`) is a word; punctuation and whitespace only separate words. So
`has_close_elements(numbers: List[float])` reads `has_close_elements numbers list float`. An n-gram is `n`
consecutive words (13 by default); each is hashed to 64 bits (xxh64 per word, then a polynomial over the
`n` word hashes) and the eval n-grams are kept as one sorted uint64 array with the owning item of each.
N-grams made only of numbers and one-character words (`1 2 3 ...`, `a b c ...`, `0 0 0 ...`) are not
indexed: they occur in clean code and web text. When a document matches, the item owning most of the
matching n-grams in that window is reported (n-grams shared by several items belong to the first).
Documents are scanned in windows of 256k characters, so a 50 MB document never holds more than one window's
words in memory, and the scan stops at the first matching n-gram. Nothing is ever downloaded.
"""

from __future__ import annotations

import gzip
import json
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import numpy as np
import xxhash
from datatrove.data import Document, DocumentsPipeline
from datatrove.pipeline.filters.base_filter import BaseFilter

from automixer.io import atomic_path

FORMATS = ("humaneval", "mbpp", "mbpp_plus", "gsm8k", "math")
CODE_FORMATS = ("humaneval", "mbpp", "mbpp_plus")
"""Formats whose items carry reference code (`load_eval_code`)."""
_ALIASES = {"mbppplus": "mbpp_plus"}
_WORD = re.compile(r"\w+")
_NONWORD = re.compile(r"\W")
_BASE = np.uint64(0x9E3779B97F4A7C15)
_WINDOW = 1 << 18


@dataclass(frozen=True)
class EvalSet:
    """A named eval set: (item id, item text) pairs."""

    name: str
    items: list[tuple[str, str]]


def _records(path: Path) -> list[dict[str, Any]]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as f:
        text = f.read()
    if text.lstrip().startswith("["):
        return list(json.loads(text))
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def detect_format(record: dict[str, Any]) -> str:
    """The eval-set format a record's fields identify (one of FORMATS)."""
    if "test_list" in record and "code" in record:
        return "mbpp"
    if "canonical_solution" in record:
        return "humaneval" if "test" in record else "mbpp_plus"
    if "question" in record and "answer" in record:
        return "gsm8k"
    if "problem" in record and "solution" in record:
        return "math"
    raise ValueError(f"unknown eval-set record with fields {sorted(record)}; give format= one of {FORMATS}")


def _item(fmt: str, rec: dict[str, Any], idx: int) -> tuple[str, str]:
    if fmt == "humaneval":
        return str(rec["task_id"]), "\n".join([rec["prompt"], rec["canonical_solution"], rec["test"]])
    if fmt == "mbpp":
        return str(rec["task_id"]), "\n".join([rec["prompt"], rec["code"], *rec["test_list"]])
    if fmt == "mbpp_plus":
        return str(rec["task_id"]), "\n".join([rec["prompt"], rec["canonical_solution"], rec.get("assertion", "")])
    if fmt == "gsm8k":
        return str(idx), f"{rec['question']}\n{rec['answer']}"
    return str(rec.get("unique_id", idx)), f"{rec['problem']}\n{rec['solution']}"


def _load(path: str | Path, format: str | None) -> tuple[str, list[dict[str, Any]]]:
    """(format, records) of a local eval-set file; `mbppplus` is accepted for `mbpp_plus`."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"eval set {path} not found: eval sets are read from local files only")
    records = _records(path)
    if not records:
        raise ValueError(f"eval set {path} has no records")
    fmt = _ALIASES.get(format or "", format) or detect_format(records[0])
    if fmt not in FORMATS:
        raise ValueError(f"eval-set format {fmt!r} is not one of {FORMATS}")
    return fmt, records


def load_eval_set(path: str | Path, format: str | None = None, name: str | None = None) -> EvalSet:
    """Read a local eval-set file (.json list, .jsonl, optionally .gz); the format is detected when not given.

    Items: HumanEval prompt + canonical_solution + test (id `task_id`); MBPP prompt + code + test_list;
    MBPP+ prompt + canonical_solution + assertion; GSM8K question + answer (id = line index); MATH
    problem + solution (id `unique_id`, else line index). The name defaults to the format.
    """
    fmt, records = _load(path, format)
    return EvalSet(name or fmt, [_item(fmt, rec, i) for i, rec in enumerate(records)])


def eval_code(fmt: str, rec: dict[str, Any]) -> str:
    """The reference code of one code-benchmark record (HumanEval / MBPP+: prompt + canonical_solution; MBPP: code)."""
    if fmt == "humaneval":
        return rec["prompt"] + rec["canonical_solution"]
    if fmt == "mbpp":
        return rec["code"]
    if fmt == "mbpp_plus":
        return f"{rec['prompt']}\n{rec['canonical_solution']}"
    raise ValueError(f"eval-set format {fmt!r} has no reference code; code formats: {CODE_FORMATS}")


def load_eval_code(path: str | Path, format: str | None = None, name: str | None = None) -> EvalSet:
    """Like `load_eval_set`, but each item's text is its reference code only (no tests, no prose)."""
    fmt, records = _load(path, format)
    if fmt not in CODE_FORMATS:
        raise ValueError(f"eval set {path} is {fmt!r}, which has no reference code; code formats: {CODE_FORMATS}")
    return EvalSet(name or fmt, [(str(rec["task_id"]), eval_code(fmt, rec)) for rec in records])


def normalized_words(text: str) -> list[str]:
    """The words n-grams are made of: lowercase runs of word characters."""
    return _WORD.findall(text.lower())


def ngram_hashes(word_hashes: np.ndarray, n: int) -> np.ndarray:
    """64-bit hash of every run of `n` consecutive word hashes (polynomial, wrapping uint64)."""
    count = len(word_hashes) - n + 1
    if count <= 0:
        return np.empty(0, dtype=np.uint64)
    h = word_hashes[:count].copy()
    for j in range(1, n):
        h = h * _BASE + word_hashes[j : j + count]
    return h


def _informative(words: list[str], n: int) -> np.ndarray:
    """Which n-grams hold a word of 2+ characters that is not a number (skips `1 2 3 ...`, `a b c ...`)."""
    good = np.fromiter((len(w) > 1 and not w.isdigit() for w in words), bool, len(words))
    count = np.concatenate([[0], np.cumsum(good)])
    return (count[n:] - count[: len(count) - n]) > 0


def _windows(text: str, size: int) -> Iterator[list[str]]:
    """Normalised words of successive ~`size`-character slices of `text`, never splitting a short word."""
    start = 0
    while start < len(text):
        end = min(len(text), start + size)
        if end < len(text):
            tail = _NONWORD.search(text[max(start, end - 256) : end][::-1])
            end = end - tail.start() if tail and tail.start() < end - start else end
        yield normalized_words(text[start:end])
        start = end


class NgramIndex:
    """Hashed word n-grams of eval sets, each mapped to the first (eval set, item id) that contains it."""

    def __init__(self, eval_sets: Sequence[EvalSet], n: int = 13) -> None:
        if n < 1:
            raise ValueError("n must be >= 1")
        self.n, self._cache = n, {}
        self.refs: list[tuple[str, str]] = []
        parts, owners = [np.empty(0, dtype=np.uint64)], [np.empty(0, dtype=np.int32)]
        for es in eval_sets:
            for item_id, text in es.items:
                words = normalized_words(text)
                grams = ngram_hashes(self.word_hashes(words), n)[_informative(words, n)]
                parts.append(grams)
                owners.append(np.full(len(grams), len(self.refs), dtype=np.int32))
                self.refs.append((es.name, item_id))
        hashes, owner = np.concatenate(parts), np.concatenate(owners)
        order = np.argsort(hashes, kind="stable")
        self.hashes, first = np.unique(hashes[order], return_index=True)
        self.owner = owner[order][first]
        self._cache.clear()

    def __len__(self) -> int:
        return len(self.hashes)

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_cache": {}}

    def word_hashes(self, words: list[str]) -> np.ndarray:
        """xxh64 of each word (memoised; the memo is dropped past 200k words)."""
        if len(self._cache) > 200_000:
            self._cache.clear()
        get, cache = self._cache.get, self._cache

        def miss(w: str) -> int:
            cache[w] = h = xxhash.xxh64_intdigest(w)
            return h

        return np.fromiter((h if (h := get(w)) is not None else miss(w) for w in words), np.uint64, len(words))

    def first_match(self, text: str, window: int = _WINDOW) -> tuple[int, str] | None:
        """(index into `refs`, normalised n-gram text) of the first n-gram of `text` in the index, if any."""
        keep = self.n - 1
        carry_w: list[str] = []
        carry_h = np.empty(0, dtype=np.uint64)
        for words in _windows(text, window):
            ws, hs = carry_w + words, np.concatenate([carry_h, self.word_hashes(words)])
            grams = ngram_hashes(hs, self.n)
            if len(grams) and len(self.hashes):
                pos = np.minimum(np.searchsorted(self.hashes, grams), len(self.hashes) - 1)
                hit = np.flatnonzero(self.hashes[pos] == grams)
                if len(hit):  # the item owning most matches of this window, at its first match
                    owners = self.owner[pos[hit]]
                    best = np.bincount(owners).argmax()
                    i = int(hit[np.argmax(owners == best)])
                    return int(best), " ".join(ws[i : i + self.n])
            carry_w, carry_h = (ws[len(ws) - keep :], hs[len(hs) - keep :]) if keep else ([], carry_h)
        return None


class DecontaminationFilter(BaseFilter):
    """Drop documents sharing a word n-gram with any eval item (reason `contaminated_<eval set>`).

    `report_path` (optional) receives one JSON line per dropped document, written atomically when the task
    finishes: `{id, source, eval_set, item_id, ngram}`. With several tasks each writes its own file:
    `${rank}` in the path is replaced by the rank, else `.<rank>` goes before the suffix.
    """

    name = "decontamination"

    def __init__(
        self,
        eval_sets: Sequence[EvalSet | str | Path],
        n: int = 13,
        report_path: str | Path | None = None,
        exclusion_writer: Any = None,
    ) -> None:
        super().__init__(exclusion_writer)
        sets = [es if isinstance(es, EvalSet) else load_eval_set(es) for es in eval_sets]
        names = [es.name for es in sets]
        if len(set(names)) != len(names):
            raise ValueError(f"eval set names must be unique, got {names}")
        self.index = NgramIndex(sets, n)
        self.report_path = str(report_path) if report_path else None
        self._report: TextIO | None = None

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_report": None}

    def report_file(self, rank: int, world_size: int) -> Path | None:
        """Where task `rank` writes its report."""
        if not self.report_path:
            return None
        if "${rank}" in self.report_path:
            return Path(self.report_path.replace("${rank}", f"{rank:05d}"))
        path = Path(self.report_path)
        return path if world_size == 1 else path.with_name(f"{path.stem}.{rank:05d}{path.suffix}")

    def filter(self, doc: Document) -> bool | tuple[bool, str]:
        """Keep the document unless one of its n-grams belongs to an eval item."""
        match = self.index.first_match(doc.text)
        if match is None:
            return True
        eval_set, item_id = self.index.refs[match[0]]
        if self._report is not None:
            row = {"id": doc.id, "source": doc.metadata.get("source"), "eval_set": eval_set, "item_id": item_id}
            self._report.write(json.dumps({**row, "ngram": match[1]}, ensure_ascii=False) + "\n")
        return False, f"contaminated_{eval_set}"

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        """Filter this task's documents; the report appears (renamed into place) only once all are seen."""
        path = self.report_file(rank, world_size)
        if path is None:
            yield from super().run(data, rank, world_size)
            return
        with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as self._report:
            yield from super().run(data, rank, world_size)
        self._report = None
