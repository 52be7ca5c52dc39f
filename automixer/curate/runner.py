"""Run curation end to end: sources -> datatrove stages -> per-domain shards, drops.json and the manifest."""

from __future__ import annotations

import heapq
import json
import re
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from automixer.config import PipelineConfig
from automixer.curate.outputs import doc_row, write_exclusions, write_reports
from automixer.io import done_marker, sha256_file, stable_hash, write_json_atomic, write_text_atomic
from automixer.shards import write_shards
from automixer.stages import refresh_manifest

CURATION_VERSION = "2"
"""Bumped when the pipeline changes in a way that invalidates earlier output."""

_RUN_DIR = re.compile(r"^run-[0-9a-f]{16}$")


def curation_key(cfg: PipelineConfig, specs: list[dict]) -> str:
    """Hash of everything curated output depends on: sources (with input file fingerprints) and curation options."""
    payload = {"version": CURATION_VERSION, "sources": specs, "curation": cfg.curation.model_dump(mode="json")}
    return stable_hash(json.dumps(payload, sort_keys=True))


def owned_domains(cfg: PipelineConfig) -> list[str]:
    """Domains whose shard folders curation writes (every non-synthetic configured or sourced domain)."""
    from automixer.curate.sources import SYNTHETIC

    return sorted((set(cfg.domains) | {s.domain for s in cfg.sources}) - {SYNTHETIC})


def _shard_pattern(domain: str) -> re.Pattern:
    return re.compile(rf"^{re.escape(domain)}-[0-9a-f]{{8}}-\d{{5}}\.parquet$")


def _ordered(path: Path, domain: str) -> Iterator[tuple[tuple, dict]]:
    with open(path, encoding="utf-8") as f:
        for line in f:
            rec = json.loads(line)
            if rec["metadata"]["domain"] == domain:
                yield tuple(rec["metadata"]["order"]), doc_row(rec)


def read_final_docs(run_dir: Path, domain: str) -> Iterator[dict]:
    """Surviving documents of one domain in source/file/position order, streamed (k-way merge of task files)."""
    files = sorted((run_dir / "data" / "final").glob("*.jsonl"))
    for _, row in heapq.merge(*(_ordered(p, domain) for p in files), key=lambda x: x[0]):
        yield row


def write_domain_shards(cfg: PipelineConfig, run_dir: Path, key: str, domains: list[str]) -> dict[str, list[Path]]:
    """Write each domain's surviving documents as zstd Parquet shards named after the run key."""
    shard_docs = cfg.curation.shard_docs
    return {
        d: write_shards(read_final_docs(run_dir, d), cfg.path("shards", d), d, f"{d}-{key[:8]}", shard_docs)
        for d in domains
    }


def remove_stale_shards(cfg: PipelineConfig, keep: set[Path]) -> list[Path]:
    """Delete curated shards (by name pattern) of owned domains that the current run did not write."""
    removed = []
    for d in owned_domains(cfg):
        folder = cfg.path("shards", d)
        if not folder.is_dir():
            continue
        pat = _shard_pattern(d)
        for p in sorted(folder.iterdir()):
            if pat.match(p.name) and p.resolve() not in keep:
                p.unlink()
                removed.append(p)
    return removed


def load_finished(run_dir: Path) -> dict | None:
    """The recorded result of a finished run whose shards are all still intact, else None."""
    result_path = run_dir / "result.json"
    if not done_marker(run_dir).is_file() or not result_path.is_file():
        return None
    result = json.loads(result_path.read_text())
    for entry in result["shards"]:
        p = Path(entry["path"])
        if not p.is_file() or sha256_file(p) != entry["sha256"]:
            return None
    return result


def _prune_old_runs(curation_dir: Path, keep: Path) -> None:
    for p in curation_dir.iterdir():
        if p.is_dir() and _RUN_DIR.match(p.name) and p.resolve() != keep.resolve():
            shutil.rmtree(p, ignore_errors=True)


def _execute(cfg: PipelineConfig, specs: list[dict], run_dir: Path, key: str, say: Callable[[str], None]) -> dict:
    from automixer.curate.pipeline import build_stages, collect_drops, domain_counts, run_stages

    stages, drop_spec = build_stages(specs, cfg.curation, run_dir)
    if cfg.curation.strict_offline:
        from automixer.curate.assets import check_offline

        check_offline([steps for _, steps, _, _ in stages])  # before any work: nothing may download
    run_stages(stages, run_dir, cfg.curation.workers, say)
    domains = sorted({s["domain"] for s in specs})
    say(f"curate: writing shards for {', '.join(domains)}")
    written = write_domain_shards(cfg, run_dir, key, domains)
    docs_in = domain_counts(run_dir, "docs_in", "filter", 0)
    summary_domains = {}
    for d in domains:
        kept = sum(_rows(p) for p in written[d])
        summary_domains[d] = {"docs_in": docs_in.get(d, 0), "docs_kept": kept, "shards": len(written[d])}
        if not kept:
            say(f"curate: WARNING every document of domain {d!r} was dropped; check its sources and filters")
    shards = [{"path": str(p.resolve()), "sha256": sha256_file(p)} for ps in written.values() for p in ps]
    curation_dir = cfg.path("curation").resolve()
    excluded = write_exclusions(run_dir, curation_dir / "excluded", key, cfg.curation.shard_docs)
    reports = write_reports(run_dir, curation_dir)
    result = {
        "key": key,
        "domains": summary_domains,
        "drops": collect_drops(run_dir, drop_spec),
        "shards": shards,
        "excluded_shards": len(excluded),
        **reports,
    }
    write_json_atomic(run_dir / "result.json", result)
    write_text_atomic(done_marker(run_dir), key + "\n")
    return result


def _rows(path: Path) -> int:
    import pyarrow.parquet as pq

    return pq.ParquetFile(path).metadata.num_rows


def run_curation(cfg: PipelineConfig, progress: Callable[[str], None] | None = None) -> dict:
    """Curate every non-synthetic source into `shards/<domain>/`, write drops.json and the manifest."""
    from automixer.curate.sources import resolve_sources

    def say(msg: str) -> None:
        if progress:
            progress(msg)

    t0 = time.perf_counter()
    if not cfg.sources:
        raise ValueError("no sources configured: add at least one entry under `sources`")
    specs = resolve_sources(cfg)
    key = curation_key(cfg, specs)
    curation_dir = cfg.path("curation").resolve()
    run_dir = curation_dir / f"run-{key}"
    result = load_finished(run_dir)
    skipped = result is not None
    if skipped:
        say(f"curate: up to date (run {key}), skipping")
    else:
        say(f"curate: run {key} -> {run_dir}")
        result = _execute(cfg, specs, run_dir, key, say)
    remove_stale_shards(cfg, {Path(s["path"]) for s in result["shards"]})
    drops_path = curation_dir / "drops.json"
    if not drops_path.is_file() or json.loads(drops_path.read_text()) != result["drops"]:
        write_json_atomic(drops_path, result["drops"])
    refresh_manifest(cfg)
    _prune_old_runs(curation_dir, run_dir)
    return {
        "domains": result["domains"],
        "drops": result["drops"],
        "manifest": str(cfg.path("shards", "manifest.json")),
        "run_dir": str(run_dir),
        "skipped": skipped,
        "seconds": round(time.perf_counter() - t0, 2),
    }
