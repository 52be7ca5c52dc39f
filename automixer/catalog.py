"""DuckDB views over a work directory: shards, manifest, runs, drops (files stay the source of truth)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

if TYPE_CHECKING:
    import duckdb


def _sql_str(s: str) -> str:
    """A SQL string literal."""
    return "'" + s.replace("'", "''") + "'"


def manifest_frame(manifest_path: Path) -> pd.DataFrame:
    """One row per shard entry of `shards/manifest.json`."""
    manifest = json.loads(manifest_path.read_text())
    entries = manifest.get("shards", []) if isinstance(manifest, dict) else []
    cols = ["path", "domain", "docs", "tokens", "bytes", "sha256"]
    return pd.DataFrame(entries, columns=list(dict.fromkeys([*cols, *(k for e in entries for k in e)])))


def _flatten_counts(value: Any, prefix: tuple[str, ...]) -> list[tuple[tuple[str, ...], int]]:
    if isinstance(value, bool):
        return []
    if isinstance(value, int | float):
        return [(prefix, int(value))]
    if isinstance(value, dict):
        return [item for k, v in value.items() for item in _flatten_counts(v, (*prefix, str(k)))]
    return []


def drops_frame(drops_path: Path) -> pd.DataFrame:
    """`curation/drops.json` as rows of (filter, reason, count).

    Accepts a list of `{"filter", "reason", "count"}` records, or a mapping `filter -> count` or
    `filter -> {reason -> count}` (nested mappings join their keys with `/` into the reason;
    a bare count gets the reason `total`).
    """
    raw = json.loads(drops_path.read_text())
    if isinstance(raw, dict) and set(raw) == {"drops"}:
        raw = raw["drops"]
    rows: list[dict] = []
    if isinstance(raw, list):
        for rec in raw:
            if isinstance(rec, dict) and "filter" in rec:
                rows.append(
                    {
                        "filter": str(rec["filter"]),
                        "reason": str(rec.get("reason") or "total"),
                        "count": int(rec.get("count", 0)),
                    }
                )
    elif isinstance(raw, dict):
        for filt, value in raw.items():
            for path, count in _flatten_counts(value, ()):
                rows.append({"filter": str(filt), "reason": "/".join(path) or "total", "count": count})
    else:
        raise ValueError(f"{drops_path}: expected a JSON object or list of drop records")
    return pd.DataFrame(rows, columns=["filter", "reason", "count"]).astype({"count": "int64"})


def run_status_frame(runs_dir: Path) -> pd.DataFrame:
    """One row per result.json, ok or failed: run_id, status, reason, error, attempts, seed, replicate_of, wall_s."""
    from automixer.sweep.table import read_results

    keys = ["run_id", "status", "reason", "error", "attempts", "seed", "replicate_of", "wall_s"]
    return pd.DataFrame([{k: r.get(k) for k in keys} for r in read_results(runs_dir)], columns=keys)


def open_catalog(work_dir: str | Path) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection with views over whichever of the work dir's files exist.

    Views: `documents` (every shard row plus a `filename` column; `shards` is the same view, kept for
    older callers), `manifest` (one row per shard entry), `excluded` (every dropped document with its
    `filter` and `drop_reason`), `drops` (curation drop counts as filter, reason, count), `reader_errors`
    (bad input, by file and line), `decontamination` (removed documents with eval set, item and n-gram),
    `runs` (the runs table of ok proxy runs), `run_status` (every run, ok or failed) and `tasks`.
    """
    import duckdb

    from automixer.sweep.table import runs_table_from_results

    work = Path(work_dir)
    if not work.is_dir():
        raise FileNotFoundError(f"work directory not found: {work}")
    con = duckdb.connect(":memory:")
    shard_files = sorted(work.glob("shards/*/*.parquet"))
    if shard_files:
        files = ", ".join(_sql_str(str(f)) for f in shard_files)
        rows = f"SELECT * FROM read_parquet([{files}], filename = true, union_by_name = true)"
        con.execute(f"CREATE VIEW documents AS {rows}")
        con.execute(f"CREATE VIEW shards AS {rows}")
    excluded = sorted(work.glob("curation/excluded/*.parquet"))
    if excluded:
        files = ", ".join(_sql_str(str(f)) for f in excluded)
        con.execute(f"CREATE VIEW excluded AS SELECT * FROM read_parquet([{files}], filename = true)")
    for name in ("reader_errors", "decontamination"):
        path = work / "curation" / f"{name}.jsonl"
        if path.is_file() and path.stat().st_size:
            con.execute(f"CREATE VIEW {name} AS SELECT * FROM read_json_auto({_sql_str(str(path))})")
    tasks = work / "tasks" / "tasks.parquet"
    if tasks.is_file():
        con.execute(f"CREATE VIEW tasks AS SELECT * FROM read_parquet({_sql_str(str(tasks))})")
    frames: dict[str, pd.DataFrame] = {}
    if (work / "shards" / "manifest.json").is_file():
        frames["manifest"] = manifest_frame(work / "shards" / "manifest.json")
    if (work / "curation" / "drops.json").is_file():
        frames["drops"] = drops_frame(work / "curation" / "drops.json")
    runs_dir = work / "sweep" / "runs"
    if any(runs_dir.glob("*/result.json")):
        frames["runs"] = runs_table_from_results(runs_dir)
        frames["run_status"] = run_status_frame(runs_dir)
    for name, frame in frames.items():
        con.register(f"_{name}_df", frame)
        con.execute(f"CREATE VIEW {name} AS SELECT * FROM _{name}_df")
    return con


def list_views(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Names of the catalog's views."""
    rows = con.execute("SELECT view_name FROM duckdb_views() WHERE NOT internal ORDER BY view_name").fetchall()
    return [r[0] for r in rows if not r[0].startswith("_")]
