"""Generate verified bug-fix tasks: discover doctested functions, mutate them, keep mutants the tests catch."""

from __future__ import annotations

import hashlib
import json
import platform
import random
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from automixer.io import done_marker, stable_hash, write_json_atomic, write_parquet_atomic, write_text_atomic
from synth.discover import SourceFile, discover, source_paths
from synth.mutate import OPERATORS, Mutation, MutationError, mutate
from synth.sandbox import isolation_level
from synth.task import Task, make_patch, tasks_table
from synth.verify import Limits, classify, run_tests, test_command, workspace_files

if TYPE_CHECKING:
    from automixer.config import SynthConfig

SYNTH_VERSION = "2"
"""Bump when generation changes in a way that changes its output (invalidates completion markers)."""


@dataclass(frozen=True)
class Candidate:
    """One mutant waiting to be verified."""

    source: SourceFile
    function: str
    tier: int
    """0: the function has its own doctest; 1: it is only exercised by the module's other doctests."""
    seed: int
    mutation: Mutation | None
    """None when the mutation could not be written back as valid code (`syntax_error`)."""
    operator: str


def limits_for(cfg: SynthConfig) -> Limits:
    """Sandbox limits of one verification run under a synth config."""
    return Limits(timeout_s=cfg.timeout_s, memory_mb=cfg.memory_mb, per_test_s=max(0.5, min(1.0, cfg.timeout_s / 10)))


def config_hash(cfg: SynthConfig) -> str:
    """Hash of everything that determines the output: settings, source file contents, Python version."""
    settings = cfg.model_dump(mode="json", exclude={"workers", "enabled"})
    digest = hashlib.sha256()
    for rel, path in source_paths(cfg.sources):
        digest.update(rel.encode() + b"\0" + hashlib.sha256(path.read_bytes()).digest())
    return stable_hash(
        json.dumps(settings, sort_keys=True), digest.hexdigest(), platform.python_version(), SYNTH_VERSION
    )


def _function_mutants(sf: SourceFile, qualname: str, tier: int, seed: int, k: int) -> Iterator[Candidate]:
    """Up to `k` distinct mutants of one function, trying operators in a seeded order."""
    rng = random.Random(int(stable_hash(str(seed), sf.rel, qualname), 16))
    ops = list(OPERATORS)
    rng.shuffle(ops)
    seen: set[str] = set()
    for attempt in range(2 * len(ops)):
        if len(seen) >= k:
            return
        op, mseed = ops[attempt % len(ops)], rng.randrange(2**31)
        try:
            mutation = mutate(sf.text, qualname, op, mseed)
        except MutationError:
            seen.add(f"syntax_error:{op}:{mseed}")
            yield Candidate(sf, qualname, tier, mseed, None, op)
            continue
        if mutation is not None and mutation.source not in seen:
            seen.add(mutation.source)
            yield Candidate(sf, qualname, tier, mseed, mutation, op)


def iter_candidates(files: list[SourceFile], seed: int, k: int) -> Iterator[Candidate]:
    """Mutants in a seeded order: every doctested function first, then the functions they exercise."""
    for tier, attr in ((0, "functions"), (1, "covered")):
        units = [(sf, q) for sf in files for q in getattr(sf, attr)]
        random.Random(int(stable_hash(str(seed), f"tier{tier}"), 16)).shuffle(units)
        for sf, qualname in units:
            yield from _function_mutants(sf, qualname, tier, seed, k)


class Baselines:
    """Per-module set of doctests that pass on the original code, computed once (thread-safe)."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self._guard = threading.Lock()
        self._locks: dict[str, threading.Lock] = {}
        self._done: dict[str, list[str]] = {}

    def get(self, sf: SourceFile) -> list[str]:
        """Sorted ids of the module's doctests that pass, stably, under the exact task command."""
        with self._guard:
            lock = self._locks.setdefault(sf.rel, threading.Lock())
        with lock:
            if sf.rel not in self._done:
                self._done[sf.rel] = self._compute(sf)
            return self._done[sf.rel]

    def _compute(self, sf: SourceFile) -> list[str]:
        files = workspace_files(sf.module, sf.text)
        ids = sorted(run_tests(files, test_command(sf.module, [], self.limits.per_test_s), self.limits).passing())
        for _ in range(3):  # rerun the selection itself until it passes as a whole
            if not ids:
                break
            again = sorted(
                run_tests(files, test_command(sf.module, ids, self.limits.per_test_s), self.limits).passing()
            )
            if again == ids:
                return ids
            ids = sorted(set(ids) & set(again))
        return []


