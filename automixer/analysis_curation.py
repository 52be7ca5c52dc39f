"""What the curation-report notebook needs from a run directory, computed by the library.

Every function reads the files `automixer curate` wrote (through the DuckDB catalog where it fits) and returns
plain frames or dicts; the notebook only plots them.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from automixer.catalog import open_catalog

if TYPE_CHECKING:
    import duckdb

CURATE = "automixer curate"
"""The command that makes the curation files, for error messages."""

CLUSTERS_NOT_RECORDED = "duplicate-cluster sizes not recorded for this run (curated before they were written)"
"""The note `duplicate_clusters` gives for a run without `curation/dedup_clusters.json`."""


def require(run_dir: str | Path, rel: str, command: str = CURATE) -> Path:
    """`<run_dir>/<rel>`, or a FileNotFoundError naming the file and the command that makes it."""
    path = Path(run_dir, rel)
    if not path.exists():
        raise FileNotFoundError(f"{path} not found: run `{command}` on {run_dir} first")
    return path


@contextmanager
def catalog(run_dir: str | Path) -> Iterator[duckdb.DuckDBPyConnection]:
    """The run's DuckDB catalog (`automixer.catalog.open_catalog`), closed on exit."""
    con = open_catalog(run_dir)
    try:
        yield con
    finally:
        con.close()


def _query(con: duckdb.DuckDBPyConnection, view: str, sql: str, columns: list[str]) -> pd.DataFrame:
    """`sql` over the catalog, or an empty frame with `columns` when `view` does not exist (nothing written)."""
    if view not in {r[0] for r in con.execute("SELECT view_name FROM duckdb_views()").fetchall()}:
        return pd.DataFrame(columns=columns)
    return con.execute(sql).df()


def source_domains(run_dir: str | Path, con: duckdb.DuckDBPyConnection | None = None) -> dict[str, str]:
    """Domain of each source: from the run's config.yaml, else from its kept or excluded documents."""
    import yaml

    mapping: dict[str, str] = {}
    config = Path(run_dir, "config.yaml")
    if config.is_file():
        raw = yaml.safe_load(config.read_text()) or {}
        mapping = {str(s["name"]): str(s["domain"]) for s in raw.get("sources") or [] if "name" in s}
    with catalog(run_dir) if con is None else nullcontext(con) as con:
        for view in ("documents", "excluded"):
            sql = f"SELECT DISTINCT source, domain FROM {view} ORDER BY ALL"
            for src, dom in _query(con, view, sql, ["source", "domain"]).itertuples(index=False):
                mapping.setdefault(str(src), str(dom))
    return mapping


