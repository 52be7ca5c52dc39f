"""The sweep's distributed engine: every proxy-run attempt a Prefect task on a Ray cluster (prefect-ray).

Ray rather than Dask because datatrove's curation executor is Ray too (one cluster for both stages), and
because Ray schedules by declared resources: a run asks for `gpus_per_run` GPUs where the cluster has GPUs
and for `cpus_per_run` CPU slots otherwise. Ray's own retries are off (`max_retries=0`): a worker that dies
fails its attempt as `crashed`, and `run_sweep` retries and records it exactly as with local workers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from automixer.config import ExecutionConfig, ProxyConfig
from automixer.sweep.runner import Engine, Failure, Job, attempt

if TYPE_CHECKING:
    from prefect.futures import PrefectFuture
    from prefect_ray import RayTaskRunner


def task_runner(execution: ExecutionConfig) -> RayTaskRunner:
    """A RayTaskRunner joining `execution.ray_address`, or starting a local Ray instance when it is None.

    A Ray instance already started in this process (`ray.init`) is used as it is.
    """
    from prefect_ray import RayTaskRunner

    if execution.ray_address:
        return RayTaskRunner(address=execution.ray_address)
    return RayTaskRunner(init_kwargs={"include_dashboard": False})


def run_options(execution: ExecutionConfig) -> dict[str, Any]:
    """Ray options of one attempt: its CPU slots, GPUs only where the cluster has any, no Ray-level retries."""
    import ray

    has_gpus = ray.cluster_resources().get("GPU", 0) > 0
    return {
        "num_cpus": execution.cpus_per_run,
        "num_gpus": execution.gpus_per_run if has_gpus else 0,
        "max_retries": 0,
    }


def attempt_on_worker(job: Job, cfg: ProxyConfig, data_dir: Path, runs_dir: Path, threads: int) -> dict | Failure:
    """Train one attempt on this (Ray worker) process with `threads` torch threads unless the config sets them."""
    import torch

    torch.set_num_threads(max(1, threads))
    return attempt(job, cfg, Path(data_dir), Path(runs_dir))


def outcome(future: PrefectFuture) -> dict | Failure:
    """The attempt's result, or a Failure: `crashed` when its Ray worker died, `error` when the task failed."""
    future.wait()
    state = future.state
    if state.is_completed():
        return future.result()
    reason = "crashed" if state.is_crashed() else "error"
    return Failure(reason, f"Ray task {state.name}: {state.message}")


def prefect_engine(submit: Callable[[Job, tuple], PrefectFuture], options: dict[str, Any]) -> Engine:
    """An engine that submits each job with `submit` (a Prefect task on the flow's Ray runner) under `options`."""

    def run(jobs: list[Job], args: tuple) -> Iterator[tuple[Job, dict | Failure]]:
        from prefect.futures import as_completed
        from prefect_ray.context import remote_options

        with remote_options(**options):
            futures = {submit(job, args): job for job in jobs}
        for future in as_completed(list(futures)):
            yield futures[future], outcome(future)

    return run
