"""Prefect flow: execute the analysis notebooks on the run and write its HTML report."""

from __future__ import annotations

from prefect import flow, get_run_logger, task

from automixer.config import PipelineConfig
from flows.common import resolve


@task(name="build-report")
def report_task(config: PipelineConfig) -> dict:
    """Execute the notebooks on the work dir and write report/report.html; its figures per notebook."""
    from automixer.report import build_report

    logger = get_run_logger()
    result = build_report(
        config.work_dir, show_code=config.report.show_code, timeout=config.report.timeout_s, progress=logger.info
    )
    return {"html": str(result.html), "figures": result.figures, "skipped": result.skipped, "seconds": result.seconds}


@flow(name="report")
def report_flow(config: PipelineConfig | str) -> dict:
    """Write the run's HTML report and link it from this flow run's artifacts."""
    from prefect.artifacts import create_link_artifact

    from automixer.artifacts import ARTIFACT_KEYS

    cfg = resolve(config)
    out = report_task(cfg)
    figures = ", ".join(f"{name} {n}" for name, n in out["figures"].items())
    get_run_logger().info("report written to %s (figures: %s) in %.1fs", out["html"], figures, out["seconds"])
    create_link_artifact(
        key=ARTIFACT_KEYS["report"], link=f"file://{out['html']}", link_text="automixer report (HTML)",
        description=f"report of {cfg.work_dir}: figures per notebook {figures}",
    )  # fmt: skip
    return out
