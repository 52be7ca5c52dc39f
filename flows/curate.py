"""Prefect flow: read, filter, deduplicate and shard the configured sources (datatrove underneath)."""

from __future__ import annotations

from prefect import flow, get_run_logger, task

from automixer.config import PipelineConfig
from automixer.curate import check_sources, run_curation


@task(name="check-sources")
def check_sources_task(config: PipelineConfig) -> list[str]:
    """Resolve every source and read its first document; return the source names."""
    names = [spec["name"] for spec in check_sources(config)]
    get_run_logger().info("sources ok: %s", names)
    return names


@task(name="run-curation")
def run_curation_task(config: PipelineConfig) -> dict:
    """Run the datatrove curation pipeline and write shards, drops.json and the manifest."""
    logger = get_run_logger()
    summary = run_curation(config, progress=logger.info)
    logger.info("kept per domain: %s", {d: c["docs_kept"] for d, c in summary["domains"].items()})
    return summary


@flow(name="curate")
def curate_flow(config: PipelineConfig) -> dict:
    """Curate every non-synthetic source into per-domain shards; return the curation summary."""
    check_sources_task(config)
    return run_curation_task(config)
