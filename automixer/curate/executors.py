"""datatrove executors chosen by config: the same curation stages run here, on a Ray cluster or on Slurm.

`build_stages` makes the stage list once; this module only decides what runs it. Every executor keeps
datatrove's per-task completion markers (`logs/<stage>/completions/`), so a rerun skips finished tasks
whichever executor ran them.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from automixer.config import PipelineConfig
from automixer.curate.pipeline import Stage
from automixer.io import Location, UrlPath, filesystem, is_file, join, read_text, write_json_atomic

SLURM_JOBS = "slurm_jobs.json"
"""File in a curation run folder recording the Slurm jobs submitted for it."""


def curation_tasks(cfg: PipelineConfig, specs: list[dict]) -> int:
    """Tasks of the parallel stages: `curation.workers` locally; on Ray/Slurm `execution.tasks`, else one per input file."""
    ex = cfg.execution
    if ex.curation == "local":
        return cfg.curation.workers
    if ex.tasks:
        return ex.tasks
    return max(1, sum(max(1, len(s.get("files") or [])) for s in specs))


def stage_executor(cfg: PipelineConfig, stage: Stage, logging_dir: Location, job_name: str = "automixer") -> Any:
    """The datatrove executor that runs one stage under `cfg.execution` (not started)."""
    name, steps, tasks, _ = stage
    ex, log = cfg.execution, str(logging_dir)
    if ex.curation == "local":
        from datatrove.executor import LocalPipelineExecutor

        workers = _local_workers(cfg, stage)
        return LocalPipelineExecutor(steps, tasks=tasks, workers=workers, logging_dir=log, skip_completed=True)
    if ex.curation == "ray":
        from datatrove.executor import RayPipelineExecutor

        return RayPipelineExecutor(
            steps,
            tasks=tasks,
            logging_dir=log,
            skip_completed=True,
            cpus_per_task=ex.cpus_per_run,
        )  # one rank per actor: datatrove runs an actor's ranks in processes forked from it, all at once
    from datatrove.executor import SlurmPipelineExecutor

    s = ex.slurm
    return SlurmPipelineExecutor(
        steps,
        tasks=tasks,
        time=s.time,
        partition=s.partition,
        cpus_per_task=s.cpus_per_task,
        mem_per_cpu_gb=s.mem_per_cpu_gb,
        venv_path=s.venv_path or _active_venv(),
        sbatch_args=dict(s.sbatch_args),
        job_name=f"{job_name}-{name}",
        logging_dir=log,
        skip_completed=True,
    )


def _active_venv() -> str | None:
    """The activate script of the virtualenv this process runs in, if any (compute nodes source it)."""
    if sys.prefix == sys.base_prefix:
        return None
    activate = Path(sys.prefix) / "bin" / "activate"
    return str(activate) if activate.is_file() else None


def slurm_script(executor: Any) -> str:
    """The sbatch script a SlurmPipelineExecutor would submit for its tasks, built without submitting it."""
    tasks = max(1, math.ceil(executor.tasks / executor.tasks_per_job))
    array = min(tasks, executor.max_array_size) if executor.max_array_size != -1 else tasks
    pik = executor.logging_dir.resolve_paths("executor.pik")
    return executor.get_launch_file_contents(
        executor.get_sbatch_args(array), f"srun -l -n {executor.nodes_per_task} launch_pickled_pipeline {pik}"
    )


def incomplete_tasks(executor: Any) -> int:
    """Tasks of a stage without a datatrove completion marker."""
    return len(executor.get_incomplete_ranks(skip_completed=True))


def check_slurm() -> None:
    """Fail with a clear message when Slurm's `sbatch` is not on PATH."""
    if shutil.which("sbatch") is None:
        raise RuntimeError(
            "execution.curation is 'slurm' but `sbatch` is not on PATH: run `automixer curate` on a Slurm "
            "login node (the compute nodes need this environment and a filesystem or object store shared with it), "
            "or set execution.curation to 'local' or 'ray'"
        )


@contextlib.contextmanager
def ray_session(address: str | None) -> Iterator[None]:
    """Join the Ray cluster at `address` (or start a local one); shut down only a Ray instance started here."""
    import ray

    if ray.is_initialized():
        yield
        return
    ray.init(address=address, include_dashboard=False, log_to_driver=False)
    try:
        yield
    finally:
        ray.shutdown()


