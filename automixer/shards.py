"""The shard format every domain is stored in, and the manifest that describes the shards."""

from __future__ import annotations

import re
import time
from collections.abc import Iterable
from pathlib import Path, PurePath
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from automixer.io import Location, glob, join, location, open_file, sha256_file, write_json_atomic, write_parquet_atomic

SIGNALS: tuple[str, ...] = (
    # web (automixer.curate.quality: Gopher quality / repetition, C4, FineWeb)
    "n_words", "mean_word_length", "hash_word_ratio", "ellipsis_word_ratio", "frac_lines_bullet",
    "frac_lines_end_ellipsis", "frac_words_alpha", "n_stop_words", "dup_para_frac", "dup_para_char_frac",
    "dup_line_frac", "dup_line_char_frac", "top_ngram_char_frac", "dup_ngram_char_frac", "c4_lines_kept_frac",
    "line_punct_ratio", "short_line_ratio", "char_dup_ratio", "list_ratio",
    # code and math (automixer.curate.domain_filters)
    "code_max_line_length", "code_mean_line_length", "code_alnum_fraction", "code_binary_fraction",
    "code_encoded_fraction", "code_encoded_max_run", "math_n_chars", "math_digit_fraction", "math_latex_markers",
    "math_dup_line_frac",
    # language (automixer.curate.language)
    "language_score",
)  # fmt: skip
"""Quality signals a shard row may carry (null where its filters did not compute them)."""

SIGNALS_TYPE = pa.struct([pa.field(name, pa.float64()) for name in SIGNALS])

SHARD_SCHEMA = pa.schema(
    [
        pa.field("id", pa.string(), nullable=False),
        pa.field("text", pa.string(), nullable=False),
        pa.field("domain", pa.string(), nullable=False),
        pa.field("source", pa.string(), nullable=False),
        pa.field("url", pa.string()),
        pa.field("n_bytes", pa.int64(), nullable=False),
        pa.field("n_tokens", pa.int64(), nullable=False),
        pa.field("signals", SIGNALS_TYPE),
    ]
)
"""Columns of every shard. `url` is the page URL or `file:line`; `n_tokens` counts word and punctuation
pre-tokens (tokenizer independent); `signals` holds the quality signals computed by the filters."""


def signals_of(meta: dict) -> dict[str, float | None]:
    """The known quality signals in a document's metadata (None where absent or NaN)."""
    out: dict[str, float | None] = {}
    for name in SIGNALS:
        v = meta.get(name)
        out[name] = float(v) if isinstance(v, int | float) and v == v else None
    return out


_PRETOKEN = re.compile(r"\w+|[^\w\s]")


def count_pretokens(text: str) -> int:
    """Count word and punctuation pre-tokens in a text (a tokenizer-independent size)."""
    return sum(1 for _ in _PRETOKEN.finditer(text))


def shard_rows(docs: Iterable[dict], domain: str) -> list[dict]:
    """Complete documents (`id`, `text`, `source`) into rows of SHARD_SCHEMA."""
    rows = []
    for d in docs:
        text = d["text"]
        rows.append(
            {
                "id": str(d["id"]),
                "text": text,
                "domain": domain,
                "source": d.get("source", domain),
                "url": d.get("url"),
                "n_bytes": len(text.encode("utf-8")),
                "n_tokens": count_pretokens(text),
                "signals": d.get("signals"),
            }
        )
    return rows


def write_shards(
    docs: Iterable[dict], out_dir: str | PurePath, domain: str, prefix: str, shard_docs: int
) -> list[Location]:
    """Write documents as zstd Parquet shards `<out_dir>/<prefix>-NNNNN.parquet` (a folder or URL), atomically."""
    out_dir = location(out_dir)
    paths: list[Location] = []
    batch: list[dict] = []

    def flush() -> None:
        path = join(out_dir, f"{prefix}-{len(paths):05d}.parquet")
        write_parquet_atomic(path, pa.Table.from_pylist(shard_rows(batch, domain), schema=SHARD_SCHEMA))
        paths.append(path)
        batch.clear()

    for doc in docs:
        batch.append(doc)
        if len(batch) >= shard_docs:
            flush()
    if batch:
        flush()
    return paths


def read_parquet(path: str | PurePath, columns: list[str] | None = None) -> pa.Table:
    """Read a Parquet file from a local path or an fsspec URL."""
    target = location(path)
    if isinstance(target, Path):
        return pq.read_table(target, columns=columns)
    with open_file(target, "rb") as f:
        return pq.read_table(f, columns=columns)


def parquet_rows(path: str | PurePath) -> int:
    """Rows of a Parquet file (from its footer)."""
    target = location(path)
    if isinstance(target, Path):
        return pq.ParquetFile(target).metadata.num_rows
    with open_file(target, "rb") as f:
        return pq.ParquetFile(f).metadata.num_rows


def _relative(path: Location, root: Location) -> str:
    if isinstance(path, Path) and isinstance(root, Path):
        return path.relative_to(root).as_posix()
    return str(path)[len(str(root).rstrip("/")) :].lstrip("/")


def shard_entry(path: str | PurePath, root: str | PurePath) -> dict:
    """Manifest entry of one shard: docs, tokens, bytes, sha256."""
    path, root = location(path), location(root)
    table = read_parquet(path, columns=["domain", "n_bytes", "n_tokens"])
    domains = set(table.column("domain").to_pylist())
    return {
        "path": _relative(path, root),
        "domain": domains.pop() if len(domains) == 1 else path.parent.name,
        "docs": table.num_rows,
        "tokens": int(pa.compute.sum(table.column("n_tokens")).as_py() or 0),
        "bytes": int(pa.compute.sum(table.column("n_bytes")).as_py() or 0),
        "sha256": sha256_file(path),
    }


def build_manifest(shards_dir: str | PurePath, extra: dict | None = None) -> dict:
    """Scan `<shards_dir>/<domain>/*.parquet` (a folder or URL) and write `<shards_dir>/manifest.json`; return it."""
    root = location(shards_dir)
    entries = [shard_entry(p, root) for p in glob(root, "*/*.parquet")]
    totals: dict[str, dict] = {}
    for e in entries:
        t = totals.setdefault(e["domain"], {"docs": 0, "tokens": 0, "bytes": 0, "shards": 0})
        for k in ("docs", "tokens", "bytes"):
            t[k] += e[k]
        t["shards"] += 1
    manifest: dict[str, Any] = {
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "shards": entries,
        "domains": totals,
    }
    if extra:
        manifest.update(extra)
    write_json_atomic(join(root, "manifest.json"), manifest)
    return manifest


def read_domain_texts(shards_dir: str | PurePath, domain: str) -> pa.Table:
    """All rows (id, text, n_bytes) of one domain's shards, in a stable order."""
    files = glob(join(shards_dir, domain), "*.parquet")
    if not files:
        raise FileNotFoundError(f"no shards for domain {domain!r} under {shards_dir}; run `automixer curate` first")
    return pa.concat_tables(read_parquet(f, columns=["id", "text", "n_bytes"]) for f in files)
