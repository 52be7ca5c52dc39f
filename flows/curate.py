"""Prefect flow: read, filter, deduplicate and shard the configured sources (datatrove underneath)."""

from __future__ import annotations

from pathlib import Path

from prefect import flow, get_run_logger, task

from automixer.config import PipelineConfig
from automixer.curate import check_sources, run_curation
from flows.common import RETRIES, FinishedWork, finished_curation, injected_fault, prepared, resolve


@task(name="check-sources", retries=RETRIES, persist_result=True)
def check_sources_task(config: PipelineConfig) -> list[str]:
    """Resolve every source and read its first document; return the source names."""
    injected_fault()
    names = [spec["name"] for spec in check_sources(config)]
    get_run_logger().info("sources ok: %s", names)
    return names


@task(name="run-curation", retries=RETRIES, persist_result=True, cache_policy=FinishedWork(digest=finished_curation))
def run_curation_task(config: PipelineConfig) -> dict:
    """Run the datatrove curation pipeline and write shards, drops.json and the manifest (finished work is kept)."""
    injected_fault()
    logger = get_run_logger()
    summary = run_curation(config, progress=logger.info)
    logger.info("kept per domain: %s", {d: c["docs_kept"] for d, c in summary["domains"].items()})
    return summary


@flow(name="curate")
def curate_flow(config: PipelineConfig | str) -> dict:
    """Curate every non-synthetic source into per-domain shards; return the curation summary."""
    from automixer.artifacts import curation_markdown, publish

    cfg = resolve(config)
    prepared(check_sources_task, cfg)(cfg)
    summary = prepared(run_curation_task, cfg)(cfg)
    publish("curate", curation_markdown(summary), f"curation of {Path(cfg.work_dir).name}: docs kept and dropped")
    return summary