def run_stages(
    cfg: PipelineConfig, stages: list[Stage], run_dir: Location, progress: Callable[[str], None] | None = None
) -> dict | None:
    """Run the stages in order with the configured executor; on Slurm submit them as dependent jobs instead.

    Returns None once every stage has finished here (local, Ray), or the Slurm submission
    (`{"jobs": {stage: job id}, "pending_tasks": n}`) whose results a later rerun collects.
    """
    say = progress or (lambda msg: None)
    kind = cfg.execution.curation
    if kind == "slurm":
        return _submit_slurm(cfg, stages, run_dir, say)
    session = ray_session(cfg.execution.ray_address) if kind == "ray" else contextlib.nullcontext()
    with session:
        for stage in stages:
            name, _, tasks, _ = stage
            say(f"curate: stage {name} ({tasks} task{'s' * (tasks > 1)}, {_how(cfg, stage)})")
            executor = quietly(
                lambda stage=stage: _run(cfg, stage, run_dir), join(run_dir, "logs", name, "console.log")
            )
            if (left := incomplete_tasks(executor)) > 0:
                raise RuntimeError(
                    f"curation stage {name}: {left} of {tasks} task(s) failed; see {run_dir}/logs/{name}"
                )
    return None


def _run(cfg: PipelineConfig, stage: Stage, run_dir: Location) -> Any:
    executor = stage_executor(cfg, stage, join(run_dir, "logs", stage[0]))
    executor.run()
    return executor


def _local_workers(cfg: PipelineConfig, stage: Stage) -> int:
    """Worker processes of a stage on the local executor: a pool only where it pays for its start-up."""
    _, _, tasks, parallel = stage
    return min(cfg.curation.workers, tasks) if parallel else 1


def _how(cfg: PipelineConfig, stage: Stage) -> str:
    if cfg.execution.curation == "local":
        n = _local_workers(cfg, stage)
        return f"{n} worker{'s' * (n > 1)}"
    return f"Ray, {cfg.execution.cpus_per_run:g} CPU each"


def _submit_slurm(
    cfg: PipelineConfig, stages: list[Stage], run_dir: Location, say: Callable[[str], None]
) -> dict | None:
    """Submit every unfinished stage as a Slurm array job depending on the one before; None if all are done."""
    executors, job = [], f"automixer-{str(run_dir).rstrip('/').rsplit('-', 1)[-1][:8]}"
    for stage in stages:
        executors.append(stage_executor(cfg, stage, join(run_dir, "logs", stage[0]), job_name=job))
    pending = sum(incomplete_tasks(e) for e in executors)
    if not pending:
        return None
    record = join(run_dir, SLURM_JOBS)
    if is_file(record):
        earlier = json.loads(read_text(record))
        raise RuntimeError(
            f"Slurm jobs {earlier['jobs']} were submitted for this run at {earlier['submitted']} and {pending} task(s) "
            f"have not finished: rerun `automixer curate` once they have (check `squeue`, logs under {run_dir}/logs), "
            f"or delete {record} to submit the unfinished tasks again"
        )
    check_slurm()
    for before, after in zip(executors, executors[1:], strict=False):
        after.depends = before
    quietly(executors[-1].run, join(run_dir, "logs", "slurm-submit.log"))  # launches the whole chain
    jobs = {stage[0]: str(e.job_id) for stage, e in zip(stages, executors, strict=True) if e.job_id not in (None, -1)}
    submission = {
        "jobs": jobs,
        "pending_tasks": pending,
        "submitted": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    write_json_atomic(record, submission)
    say(f"curate: submitted {len(jobs)} Slurm job(s) {jobs}; rerun `automixer curate` when they finish")
    return submission


def quietly(fn: Callable[[], Any], log_path: Location) -> Any:
    """Run `fn` with datatrove's console output (banners, warnings, stats tables) sent to `log_path`; return its value."""
    from loguru import logger

    remote = isinstance(log_path, UrlPath)
    if remote:
        fd, tmp = tempfile.mkstemp(prefix="automixer-console-", suffix=".log")
        os.close(fd)
    local = Path(tmp) if remote else Path(log_path)
    local.parent.mkdir(parents=True, exist_ok=True)
    try:
        with open(local, "a") as log, contextlib.redirect_stderr(log), contextlib.redirect_stdout(log):
            return fn()
    finally:
        logger.remove()  # datatrove's sinks point at `log`, closed by now
        logger.add(sys.stderr, level="WARNING")
        if remote:
            fs, path = filesystem(log_path)
            fs.put_file(str(local), path)
            local.unlink(missing_ok=True)