def _kept_by_source(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    from automixer.curate.sources import SYNTHETIC  # synth writes that domain's shards, not curation

    sql = (
        "SELECT domain, source, count(*) AS docs_kept, sum(n_bytes) AS bytes_kept, sum(n_tokens) AS tokens_kept "
        f"FROM documents WHERE domain <> '{SYNTHETIC}' GROUP BY ALL"
    )
    return _query(con, "documents", sql, ["domain", "source", "docs_kept", "bytes_kept", "tokens_kept"])


def _excluded_by_source(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    sql = (
        "SELECT domain, source, count(*) AS docs_excluded, sum(strlen(text)) AS bytes_excluded "
        "FROM excluded GROUP BY ALL"
    )
    return _query(con, "excluded", sql, ["domain", "source", "docs_excluded", "bytes_excluded"])


def _reader_errors_by_source(run_dir: str | Path, con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    require(run_dir, "curation/reader_errors.jsonl")
    sql = "SELECT source, count(*) AS docs_reader_errors FROM reader_errors GROUP BY ALL"
    errors = _query(con, "reader_errors", sql, ["source", "docs_reader_errors"])
    domains = source_domains(run_dir, con)
    errors["domain"] = [domains.get(str(s), "unknown") for s in errors["source"]]
    return errors


def flow_by_source(run_dir: str | Path) -> pd.DataFrame:
    """Documents and tokens in/out per (domain, source) of the curated (non-synthetic) sources.

    Documents in = kept (shards) + excluded (`curation/excluded/`) + reader errors. Tokens of kept documents
    are counted; tokens of dropped documents are an ESTIMATE: their UTF-8 bytes times the kept documents'
    tokens-per-byte of the same domain (of all domains when a domain kept nothing). Reader errors count as
    documents in with no tokens. Columns: domain, source, docs_in, docs_kept, docs_excluded,
    docs_reader_errors, tokens_kept, tokens_dropped_est, tokens_in_est, bytes_kept, bytes_excluded.
    """
    require(run_dir, "shards/manifest.json")
    keys = ["domain", "source"]
    with catalog(run_dir) as con:
        frame = _kept_by_source(con).merge(_excluded_by_source(con), on=keys, how="outer")
        frame = frame.merge(_reader_errors_by_source(run_dir, con), on=keys, how="outer")
    counts = ["docs_kept", "bytes_kept", "tokens_kept", "docs_excluded", "bytes_excluded", "docs_reader_errors"]
    frame[counts] = frame[counts].fillna(0).astype("int64")
    per_domain = frame.groupby("domain")[["tokens_kept", "bytes_kept"]].sum()
    overall = per_domain["tokens_kept"].sum() / max(per_domain["bytes_kept"].sum(), 1)
    ratio = (per_domain["tokens_kept"] / per_domain["bytes_kept"].where(per_domain["bytes_kept"] > 0)).fillna(overall)
    frame["tokens_dropped_est"] = (frame["bytes_excluded"] * frame["domain"].map(ratio)).round().astype("int64")
    frame["docs_in"] = frame["docs_kept"] + frame["docs_excluded"] + frame["docs_reader_errors"]
    frame["tokens_in_est"] = frame["tokens_kept"] + frame["tokens_dropped_est"]
    cols = ["domain", "source", "docs_in", "docs_kept", "docs_excluded", "docs_reader_errors", "tokens_kept"]
    cols += ["tokens_dropped_est", "tokens_in_est", "bytes_kept", "bytes_excluded"]
    return frame[cols].sort_values(keys).reset_index(drop=True)


def flow_by_domain(run_dir: str | Path) -> pd.DataFrame:
    """`flow_by_source` summed per domain (tokens of dropped documents are estimates, as there)."""
    frame = flow_by_source(run_dir).drop(columns="source")
    return frame.groupby("domain", as_index=False).sum()


def drops_by_reason(run_dir: str | Path) -> pd.DataFrame:
    """Dropped documents per (filter, reason) from `curation/drops.json`, with zero counts left out.

    Columns: filter, reason, count, and `excluded`: the rows of `curation/excluded/` with that filter and reason
    (the `reader` filter has none: its documents are the reader errors, which have no text).
    """
    require(run_dir, "curation/drops.json")
    sql = "SELECT filter, drop_reason AS reason, count(*) AS excluded FROM excluded GROUP BY ALL"
    with catalog(run_dir) as con:
        excluded = _query(con, "excluded", sql, ["filter", "reason", "excluded"])
        drops = con.execute("SELECT filter, reason, count FROM drops").df()
    frame = drops.merge(excluded, on=["filter", "reason"], how="outer")
    frame[["count", "excluded"]] = frame[["count", "excluded"]].fillna(0).astype("int64")
    frame = frame[(frame["count"] > 0) | (frame["excluded"] > 0)]
    return frame.sort_values(["filter", "reason"]).reset_index(drop=True)


def drop_examples(run_dir: str | Path, per_reason: int = 2, chars: int = 160) -> pd.DataFrame:
    """The first `per_reason` excluded documents (by id) of each (filter, reason), text cut to `chars` characters.

    Columns: filter, reason, domain, source, id, snippet (whitespace collapsed, `…` marks a cut).
    """
    require(run_dir, "curation/drops.json")
    sql = f"""
        SELECT filter, drop_reason AS reason, domain, source, id, text FROM (
            SELECT *, row_number() OVER (PARTITION BY filter, drop_reason ORDER BY id, filename) AS k FROM excluded
        ) WHERE k <= {int(per_reason)} ORDER BY filter, reason, id
    """
    cols = ["filter", "reason", "domain", "source", "id", "text"]
    with catalog(run_dir) as con:
        frame = _query(con, "excluded", sql, cols)
    flat = frame["text"].astype(str).str.split().str.join(" ")
    frame["snippet"] = [t if len(t) <= chars else t[: chars - 1] + "…" for t in flat]
    return frame.drop(columns="text").reset_index(drop=True)


def duplicate_clusters(run_dir: str | Path) -> dict[str, Any]:
    """Near-duplicate cluster sizes and dedup removals.

    Returns `sizes` (frame: size, clusters, removed = (size - 1) * clusters, from `curation/dedup_clusters.json`;
    empty when the run did not record it), `note` (why it is empty, else ""), and `exact_removed` /
    `near_removed` (documents dropped by exact and MinHash dedup, from drops.json).
    """
    drops = drops_by_reason(run_dir)
    removed = drops.groupby("filter")["count"].sum()
    out: dict[str, Any] = {
        "exact_removed": int(removed.get("exact_dedup", 0)),
        "near_removed": int(removed.get("minhash_dedup", 0)),
        "note": "",
    }
    path = Path(run_dir, "curation", "dedup_clusters.json")
    if not path.is_file():
        out["sizes"] = pd.DataFrame({"size": [], "clusters": [], "removed": []}, dtype="int64")
        out["note"] = CLUSTERS_NOT_RECORDED
        return out
    hist = {int(k): int(v) for k, v in json.loads(path.read_text()).items()}
    sizes = pd.DataFrame(sorted(hist.items()), columns=["size", "clusters"], dtype="int64")
    sizes["removed"] = (sizes["size"] - 1) * sizes["clusters"]
    out["sizes"] = sizes
    if sizes.empty:
        out["note"] = "no near-duplicate clusters in this run"
    return out


def decontamination_hits(run_dir: str | Path) -> pd.DataFrame:
    """Documents removed by decontamination per (eval set, domain): columns eval_set, domain, documents, items.

    `items` counts the distinct eval items matched. Empty when nothing matched.
    """
    require(run_dir, "curation/decontamination.jsonl")
    cols = ["eval_set", "source", "id", "item_id"]
    with catalog(run_dir) as con:
        hits = _query(con, "decontamination", f"SELECT {', '.join(cols)} FROM decontamination", cols)
        domains = source_domains(run_dir, con)
    hits["domain"] = [domains.get(str(s), "unknown") for s in hits["source"]]
    frame = hits.groupby(["eval_set", "domain"], as_index=False).agg(
        documents=("id", "nunique"), items=("item_id", "nunique")
    )
    frame = frame.astype({"documents": "int64", "items": "int64"})
    return frame.sort_values(["eval_set", "domain"]).reset_index(drop=True)


def shard_sizes(run_dir: str | Path) -> pd.DataFrame:
    """One row per shard of `shards/manifest.json`: path, domain, docs, tokens, bytes, ordered by domain, path."""
    require(run_dir, "shards/manifest.json")
    with catalog(run_dir) as con:
        frame = con.execute("SELECT path, domain, docs, tokens, bytes FROM manifest ORDER BY domain, path").df()
    return frame.astype({"docs": "int64", "tokens": "int64", "bytes": "int64"})
