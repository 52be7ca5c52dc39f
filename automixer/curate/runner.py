"""Run curation end to end: sources -> datatrove stages -> per-domain shards, drops.json and the manifest."""

from __future__ import annotations

import heapq
import json
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path, PurePath

from automixer.config import PipelineConfig
from automixer.curate.outputs import doc_row, write_exclusions, write_reports
from automixer.io import (
    Location,
    done_marker,
    glob,
    is_file,
    join,
    open_file,
    read_text,
    remove,
    sha256_file,
    stable_hash,
    subfolders,
    write_json_atomic,
    write_text_atomic,
)
from automixer.shards import build_manifest, parquet_rows, write_shards

CURATION_VERSION = "2"
"""Bumped when the pipeline changes in a way that invalidates earlier output."""

_RUN_DIR = re.compile(r"^run-[0-9a-f]{16}$")


def work_path(cfg: PipelineConfig, *parts: str) -> Location:
    """A location below `work_dir` (a local folder or an fsspec URL such as `s3://bucket/work`), absolute."""
    loc = join(cfg.work_dir, *parts)
    return loc.resolve() if isinstance(loc, Path) else loc


def _key(path: str | PurePath) -> str:
    """A comparable spelling of a location (absolute for local paths)."""
    loc = join(path)
    return str(loc.resolve() if isinstance(loc, Path) else loc)


def curation_key(cfg: PipelineConfig, specs: list[dict], tasks: int | None = None) -> str:
    """Hash of everything curated output depends on: sources (with input file fingerprints), curation options,
    and the number of input splits when it is not `curation.workers` (which copy of a duplicate survives
    depends on it; the executor does not, so a run started on one executor resumes on another)."""
    payload = {"version": CURATION_VERSION, "sources": specs, "curation": cfg.curation.model_dump(mode="json")}
    if tasks is not None and tasks != cfg.curation.workers:
        payload["tasks"] = tasks
    return stable_hash(json.dumps(payload, sort_keys=True))


def owned_domains(cfg: PipelineConfig) -> list[str]:
    """Domains whose shard folders curation writes (every non-synthetic configured or sourced domain)."""
    from automixer.curate.sources import SYNTHETIC

    return sorted((set(cfg.domains) | {s.domain for s in cfg.sources}) - {SYNTHETIC})


def _shard_pattern(domain: str) -> re.Pattern:
    return re.compile(rf"^{re.escape(domain)}-[0-9a-f]{{8}}-\d{{5}}\.parquet$")


def _ordered(path: Location, domain: str) -> Iterator[tuple[tuple, dict]]:
    with open_file(path, "r", encoding="utf-8") as f:
        for line in f:
            rec = json.loads(line)
            if rec["metadata"]["domain"] == domain:
                yield tuple(rec["metadata"]["order"]), doc_row(rec)


def read_final_docs(run_dir: str | PurePath, domain: str) -> Iterator[dict]:
    """Surviving documents of one domain in source/file/position order, streamed (k-way merge of task files)."""
    files = glob(join(run_dir, "data", "final"), "*.jsonl")
    for _, row in heapq.merge(*(_ordered(p, domain) for p in files), key=lambda x: x[0]):
        yield row


def write_domain_shards(
    cfg: PipelineConfig, run_dir: str | PurePath, key: str, domains: list[str]
) -> dict[str, list[Location]]:
    """Write each domain's surviving documents as zstd Parquet shards named after the run key."""
    shard_docs = cfg.curation.shard_docs
    return {
        d: write_shards(read_final_docs(run_dir, d), work_path(cfg, "shards", d), d, f"{d}-{key[:8]}", shard_docs)
        for d in domains
    }


def remove_stale_shards(cfg: PipelineConfig, keep: set[str]) -> list[Location]:
    """Delete curated shards (by name pattern) of owned domains that the current run did not write."""
    removed = []
    for d in owned_domains(cfg):
        pat = _shard_pattern(d)
        for p in glob(work_path(cfg, "shards", d), "*.parquet"):
            if pat.match(p.name) and _key(p) not in keep:
                remove(p)
                removed.append(p)
    return removed


def load_finished(run_dir: str | PurePath) -> dict | None:
    """The recorded result of a finished run whose shards are all still intact, else None."""
    result_path = join(run_dir, "result.json")
    if not is_file(done_marker(run_dir)) or not is_file(result_path):
        return None
    result = json.loads(read_text(result_path))
    for entry in result["shards"]:
        if not is_file(entry["path"]) or sha256_file(entry["path"]) != entry["sha256"]:
            return None
    return result


