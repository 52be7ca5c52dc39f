"""Train every proxy of a sweep design; skip finished runs, retry and record failures.

Where the attempts run is the engine's business: local worker processes (default), this process, or Ray
tasks (`automixer.sweep.ray_engine`); the rules below are the same for all of them.

Each run is tried at most MAX_ATTEMPTS times. A run fails for one of four reasons: `diverged` (NaN/inf
loss), `oom` (out of memory), `crashed` (its worker process died: a segfault, os._exit, the kernel's OOM
killer) or `error` (any other exception). The retry uses the same seed, except after `diverged`, where it
reseeds to `seed + 1` (a diverging seed is deterministic on CPU, so the same seed would only diverge
again); the seed used is recorded in result.json. A design item's own `seed` (anchor replicates) replaces
the sweep's; its `replicate_of` and `round` are recorded in result.json too. A run that fails every attempt gets a failed
result.json with its `reason` and `error`; the sweep goes on, and the runs table leaves it out. A rerun
skips every run whose result.json says ok and tries the failed ones again.

Fault injection (tests and drills): the environment variable AUTOMIXER_FAULTS, read by `run_sweep`, lists
`run_id:kind[@attempt]` entries separated by commas; kind `nan` trains that run with lr = 1e6 (it really
diverges), `oom` with a 2**45-sequence batch (the allocation really fails), `crash` makes its worker call
os._exit(CRASH_EXIT_CODE). With `@attempt` the fault applies to that attempt only, else to every one.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TypeAlias

from automixer.config import ProxyConfig
from automixer.io import write_json_atomic

if TYPE_CHECKING:
    from multiprocessing.connection import Connection
    from multiprocessing.context import SpawnContext

MAX_ATTEMPTS = 2
"""A run is tried this many times before it is recorded as failed."""
FAULTS_ENV = "AUTOMIXER_FAULTS"
"""Environment variable of the fault-injection hook (see the module docstring)."""
FAULT_KINDS = ("nan", "oom", "crash")
CRASH_EXIT_CODE = 86
"""Exit status of a worker killed by an injected `crash` fault."""
OOM_BATCH = 2**45
"""Sequences per batch of an injected `oom` fault: their sampling needs 256 TiB."""
ITEM_KEYS = ("replicate_of", "round")
"""Design-item keys copied into result.json (and from there into the runs table)."""


@dataclass(frozen=True)
class Job:
    """One attempt at one design item."""

    item: dict
    attempt: int
    seed: int
    fault: str | None = None


@dataclass(frozen=True)
class Failure:
    """An attempt that produced no result.json of its own: why, and the message."""

    reason: str
    error: str


Outcome: TypeAlias = "dict | Failure"
Engine: TypeAlias = "Callable[[list[Job], tuple], Iterator[tuple[Job, Outcome]]]"
"""Attempts jobs (args: ProxyConfig, data dir, runs dir) and yields each job with its outcome as it ends."""


def cpu_count() -> int:
    """CPU cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def finished_result(run_dir: Path) -> dict | None:
    """The result of a run that finished with status ok, else None."""
    path = Path(run_dir) / "result.json"
    if not path.is_file():
        return None
    try:
        result = json.loads(path.read_text())
    except ValueError:
        return None
    return result if result.get("status") == "ok" else None


def parse_faults(text: str) -> dict[str, tuple[str, int | None]]:
    """Parse AUTOMIXER_FAULTS (`run_id:kind[@attempt],...`) into {run_id: (kind, attempt or None)}."""
    faults: dict[str, tuple[str, int | None]] = {}
    for entry in filter(None, (e.strip() for e in text.split(","))):
        run_id, _, spec = entry.rpartition(":")
        kind, _, attempt = spec.partition("@")
        if not run_id or kind not in FAULT_KINDS or (attempt and not attempt.isdigit()):
            raise ValueError(
                f"{FAULTS_ENV}: bad entry {entry!r}; expected run_id:kind[@attempt], kind in {FAULT_KINDS}"
            )
        faults[run_id] = (kind, int(attempt) if attempt else None)
    return faults


def _faulted(cfg: ProxyConfig, fault: str | None) -> ProxyConfig:
    """The config of an attempt under an injected fault (`crash` exits the process)."""
    if fault == "crash":
        os._exit(CRASH_EXIT_CODE)
    if fault == "nan":
        return cfg.model_copy(update={"lr": 1e6})
    if fault == "oom":
        return cfg.model_copy(update={"batch_size": OOM_BATCH, "train_tokens": OOM_BATCH * cfg.seq_len})
    return cfg


