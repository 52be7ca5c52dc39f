"""The curation reader step: every configured source as datatrove Documents, bad input counted with its reason."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import IO, Any

from datatrove.data import Document, DocumentsPipeline
from datatrove.pipeline.base import PipelineStep

from automixer.curate.extract import HtmlExtractor
from automixer.curate.readers import (
    DEFAULT_MAX_DOC_BYTES,
    Problem,
    Record,
    Report,
    read_hf,
    read_jsonl,
    read_parquet,
    read_warc,
)
from automixer.io import atomic_path, stable_hash

ERRORS_GLOB = "*.jsonl"
"""Per-task files under a reader's `errors_folder`: one JSON object per skipped piece of input."""


def source_records(src: dict, report: Report) -> Iterator[tuple[str, Record]]:
    """(file path relative to the source base, record) for every readable record of a source spec, up to its limit."""
    limit, n = src.get("limit", -1), 0
    max_bytes = src.get("max_doc_bytes", DEFAULT_MAX_DOC_BYTES)
    fields = (src["text_field"], src.get("id_field"))
    if src["format"] == "hf":
        split, on_disk = src.get("split", "train"), src.get("load_from_disk", False)
        files: Any = [("", read_hf(src["base"], fields, report, split, on_disk, max_bytes))]
    else:
        files = ((rel, _read_file(src, Path(src["base"], rel), fields, report, max_bytes)) for rel in src["files"])
    for rel, records in files:
        for rec in records:
            if limit != -1 and n >= limit:
                records.close()
                return
            n += 1
            rec.html = rec.html or bool(src.get("html"))
            yield rel, rec


def _read_file(src: dict, path: Path, fields: tuple, report: Report, max_bytes: int) -> Iterator[Record]:
    if src["format"] == "warc":
        return read_warc(path, report, max_bytes)
    reader = read_parquet if src["format"] == "parquet" else read_jsonl
    return reader(path, fields[0], fields[1], report, max_bytes)


def to_document(idx: int, src: dict, rel: str, rec: Record) -> Document:
    """A datatrove Document with a stable id, source/domain/order metadata and the record's provenance."""
    name = src["name"]
    doc_id = f"{name}/{rec.id}" if rec.id is not None else f"{name}/{stable_hash(name, rel, str(rec.pos))}"
    meta = {"source": name, "domain": src["domain"], "order": [idx, rel, rec.pos], **rec.meta}
    return Document(text=rec.text, id=doc_id, metadata=meta)


class _ErrorLog:
    """Problems of one task, written atomically to `<folder>/<rank>.jsonl` when the task finishes."""

    def __init__(self, folder: str | None, rank: int) -> None:
        self.path = Path(folder, f"{rank:05d}.jsonl") if folder else None
        self._stack = ExitStack()
        self._file: IO[str] | None = None

    def __enter__(self) -> _ErrorLog:
        if self.path is not None:
            tmp = self._stack.enter_context(atomic_path(self.path))
            self._file = self._stack.enter_context(open(tmp, "w", encoding="utf-8"))
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stack.__exit__(*exc)

    def write(self, source: str, problem: Problem) -> None:
        """Append one problem, tagged with its source name."""
        if self._file is not None:
            self._file.write(json.dumps({"source": source, **problem.to_json()}) + "\n")


class SourcesReader(PipelineStep):
    """Read every source spec (JSONL, Parquet, WARC, HF); task `rank` keeps every `world_size`-th document.

    Skipped input is counted as stat `dropped_<reason>` (read problems by task 0 only, as every task reads
    all input; HTML extraction failures by the task that owns the page) and, with `errors_folder`, listed
    in `<errors_folder>/<rank>.jsonl` (see `read_reader_errors`).
    """

    type = "📖 - READER"
    name = "automixer sources"

    def __init__(self, sources: list[dict], errors_folder: str | None = None, html_timeout: float = 10.0) -> None:
        super().__init__()
        self.sources = sources
        self.errors_folder = errors_folder
        self.html_timeout = html_timeout

    def documents(self, idx: int, src: dict, report: Report | None = None) -> DocumentsPipeline:
        """Documents of the `idx`-th source in file and position order (HTML not yet extracted)."""
        for rel, rec in source_records(src, report or (lambda p: None)):
            yield to_document(idx, src, rel, rec)

    def _drop(self, log: _ErrorLog, source: str, problem: Problem) -> None:
        self.stat_update(f"dropped_{problem.reason}")
        log.write(source, problem)

    def _extract(self, html: HtmlExtractor, rec: Record, rel: str, log: _ErrorLog, source: str) -> bool:
        """Replace a record's HTML by its main text; False (and a counted drop) when there is none."""
        with self.track_time():
            rec.text, why = html.extract(rec.text)
        if why:
            where = rec.meta.get("line", rec.meta.get("row", rec.meta.get("record")))
            self._drop(log, source, Problem(why, rec.meta.get("path", rel), where, rec.meta.get("url", "")))
        return not why

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        """Yield this task's share of all source documents, HTML turned into its main text."""
        html_needed = any(s["format"] == "warc" or s.get("html") for s in self.sources)
        with _ErrorLog(self.errors_folder, rank) as log, ExitStack() as stack:
            html = stack.enter_context(HtmlExtractor(self.html_timeout)) if html_needed else None
            seen = 0
            for idx, src in enumerate(self.sources):
                name = src["name"]

                def report(problem: Problem, name: str = name) -> None:
                    if rank == 0:
                        self._drop(log, name, problem)

                for rel, rec in source_records(src, report):
                    seen += 1
                    if (seen - 1) % world_size != rank:
                        continue
                    if rec.html and html is not None and not self._extract(html, rec, rel, log, name):
                        continue
                    doc = to_document(idx, src, rel, rec)
                    self.stat_update(f"docs_in/{src['domain']}")
                    self.update_doc_stats(doc)
                    yield doc


def read_reader_errors(folder: str | Path) -> list[dict]:
    """Every problem the reader tasks listed under `folder`: {source, reason, file, line, detail}, in task order."""
    out: list[dict] = []
    for path in sorted(Path(folder).glob(ERRORS_GLOB)):
        with open(path, encoding="utf-8") as f:
            out.extend(json.loads(line) for line in f if line.strip())
    return out
