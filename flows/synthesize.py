"""Prefect flow: build verified bug-fix tasks and render them into the `synthetic` domain's shards."""

from __future__ import annotations

from prefect import flow, get_run_logger, task

from automixer import stages
from automixer.config import PipelineConfig
from flows.common import RETRIES, injected_fault, prepared, resolve


@task(name="generate-tasks", retries=RETRIES, persist_result=True)
def generate_tasks_task(config: PipelineConfig) -> dict:
    """Build, verify and gate tasks of every family (a finished generation is reused); return the report."""
    from synth import generate_tasks

    injected_fault()
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


@task(name="render-shards", retries=RETRIES, persist_result=True)
def render_shards_task(config: PipelineConfig) -> list[str]:
    """Render every task as training text into `shards/synthetic/`; return the shard paths."""
    from synth.render import write_synthetic_shards

    injected_fault()
    paths = write_synthetic_shards(
        config.path("tasks", "tasks.parquet"), config.path("shards"), config.curation.shard_docs
    )
    get_run_logger().info("wrote %d synthetic shard(s)", len(paths))
    return [str(p) for p in paths]


@task(name="export-swebench", retries=RETRIES, persist_result=True)
def export_swebench_task(config: PipelineConfig) -> int:
    """Write the verified tasks as SWE-bench-style JSONL beside tasks.parquet; return how many."""
    from synth.export import export_swebench

    return export_swebench(config.path("tasks", "tasks.parquet"), config.path("tasks", "swebench.jsonl"))


@task(name="refresh-manifest", retries=RETRIES, persist_result=True)
def refresh_manifest_task(config: PipelineConfig) -> dict:
    """Rebuild the shard manifest so it covers the new synthetic shards; return docs per domain."""
    manifest = stages.refresh_manifest(config)
    return {d: t["docs"] for d, t in manifest["domains"].items()}


@flow(name="synthesize")
def synthesize_flow(config: PipelineConfig | str) -> dict:
    """Generate and verify synthetic tasks, then write the `synthetic` shards; return report and shard paths."""
    from automixer.artifacts import publish, synthesis_markdown

    cfg = resolve(config)
    if not cfg.synth.enabled:
        get_run_logger().info("synth.enabled is false: nothing to do")
        publish("synthesize", synthesis_markdown(None), "synthetic tasks: disabled")
        return {"report": None, "shards": []}
    report = prepared(generate_tasks_task, cfg)(cfg)
    exported = prepared(export_swebench_task, cfg)(cfg)
    shards = prepared(render_shards_task, cfg)(cfg)
    docs = prepared(refresh_manifest_task, cfg)(cfg)
    get_run_logger().info("exported %d SWE-bench instances; manifest holds %s documents per domain", exported, docs)
    publish("synthesize", synthesis_markdown(report), "synthetic tasks verified per family")
    return {"report": report, "shards": shards}
