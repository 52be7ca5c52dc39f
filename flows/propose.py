"""Prefect flow: fit the predictor on the sweep and write the constrained proposal."""

from __future__ import annotations

from prefect import flow, get_run_logger, task

from automixer import stages
from automixer.config import PipelineConfig
from flows.common import prepared, resolve


@task(name="fit-and-propose", persist_result=True)
def propose_task(config: PipelineConfig) -> dict:
    """Fit, optimise under constraints and write the mixture YAML."""
    return stages.propose(config)


@flow(name="propose")
def propose_flow(config: PipelineConfig | str) -> dict:
    """Propose the mixture for the full run from the finished sweep."""
    from automixer.artifacts import proposal_markdown, publish

    cfg = resolve(config)
    out = prepared(propose_task, cfg)(cfg)
    prov = out["spec"]["provenance"]
    get_run_logger().info(
        "proposal %s (predictor %s, CV Spearman %.3f) written to %s",
        out["spec"]["weights"],
        prov.get("predictor"),
        prov.get("cv_spearman", float("nan")),
        out["path"],
    )
    publish("propose", proposal_markdown(out["spec"]), f"proposal {out['spec']['name']}: weights, prediction, CV")
    return out