def _prune_old_runs(curation_dir: Location, keep: Location) -> None:
    for p in subfolders(curation_dir):
        if _RUN_DIR.match(p.name) and _key(p) != _key(keep):
            remove(p, recursive=True)


def _execute(cfg: PipelineConfig, specs: list[dict], run_dir: Location, key: str, tasks: int, say: Callable) -> dict:
    """Run the stages with the configured executor, then write shards and reports; a Slurm submission returns early."""
    from automixer.curate.executors import run_stages
    from automixer.curate.pipeline import build_stages, collect_drops, domain_counts

    stages, drop_spec = build_stages(specs, cfg.curation, run_dir, tasks)
    if cfg.curation.strict_offline:
        from automixer.curate.assets import check_offline

        check_offline([steps for _, steps, _, _ in stages])  # before any work: nothing may download
    submitted = run_stages(cfg, stages, run_dir, say)
    if submitted is not None:
        return {"submitted": submitted}
    domains = sorted({s["domain"] for s in specs})
    say(f"curate: writing shards for {', '.join(domains)}")
    written = write_domain_shards(cfg, run_dir, key, domains)
    docs_in = domain_counts(run_dir, "docs_in", "filter", 0)
    summary_domains = {}
    for d in domains:
        kept = sum(parquet_rows(p) for p in written[d])
        summary_domains[d] = {"docs_in": docs_in.get(d, 0), "docs_kept": kept, "shards": len(written[d])}
        if not kept:
            say(f"curate: WARNING every document of domain {d!r} was dropped; check its sources and filters")
    shards = [{"path": _key(p), "sha256": sha256_file(p)} for ps in written.values() for p in ps]
    curation_dir = work_path(cfg, "curation")
    excluded = write_exclusions(run_dir, join(curation_dir, "excluded"), key, cfg.curation.shard_docs)
    reports = write_reports(run_dir, curation_dir)
    result = {
        "key": key,
        "domains": summary_domains,
        "drops": collect_drops(run_dir, drop_spec),
        "shards": shards,
        "excluded_shards": len(excluded),
        **reports,
    }
    write_json_atomic(join(run_dir, "result.json"), result)
    write_text_atomic(done_marker(run_dir), key + "\n")
    return result


def run_curation(cfg: PipelineConfig, progress: Callable[[str], None] | None = None) -> dict:
    """Curate every non-synthetic source into `shards/<domain>/`, write drops.json and the manifest.

    With `execution.curation: slurm` the first call submits the stages and returns `submitted` (no shards yet);
    a later call, once the jobs have finished, writes the shards.
    """
    from automixer.curate.executors import curation_tasks
    from automixer.curate.sources import resolve_sources

    def say(msg: str) -> None:
        if progress:
            progress(msg)

    t0 = time.perf_counter()
    if not cfg.sources:
        raise ValueError("no sources configured: add at least one entry under `sources`")
    specs = resolve_sources(cfg)
    tasks = curation_tasks(cfg, specs)
    key = curation_key(cfg, specs, tasks)
    curation_dir = work_path(cfg, "curation")
    run_dir = join(curation_dir, f"run-{key}")
    result = load_finished(run_dir)
    skipped = result is not None
    if skipped:
        say(f"curate: up to date (run {key}), skipping")
    else:
        say(f"curate: run {key} -> {run_dir} ({cfg.execution.curation} executor)")
        result = _execute(cfg, specs, run_dir, key, tasks, say)
    summary = {"run_dir": str(run_dir), "manifest": str(work_path(cfg, "shards", "manifest.json")), "skipped": skipped}
    if "submitted" in result:
        return {**summary, "domains": {}, "drops": {}, "submitted": result["submitted"], "seconds": _since(t0)}
    remove_stale_shards(cfg, {s["path"] for s in result["shards"]})
    drops_path = join(curation_dir, "drops.json")
    if not is_file(drops_path) or json.loads(read_text(drops_path)) != result["drops"]:
        write_json_atomic(drops_path, result["drops"])
    build_manifest(work_path(cfg, "shards"), extra={"drops": result["drops"]})
    _prune_old_runs(curation_dir, run_dir)
    return {**summary, "domains": result["domains"], "drops": result["drops"], "seconds": _since(t0)}


def _since(t0: float) -> float:
    return round(time.perf_counter() - t0, 2)
