"""Prefect flow: tokenize the shards, sample mixtures and train one proxy per mixture, in one or more rounds."""

from __future__ import annotations

from prefect import flow, get_run_logger, task

from automixer import stages
from automixer.config import PipelineConfig


@task(name="tokenize")
def tokenize_task(config: PipelineConfig) -> dict:
    """Train the tokenizer and tokenize every domain."""
    meta = stages.tokenize(config)
    get_run_logger().info("train tokens per domain: %s", {d: m["train_tokens"] for d, m in meta["domains"].items()})
    return meta


@task(name="design")
def design_task(config: PipelineConfig, meta: dict) -> list[dict]:
    """Sample the sweep's mixtures."""
    return stages.design(config, meta)


@task(name="train-proxies")
def train_proxies_task(config: PipelineConfig, mixtures: list[dict]) -> list[dict]:
    """Train one proxy per mixture, skipping finished runs."""
    return stages.run_proxies(config, mixtures, get_run_logger())


@task(name="plan-round")
def plan_round_task(config: PipelineConfig, mixtures: list[dict], round_no: int) -> list[dict]:
    """Add the next round's mixtures, chosen by expected improvement on the finished runs."""
    return stages.plan_round(config, mixtures, round_no, get_run_logger())


@flow(name="sweep")
def sweep_flow(config: PipelineConfig) -> dict:
    """Tokenize, design the sweep and train the proxies (round by round with `sweep.rounds`); return a summary."""
    meta = tokenize_task(config)
    mixtures = design_task(config, meta)
    results = train_proxies_task(config, mixtures)
    for round_no in range(2, config.sweep.rounds + 1):
        mixtures = plan_round_task(config, mixtures, round_no)
        results = train_proxies_task(config, mixtures)
    ok = sum(r.get("status") == "ok" for r in results)
    get_run_logger().info("proxy runs: %d ok, %d failed", ok, len(results) - ok)
    return {"runs": len(results), "ok": ok, "runs_table": str(config.path("sweep", "runs.parquet"))}