def evaluate(c: Candidate, baselines: Baselines) -> tuple[str | None, Task | None]:
    """Verify one candidate: (reject reason, None) or (None, the task)."""
    if c.mutation is None:
        return "syntax_error", None
    sf, limits = c.source, baselines.limits
    baseline = baselines.get(sf)
    if not baseline or (c.tier == 0 and f"{sf.module}.{c.function}" not in baseline):
        return "original_fails", None
    command = test_command(sf.module, baseline, limits.per_test_s)
    broken = workspace_files(sf.module, c.mutation.source)
    quick = test_command(sf.module, baseline, limits.per_test_s, stop_on_timeout=True)  # a timeout rejects anyway
    reason, failing, passing = classify(set(baseline), run_tests(broken, quick, limits))
    if reason is not None:
        return reason, None
    task = Task(
        task_id=stable_hash(sf.rel, c.function, c.operator, c.mutation.source),
        source_path=sf.rel, module=sf.module, function=c.function, operator=c.operator, seed=c.seed,
        description=c.mutation.description, files=broken, test_command=command, fail_to_pass=failing,
        pass_to_pass=passing, gold_patch=make_patch(broken, workspace_files(sf.module, sf.text)),
        isolation=isolation_level(),
    )  # fmt: skip
    return None, task


@dataclass
class _Tally:
    tried: int = 0
    rejected: Counter = field(default_factory=Counter)
    per_operator: dict = field(default_factory=lambda: {op: {"tried": 0, "kept": 0} for op in OPERATORS})

    def add(self, c: Candidate, reason: str | None) -> None:
        self.tried += 1
        self.per_operator[c.operator]["tried"] += 1
        if reason is None:
            self.per_operator[c.operator]["kept"] += 1
        else:
            self.rejected[reason] += 1


def verify_candidates(
    candidates: Iterator[Candidate],
    baselines: Baselines,
    max_tasks: int,
    workers: int,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[list[Task], _Tally]:
    """Verify candidates in parallel but decide in candidate order, so the kept tasks do not depend on timing."""
    kept: list[Task] = []
    tally = _Tally()
    window: deque[tuple[Candidate, Future]] = deque()
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="synth-verify") as pool:

        def fill() -> None:
            while len(window) < 2 * workers and (c := next(candidates, None)) is not None:
                window.append((c, pool.submit(evaluate, c, baselines)))

        fill()
        while window and len(kept) < max_tasks:
            c, future = window.popleft()
            reason, task = future.result()
            tally.add(c, reason)
            if task is not None:
                kept.append(task)
                if progress is not None:
                    progress(len(kept), max_tasks)
            if len(kept) < max_tasks:
                fill()
        for _, future in window:
            future.cancel()
    return kept, tally


def generate_tasks(cfg: SynthConfig, out_dir: Path, progress: Callable[[int, int], None] | None = None) -> dict:
    """Write verified tasks to `out_dir/tasks.parquet` and a `report.json`; skip if done for this config."""
    out_dir = Path(out_dir)
    key = config_hash(cfg)
    marker, tasks_path, report_path = done_marker(out_dir), out_dir / "tasks.parquet", out_dir / "report.json"
    if marker.is_file() and marker.read_text().strip() == key and tasks_path.is_file() and report_path.is_file():
        return {**json.loads(report_path.read_text()), "skipped": True}
    marker.unlink(missing_ok=True)
    start = time.monotonic()
    files, scanned = discover(cfg.sources)
    baselines = Baselines(limits_for(cfg))
    candidates = iter_candidates(files, cfg.seed, cfg.mutants_per_function)
    tasks, tally = verify_candidates(candidates, baselines, cfg.max_tasks, cfg.workers, progress)
    write_parquet_atomic(tasks_path, tasks_table(tasks))
    report = {
        "config_hash": key,
        "sources": list(cfg.sources),
        "python": platform.python_version(),
        "files_scanned": scanned,
        "files_with_doctests": len(files),
        "functions_with_doctests": sum(len(sf.functions) for sf in files),
        "functions_exercised_by_doctests": sum(len(sf.covered) for sf in files),
        "candidates_tried": tally.tried,
        "kept": len(tasks),
        "yield": round(len(tasks) / tally.tried, 4) if tally.tried else 0.0,
        "rejected": dict(sorted(tally.rejected.items())),
        "per_operator": tally.per_operator,
        "stopped": "max_tasks" if len(tasks) >= cfg.max_tasks else "candidates_exhausted",
        "wall_s": round(time.monotonic() - start, 2),
        "skipped": False,
    }
    write_json_atomic(report_path, report)
    write_text_atomic(marker, key)
    return report
