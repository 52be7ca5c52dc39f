"""Prefect flow: build verified bug-fix tasks and render them into the `synthetic` domain's shards."""

from __future__ import annotations

from prefect import flow, get_run_logger, task

from automixer import stages
from automixer.config import PipelineConfig


@task(name="generate-tasks")
def generate_tasks_task(config: PipelineConfig) -> dict:
    """Build, verify and gate tasks of every family; return the generation report."""
    from synth import generate_tasks

    logger = get_run_logger()

    def progress(kept: int, total: int) -> None:
        if kept % 25 == 0 or kept == total:
            logger.info("verified tasks: %d / %d", kept, total)

    report = generate_tasks(config.synth, config.path("tasks"), progress=progress)
    logger.info(
        "kept %d of %d candidates (%s); per family: %s",
        report["kept"], report["candidates_tried"], "cached" if report.get("skipped") else "new",
        {name: f"{f['kept']}/{f['tried']}" for name, f in report["families"].items()},
    )  # fmt: skip
    return report


@task(name="render-shards")
def render_shards_task(config: PipelineConfig) -> list[str]:
    """Render every task as training text into `shards/synthetic/`; return the shard paths."""
    from synth.render import write_synthetic_shards

    paths = write_synthetic_shards(
        config.path("tasks", "tasks.parquet"), config.path("shards"), config.curation.shard_docs
    )
    get_run_logger().info("wrote %d synthetic shard(s)", len(paths))
    return [str(p) for p in paths]


@task(name="export-swebench")
def export_swebench_task(config: PipelineConfig) -> int:
    """Write the verified tasks as SWE-bench-style JSONL beside tasks.parquet; return how many."""
    from synth.export import export_swebench

    return export_swebench(config.path("tasks", "tasks.parquet"), config.path("tasks", "swebench.jsonl"))


@task(name="refresh-manifest")
def refresh_manifest_task(config: PipelineConfig) -> dict:
    """Rebuild the shard manifest so it covers the new synthetic shards; return docs per domain."""
    manifest = stages.refresh_manifest(config)
    return {d: t["docs"] for d, t in manifest["domains"].items()}


@flow(name="synthesize")
def synthesize_flow(config: PipelineConfig) -> dict:
    """Generate and verify synthetic tasks, then write the `synthetic` shards; return report and shard paths."""
    if not config.synth.enabled:
        get_run_logger().info("synth.enabled is false: nothing to do")
        return {"report": None, "shards": []}
    report = generate_tasks_task(config)
    exported = export_swebench_task(config)
    shards = render_shards_task(config)
    docs = refresh_manifest_task(config)
    get_run_logger().info("exported %d SWE-bench instances; manifest holds %s documents per domain", exported, docs)
    return {"report": report, "shards": shards}
