"""Prefect parent flow: curate -> synthesize -> sweep -> propose, each a subflow."""

from __future__ import annotations

import time

from prefect import flow, get_run_logger

from automixer.artifacts import pipeline_markdown, publish
from automixer.config import PipelineConfig, dump_config
from automixer.io import write_json_atomic
from flows.common import resolve
from flows.curate import curate_flow
from flows.propose import propose_flow
from flows.report import report_flow
from flows.sweep import sweep_flow
from flows.synthesize import synthesize_flow


@flow(name="automixer-pipeline")
def pipeline_flow(config: PipelineConfig | str) -> dict:
    """Run every stage on one config (or a config file) and return the proposal with per-stage wall times."""
    logger = get_run_logger()
    config = resolve(config)
    dump_config(config, config.path("config.yaml"))
    timings: dict[str, float] = {}
    stages = [("curate", curate_flow)]
    if "synthetic" in config.domains:
        stages.append(("synthesize", synthesize_flow))
    stages += [("sweep", sweep_flow), ("propose", propose_flow)]
    outputs: dict[str, dict] = {}
    for name, subflow in stages:
        start = time.perf_counter()
        outputs[name] = subflow(config)
        timings[name] = round(time.perf_counter() - start, 1)
        logger.info("stage %s finished in %.1fs", name, timings[name])
        if name == "curate" and outputs[name].get("submitted"):  # Slurm: shards come later, stop here
            logger.warning("curation was submitted to Slurm; run the pipeline again when its jobs finish")
            return {"proposal": None, "timings": timings, "stages": outputs, "submitted": outputs[name]["submitted"]}
    write_json_atomic(config.path("timings.json"), timings)
    report = _report(config, logger) if config.report.enabled else None
    markdown = pipeline_markdown(timings, outputs["propose"]["spec"], report)
    publish("pipeline", markdown, "stage wall times, the proposal and the report")
    return {"proposal": outputs["propose"], "timings": timings, "stages": outputs, "report": report}


def _report(config: PipelineConfig, logger) -> str | None:
    """Write the HTML report as a subflow; its path, or None if it failed (the proposal stands either way)."""
    state = report_flow(config, return_state=True)
    if state.is_completed():
        return state.result()["html"]
    logger.warning("the report failed (%s); the proposal is written. Rerun it with `automixer report %s`",
                   state.message, config.work_dir)  # fmt: skip
    return None