def attempt(job: Job, cfg: ProxyConfig, data_dir: Path, runs_dir: Path) -> dict | Failure:
    """Train one attempt of one design item in this process; an exception becomes a Failure (a fault may exit)."""
    from automixer.proxy.train import is_oom, train_proxy

    run_id = job.item["run_id"]
    try:
        cfg = _faulted(cfg, job.fault)
        return train_proxy(run_id, job.item["weights"], cfg, data_dir, Path(runs_dir) / run_id, job.seed, job.attempt)
    except Exception as exc:
        return Failure("oom" if is_oom(exc) else "error", f"{type(exc).__name__}: {exc}")


def _worker_main(conn: Connection, threads: int, args: tuple) -> None:
    """Worker process: take jobs from the pipe, answer each with its result or Failure, stop at EOF."""
    import torch

    torch.set_num_threads(threads)
    while True:
        try:
            job = conn.recv()
        except (EOFError, OSError):
            return
        try:
            conn.send(attempt(job, *args))
        except (BrokenPipeError, OSError):
            return


def local_engine(workers: int) -> Engine:
    """The default engine: `workers` spawned worker processes (crash isolation), or this process when 0."""
    if workers < 1:
        return _in_process
    return lambda jobs, args: _in_workers(jobs, args, workers)


def _in_process(jobs: list[Job], args: tuple) -> Iterator[tuple[Job, dict | Failure]]:
    """Attempt each job in this process (no crash isolation)."""
    for job in jobs:
        yield job, attempt(job, *args)


def _exit_reason(exitcode: int | None) -> str:
    if exitcode is not None and exitcode < 0:
        import signal

        return f"worker process killed by signal {signal.Signals(-exitcode).name}"
    return f"worker process exited with status {exitcode} before reporting a result"


class _Worker:
    """A spawned worker process, its end of the pipe and the job it is running."""

    def __init__(self, ctx: SpawnContext, threads: int, args: tuple) -> None:
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_worker_main, args=(child, threads, args), daemon=True)
        self.proc.start()
        child.close()
        self.job: Job | None = None

    def stop(self) -> None:
        """Close the pipe (the worker exits at EOF); terminate it if it is still running a job."""
        self.conn.close()
        if self.job is not None and self.proc.is_alive():
            self.proc.terminate()
        self.proc.join()


