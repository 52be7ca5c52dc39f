"""Train every proxy of a sweep design, in process or in a pool; skip finished runs, record failures."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from automixer.config import ProxyConfig
from automixer.io import write_json_atomic

MAX_ATTEMPTS = 2
"""A run that raises is tried this many times before it is recorded as failed."""


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


def _attempt(item: dict, cfg: ProxyConfig, data_dir: Path, runs_dir: Path, seed: int) -> dict:
    """Train one design item (in this process or a pool worker)."""
    from automixer.proxy.train import train_proxy

    run_id = item["run_id"]
    return train_proxy(run_id, item["weights"], cfg, data_dir, Path(runs_dir) / run_id, seed)


def _worker_init(threads: int) -> None:
    """Pool worker set-up: its share of the CPU cores for torch."""
    import torch

    torch.set_num_threads(threads)


def _execute(
    items: list[dict], cfg: ProxyConfig, data_dir: Path, runs_dir: Path, seed: int, workers: int
) -> Iterator[tuple[dict, dict | BaseException]]:
    """Attempt each item once, yielding (item, result or the exception it raised) as runs finish."""
    threads = max(1, cpu_count() // workers)
    if workers <= 1 or len(items) <= 1:
        import torch

        prev = torch.get_num_threads()
        try:
            if workers > 1:  # a lone retry keeps the per-worker thread count of the pool
                torch.set_num_threads(threads)
            for item in items:
                try:
                    yield item, _attempt(item, cfg, data_dir, runs_dir, seed)
                except Exception as exc:
                    yield item, exc
        finally:
            torch.set_num_threads(prev)
        return
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    ctx = multiprocessing.get_context("spawn")
    n = min(workers, len(items))
    with ProcessPoolExecutor(n, mp_context=ctx, initializer=_worker_init, initargs=(threads,)) as pool:
        futures = {pool.submit(_attempt, item, cfg, data_dir, runs_dir, seed): item for item in items}
        for fut in as_completed(futures):
            try:
                yield futures[fut], fut.result()
            except Exception as exc:  # includes BrokenProcessPool when a worker dies
                yield futures[fut], exc


def failed_result(item: dict, exc: BaseException, seed: int, cfg: ProxyConfig) -> dict:
    """The result recorded for a run that raised on every attempt."""
    return {
        "run_id": item["run_id"],
        "status": "failed",
        "error": f"{type(exc).__name__}: {exc}",
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
        "attempts": MAX_ATTEMPTS,
    }


def run_sweep(
    design: list[dict],
    cfg: ProxyConfig,
    data_dir: Path,
    runs_dir: Path,
    seed: int,
    workers: int = 1,
    progress: Callable[[dict], None] | None = None,
) -> list[dict]:
    """Train every design item into `runs_dir/<run_id>/result.json`; return all results in design order."""
    ids = [item["run_id"] for item in design]
    if len(set(ids)) != len(ids):
        raise ValueError("design has duplicate run_id values")
    results: dict[str, dict] = {}
    todo = []
    for item in design:
        done = finished_result(Path(runs_dir) / item["run_id"])
        if done is None:
            todo.append(item)
        else:
            results[item["run_id"]] = done
            if progress:
                progress(done)
    errors: dict[str, BaseException] = {}
    for _ in range(MAX_ATTEMPTS):
        retry = []
        for item, out in _execute(todo, cfg, Path(data_dir), Path(runs_dir), seed, workers):
            if isinstance(out, BaseException):
                errors[item["run_id"]] = out
                retry.append(item)
                continue
            results[item["run_id"]] = out
            if progress:
                progress(out)
        todo = retry
        if not todo:
            break
    for item in todo:
        result = failed_result(item, errors[item["run_id"]], seed, cfg)
        write_json_atomic(Path(runs_dir) / item["run_id"] / "result.json", result)
        results[item["run_id"]] = result
        if progress:
            progress(result)
    return [results[i] for i in ids]


def sweep_summary(results: list[dict], started: float | None = None) -> dict:
    """Counts of ok/failed runs, mean throughput and (optionally) elapsed seconds of a sweep."""
    ok = [r for r in results if r.get("status") == "ok"]
    summary = {
        "runs": len(results),
        "ok": len(ok),
        "failed": len(results) - len(ok),
        "mean_tokens_per_s": sum(r["tokens_per_s"] for r in ok) / len(ok) if ok else 0.0,
    }
    if started is not None:
        summary["elapsed_s"] = time.perf_counter() - started
    return summary
