"""What a curation run leaves besides the shards: exclusion shards, reader problems, the decontamination report."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import PurePath

import pyarrow as pa

from automixer.io import (
    Location,
    glob,
    is_file,
    join,
    open_file,
    read_text,
    remove,
    subfolders,
    write_parquet_atomic,
    write_text_atomic,
)
from automixer.shards import signals_of

EXCLUSION_SCHEMA = pa.schema(
    [
        pa.field("id", pa.string(), nullable=False),
        pa.field("text", pa.string(), nullable=False),
        pa.field("domain", pa.string()),
        pa.field("source", pa.string()),
        pa.field("url", pa.string()),
        pa.field("filter", pa.string(), nullable=False),
        pa.field("drop_reason", pa.string(), nullable=False),
    ]
)
"""Columns of `curation/excluded/*.parquet`: every dropped document with the filter and reason that dropped it."""

CLUSTERS = "dedup_clusters.json"
"""`curation/<CLUSTERS>`: {near-duplicate cluster size: number of clusters} of the last MinHash dedup."""

FIXED_REASONS = {"exact_dedup": "exact_duplicate", "minhash_dedup": "near_duplicate"}
"""Drop reasons of steps that do not tag documents themselves."""


def provenance_url(meta: dict) -> str | None:
    """A document's URL, else `file:line` (or row / WARC record) of where it was read."""
    if meta.get("url"):
        return str(meta["url"])
    if not meta.get("path"):
        return None
    where = next((meta[k] for k in ("line", "row", "record") if meta.get(k) is not None), None)
    return f"{meta['path']}:{where}" if where is not None else str(meta["path"])


def doc_row(rec: dict) -> dict:
    """A shard row (without domain) from a datatrove JSONL record."""
    meta = rec.get("metadata", {})
    return {
        "id": rec["id"],
        "text": rec["text"],
        "source": meta.get("source"),
        "url": provenance_url(meta),
        "signals": signals_of(meta),
    }


def _records(folder: str | PurePath, pattern: str = "*.jsonl") -> Iterator[dict]:
    for path in glob(folder, pattern):
        with open_file(path, "r", encoding="utf-8") as f:
            yield from (json.loads(line) for line in f if line.strip())


def _exclusion_rows(folder: Location) -> Iterator[dict]:
    name = folder.name
    for rec in _records(folder):
        meta = rec.get("metadata", {})
        reason = meta.get("filter_reason") or FIXED_REASONS.get(name, "dropped")
        row = {k: v for k, v in doc_row(rec).items() if k != "signals"}
        yield {**row, "domain": meta.get("domain"), "filter": name, "drop_reason": reason}


def write_exclusions(run_dir: str | PurePath, out_dir: str | PurePath, key: str, shard_docs: int) -> list[Location]:
    """Convert the run's excluded documents into Parquet shards `<out_dir>/<filter>-<key8>-NNNNN.parquet`."""
    written: list[Location] = []
    out_dir = join(out_dir)
    for folder in subfolders(join(run_dir, "data", "excluded")):
        batch: list[dict] = []
        n = 0
        for row in _exclusion_rows(folder):
            batch.append(row)
            if len(batch) >= shard_docs:
                written.append(_flush(batch, out_dir / f"{folder.name}-{key[:8]}-{n:05d}.parquet"))
                n += 1
        if batch:
            written.append(_flush(batch, out_dir / f"{folder.name}-{key[:8]}-{n:05d}.parquet"))
    for p in glob(out_dir, "*.parquet"):
        if re.fullmatch(r".+-[0-9a-f]{8}-\d{5}\.parquet", p.name) and p not in written:
            remove(p)
    return written


def _flush(batch: list[dict], path: Location) -> Location:
    write_parquet_atomic(path, pa.Table.from_pylist(batch, schema=EXCLUSION_SCHEMA))
    batch.clear()
    return path


def write_reports(run_dir: str | PurePath, curation_dir: str | PurePath) -> dict[str, int]:
    """Merge per-task reader problems and decontamination matches into `curation/*.jsonl`, copy the MinHash
    cluster-size histogram to `curation/dedup_clusters.json`; return the line counts."""
    from automixer.curate.source_reader import ERRORS_GLOB

    reader = list(_records(join(run_dir, "data", "reader_errors"), ERRORS_GLOB))
    decontam = list(_records(join(run_dir, "data", "decontam")))
    for name, rows in (("reader_errors.jsonl", reader), ("decontamination.jsonl", decontam)):
        write_text_atomic(join(curation_dir, name), "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    sizes, clusters = join(run_dir, "data", "minhash_remove", "cluster_sizes.json"), join(curation_dir, CLUSTERS)
    if is_file(sizes):
        write_text_atomic(clusters, read_text(sizes))
    elif is_file(clusters):  # this run did no MinHash dedup: no stale histogram from an earlier one
        remove(clusters)
    return {"reader_errors": len(reader), "decontaminated": len(decontam)}
