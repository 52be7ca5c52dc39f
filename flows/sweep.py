"""Prefect flow: tokenize the shards, sample mixtures and train one proxy per mixture, in one or more rounds.

`execution.sweep: local` (default) trains in local worker processes inside one task; `ray` runs a subflow
whose task runner is Ray (prefect-ray), one Prefect task per proxy-run attempt.
"""

from __future__ import annotations

from pathlib import Path

from prefect import flow, get_run_logger, task

from automixer import stages
from automixer.config import PipelineConfig, ProxyConfig
from automixer.sweep.runner import Failure, Job
from flows.common import RETRIES, FinishedWork, finished_run, finished_sweep, injected_fault, prepared, resolve


@task(name="tokenize", retries=RETRIES, persist_result=True)
def tokenize_task(config: PipelineConfig) -> dict:
    """Train the tokenizer and tokenize every domain."""
    injected_fault()
    meta = stages.tokenize(config)
    get_run_logger().info("train tokens per domain: %s", {d: m["train_tokens"] for d, m in meta["domains"].items()})
    return meta


@task(name="design", persist_result=True)
def design_task(config: PipelineConfig, meta: dict) -> list[dict]:
    """Sample the sweep's mixtures."""
    return stages.design(config, meta)


@task(name="train-proxies", retries=RETRIES, persist_result=True, cache_policy=FinishedWork(digest=finished_sweep))
def train_proxies_task(config: PipelineConfig, mixtures: list[dict]) -> list[dict]:
    """Train one proxy per mixture in local worker processes, skipping finished runs."""
    injected_fault()
    return stages.run_proxies(config, mixtures, get_run_logger())


@task(name="proxy-run", persist_result=True, cache_policy=FinishedWork(digest=finished_run))
def proxy_run_task(job: Job, cfg: ProxyConfig, data_dir: str, runs_dir: str, threads: int) -> dict | Failure:
    """One attempt of one proxy run, on a Ray worker; a training failure is returned (the runner retries it)."""
    from automixer.sweep.ray_engine import attempt_on_worker

    return attempt_on_worker(job, cfg, Path(data_dir), Path(runs_dir), threads)


@flow(name="proxy-runs-ray")
def ray_proxies_flow(config: PipelineConfig, mixtures: list[dict]) -> list[dict]:
    """Train one proxy per mixture as Ray tasks (skipping finished runs) and write the runs table."""
    from automixer.sweep import ray_engine

    logger = get_run_logger()
    options = ray_engine.run_options(config.execution)
    logger.info("proxy runs on Ray, each with %s", {k: v for k, v in options.items() if k != "max_retries"})
    run_task = prepared(proxy_run_task, config)
    threads = max(1, int(config.execution.cpus_per_run))

    def submit(job: Job, args: tuple):
        cfg, data_dir, runs_dir = args
        return run_task.submit(job, cfg, str(data_dir), str(runs_dir), threads)

    return stages.run_proxies(config, mixtures, logger, engine=ray_engine.prefect_engine(submit, options))


@task(name="plan-round", persist_result=True)
def plan_round_task(config: PipelineConfig, mixtures: list[dict], round_no: int) -> list[dict]:
    """Add the next round's mixtures, chosen by expected improvement on the finished runs."""
    return stages.plan_round(config, mixtures, round_no, get_run_logger())


def _train(cfg: PipelineConfig, mixtures: list[dict]) -> list[dict]:
    """Train the proxies with the configured engine."""
    if cfg.execution.sweep == "ray":
        from automixer.sweep.ray_engine import task_runner

        return ray_proxies_flow.with_options(task_runner=task_runner(cfg.execution))(cfg, mixtures)
    return prepared(train_proxies_task, cfg)(cfg, mixtures)


@flow(name="sweep")
def sweep_flow(config: PipelineConfig | str) -> dict:
    """Tokenize, design the sweep and train the proxies (round by round with `sweep.rounds`); return a summary."""
    from automixer.artifacts import publish, sweep_markdown
    from automixer.sweep.noise import read_noise
    from automixer.sweep.runner import sweep_summary

    cfg = resolve(config)
    meta = prepared(tokenize_task, cfg)(cfg)
    mixtures = prepared(design_task, cfg)(cfg, meta)
    results = _train(cfg, mixtures)
    for round_no in range(2, cfg.sweep.rounds + 1):
        mixtures = prepared(plan_round_task, cfg)(cfg, mixtures, round_no)
        results = _train(cfg, mixtures)
    summary = sweep_summary(results)
    get_run_logger().info("proxy runs: %d ok, %d failed", summary["ok"], summary["failed"])
    noise_path = cfg.path("sweep", "noise.json")
    noise = read_noise(noise_path) if noise_path.is_file() else None
    publish("sweep", sweep_markdown(summary, noise), f"proxy sweep of {Path(cfg.work_dir).name}: runs and noise")
    return {"runs": len(results), "ok": summary["ok"], "runs_table": str(cfg.path("sweep", "runs.parquet"))}