def _in_workers(jobs: list[Job], args: tuple, workers: int) -> Iterator[tuple[Job, dict | Failure]]:
    """Attempt jobs in `workers` spawned processes; a worker that dies fails its job as `crashed` and is replaced."""
    import multiprocessing
    from multiprocessing.connection import wait

    ctx = multiprocessing.get_context("spawn")
    threads = max(1, cpu_count() // workers)
    queue = list(reversed(jobs))
    pool = [_Worker(ctx, threads, args) for _ in range(min(workers, len(jobs)))]
    try:
        while True:
            for i, w in enumerate(pool):
                if w.job is None and queue:
                    if not w.proc.is_alive():
                        w.stop()
                        pool[i] = w = _Worker(ctx, threads, args)
                    w.job = queue.pop()
                    with contextlib.suppress(BrokenPipeError, OSError):  # a dead worker is caught below
                        w.conn.send(w.job)
            busy = [w for w in pool if w.job is not None]
            if not busy:
                return
            ready = wait([w.conn for w in busy] + [w.proc.sentinel for w in busy])
            for w in busy:
                if w.conn not in ready and w.proc.sentinel not in ready:
                    continue
                try:
                    out = w.conn.recv() if w.conn.poll() else None
                except (EOFError, OSError):
                    out = None
                if out is None:  # died without answering
                    w.proc.join()
                    out = Failure("crashed", _exit_reason(w.proc.exitcode))
                job, w.job = w.job, None
                yield job, out
    finally:
        for w in pool:
            w.stop()


def failed_result(item: dict, failure: Failure, seed: int, cfg: ProxyConfig, attempts: int) -> dict:
    """The result recorded for a run that failed every attempt without writing a result of its own."""
    return {
        "run_id": item["run_id"],
        "status": "failed",
        "reason": failure.reason,
        "error": failure.error,
        "weights": item.get("weights", {}),
        "metrics": {},
        "tokens_seen": {},
        "epochs": {},
        "seed": seed,
        "wall_s": 0.0,
        "train_s": 0.0,
        "tokens_per_s": 0.0,
        "n_params": None,
        "device": None,
        "proxy": cfg.model_dump(),
        "attempts": attempts,
        **{k: item[k] for k in ITEM_KEYS if k in item},
    }


def _annotated(result: dict, item: dict, runs_dir: Path) -> dict:
    """The result with the item's `replicate_of`/`round`; result.json is rewritten when they were missing."""
    extra = {k: item[k] for k in ITEM_KEYS if k in item and result.get(k) != item[k]}
    if not extra:
        return result
    result = {**result, **extra}
    write_json_atomic(Path(runs_dir) / item["run_id"] / "result.json", result)
    return result


def _jobs(items: list[dict], attempt: int, seed: int, last: dict, faults: dict) -> list[Job]:
    """This attempt's jobs: the retry seed rule and the injected faults applied."""
    jobs = []
    for item in items:
        prev = last.get(item["run_id"])
        reseed = isinstance(prev, dict) and prev.get("reason") == "diverged"
        kind, only = faults.get(item["run_id"], (None, None))
        fault = kind if only in (None, attempt) else None
        own = int(item.get("seed", seed))
        jobs.append(Job(item, attempt, own + 1 if reseed else own, fault))
    return jobs


def run_sweep(
    design: list[dict],
    cfg: ProxyConfig,
    data_dir: Path,
    runs_dir: Path,
    seed: int,
    workers: int = 1,
    progress: Callable[[dict], None] | None = None,
    engine: Engine | None = None,
) -> list[dict]:
    """Train every design item into `runs_dir/<run_id>/result.json`; return all results in design order.

    Each item trains with its own `seed` when it has one, else with `seed` (the sweep's).

    `workers` >= 1 trains in that many worker processes; 0 trains in this process (no crash isolation).
    `engine` replaces both (e.g. Ray tasks, `automixer.sweep.ray_engine`); skipping, retries, reseeding and
    failure records are the same whatever the engine.
    """
    ids = [item["run_id"] for item in design]
    if len(set(ids)) != len(ids):
        raise ValueError("design has duplicate run_id values")
    faults = parse_faults(os.environ.get(FAULTS_ENV, ""))
    if engine is None and workers < 1 and any(kind == "crash" for kind, _ in faults.values()):
        raise ValueError(f"{FAULTS_ENV}: a crash fault needs workers >= 1 (it would end this process)")
    results: dict[str, dict] = {}
    todo = []
    for item in design:
        done = finished_result(Path(runs_dir) / item["run_id"])
        if done is None:
            todo.append(item)
            continue
        results[item["run_id"]] = done = _annotated(done, item, runs_dir)
        if progress:
            progress(done)
    args = (cfg, Path(data_dir), Path(runs_dir))
    last: dict[str, dict | Failure] = {}
    for attempt in range(1, MAX_ATTEMPTS + 1):
        jobs = _jobs(todo, attempt, seed, last, faults)
        retry = []
        run = (engine or local_engine(workers))(jobs, args)
        with contextlib.closing(run):
            for job, out in run:
                run_id = job.item["run_id"]
                final = attempt == MAX_ATTEMPTS
                if isinstance(out, Failure) and final:
                    out = failed_result(job.item, out, job.seed, cfg, attempt)
                    write_json_atomic(Path(runs_dir) / run_id / "result.json", out)
                if isinstance(out, dict) and (out.get("status") == "ok" or final):
                    results[run_id] = out = _annotated(out, job.item, runs_dir)
                    if progress:
                        progress(out)
                    continue
                last[run_id] = out
                retry.append(job.item)
        todo = retry
        if not todo:
            break
    return [results[i] for i in ids]


def sweep_summary(results: list[dict], started: float | None = None) -> dict:
    """Counts of ok and failed runs (failed by reason), retried runs, mean throughput, elapsed seconds."""
    ok = [r for r in results if r.get("status") == "ok"]
    reasons: dict[str, int] = {}
    for r in results:
        if r.get("status") != "ok":
            reasons[r.get("reason") or "error"] = reasons.get(r.get("reason") or "error", 0) + 1
    summary = {
        "runs": len(results),
        "ok": len(ok),
        "failed": len(results) - len(ok),
        "failed_by_reason": dict(sorted(reasons.items())),
        "failed_runs": [r["run_id"] for r in results if r.get("status") != "ok"],
        "retried": sum(1 for r in results if (r.get("attempts") or 1) > 1),
        "mean_tokens_per_s": sum(r["tokens_per_s"] for r in ok) / len(ok) if ok else 0.0,
    }
    if started is not None:
        summary["elapsed_s"] = time.perf_counter() - started
    return summary
