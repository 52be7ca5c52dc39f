"""Generate verified tasks: run every family's candidates through the gates, in a fixed order, up to a quota."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import platform
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from automixer.io import done_marker, stable_hash, write_json_atomic, write_parquet_atomic, write_text_atomic
from synth.discover import SourceFile, discover, source_paths
from synth.draft import Candidate, Draft
from synth.task import Task, tasks_table

if TYPE_CHECKING:
    from automixer.config import SynthConfig

SYNTH_VERSION = "3"
"""Bump when generation changes in a way that changes its output (invalidates completion markers)."""


def family_registry() -> dict[str, Callable[[list[SourceFile], SynthConfig, int], Iterator[Candidate]]]:
    """Every task family by name."""
    from synth.families import bugfix, implement, projects

    return {**bugfix.FAMILIES, **implement.FAMILIES, **projects.FAMILIES}


def quotas(max_tasks: int, weights: dict[str, float]) -> dict[str, int]:
    """Tasks per family: `max_tasks` split by weight (largest remainder), in the registry's family order."""
    from automixer.config import FAMILY_NAMES

    active = {f: weights[f] for f in FAMILY_NAMES if weights.get(f, 0) > 0}
    total = sum(active.values())
    exact = {f: max_tasks * w / total for f, w in active.items()}
    out = {f: int(x) for f, x in exact.items()}
    for f in sorted(exact, key=lambda f: (out[f] - exact[f], f))[: max_tasks - sum(out.values())]:
        out[f] += 1
    return out


def config_hash(cfg: SynthConfig) -> str:
    """Hash of everything that determines the output: settings, source contents, Python and synth versions."""
    settings = cfg.model_dump(mode="json", exclude={"workers", "enabled"})
    digest = hashlib.sha256()
    for rel, path in source_paths(cfg.sources):
        digest.update(rel.encode() + b"\0" + hashlib.sha256(path.read_bytes()).digest())
    for es in cfg.eval_sets:
        digest.update(hashlib.sha256(Path(es.path).read_bytes()).digest())
    return stable_hash(
        json.dumps(settings, sort_keys=True), digest.hexdigest(), platform.python_version(), SYNTH_VERSION
    )


@dataclass
class Tally:
    """Counts of one family's candidates: tried, kept, reject reasons, per operator."""

    tried: int = 0
    kept: int = 0
    rejected: Counter = field(default_factory=Counter)
    per_operator: dict = field(default_factory=dict)

    def add(self, c: Candidate, reason: str | None) -> None:
        """Count one decided candidate."""
        self.tried += 1
        op = self.per_operator.setdefault(c.operator, {"tried": 0, "kept": 0})
        op["tried"] += 1
        if reason is None:
            self.kept += 1
            op["kept"] += 1
        else:
            self.rejected[reason] += 1

    def as_dict(self, wall_s: float) -> dict:
        """JSON-able summary."""
        return {
            "tried": self.tried, "kept": self.kept, "yield": round(self.kept / self.tried, 4) if self.tried else 0.0,
            "rejected": dict(sorted(self.rejected.items())), "per_operator": dict(sorted(self.per_operator.items())),
            "wall_s": round(wall_s, 2),
        }  # fmt: skip


class Gates:
    """Everything a candidate goes through: build, decontamination, verification, difficulty, statement."""

    def __init__(self, cfg: SynthConfig) -> None:
        from synth import astsafe
        from synth.execute import Limits
        from synth.llm import client_from_config
        from synth.screen import Deduper, EvalCodeIndex, Screen
        from synth.verify import GateConfig, Verifier

        astsafe.install()  # candidates are built and verified in a thread pool
        self.cfg = cfg
        limits = Limits(timeout_s=cfg.timeout_s, memory_mb=cfg.memory_mb, per_test_s=min(1.0, cfg.timeout_s / 10))
        gates = GateConfig(
            runs=cfg.flaky_runs, min_score=cfg.min_mutation_score, mutants=cfg.gate_mutants, seed=cfg.seed
        )
        self.verifier = Verifier(limits, gates)
        self.screen = Screen(EvalCodeIndex.from_configs(cfg.eval_sets), cfg.ngram, cfg.max_ngram_overlap)
        self.deduper = Deduper(self.screen.findings)
        self.llm = client_from_config(cfg.llm)

    def evaluate(self, c: Candidate) -> tuple[str | None, Task | None, tuple | None]:
        """(reject reason or None, verified task or None, screen check) of one candidate; runs in a worker thread.

        The screen check `(label, match)` is recorded by the caller in candidate order, so reports are stable."""
        from synth.render import function_source

        built = c.build()
        if isinstance(built, str):
            return built, None, None
        draft: Draft = built
        reference = function_source(draft.fixed[draft.scope_file], draft.function)
        match = self.screen.match(reference)
        check = (f"{draft.source_path}::{draft.function}", match)
        if match is not None:
            return "contaminated", None, check
        reason, task = self.verifier.verify(draft)
        if task is None:
            return reason, None, check
        return None, self.finish(task, draft), check

    def finish(self, task: Task, draft: Draft) -> Task:
        """Add difficulty, the problem statement and tool provenance to a verified task."""
        from synth.difficulty import difficulty
        from synth.statement import problem_statement

        label, score = difficulty(task)
        statement, origin = problem_statement(task, draft, self.llm)
        provenance = {**task.provenance, **tool_versions(), **origin}
        return dataclasses.replace(
            task, difficulty=label, difficulty_score=score, problem_statement=statement, provenance=provenance
        )


def tool_versions() -> dict[str, str]:
    """Versions of what made a task: Python, automixer, the synth generator."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        amx = version("automixer")
    except PackageNotFoundError:
        amx = "unknown"
    return {"python": platform.python_version(), "automixer": amx, "synth_version": SYNTH_VERSION}


def run_family(candidates: Iterator[Candidate], gates: Gates, quota: int, on_kept: Callable[[Task], None]) -> Tally:
    """Verify candidates in parallel but decide in candidate order, so the kept tasks do not depend on timing."""
    tally, kept = Tally(), 0
    workers = gates.cfg.workers
    window: deque[tuple[Candidate, Future]] = deque()
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="synth-verify") as pool:

        def fill() -> None:
            while len(window) < 2 * workers and (c := next(candidates, None)) is not None:
                window.append((c, pool.submit(gates.evaluate, c)))

        fill()
        while window and kept < quota:
            c, future = window.popleft()
            reason, task, check = future.result()
            if check is not None:
                gates.screen.findings.add_check(*check)
            if task is not None and gates.deduper.seen(gates.deduper.key(task)):
                reason, task = "duplicate", None
            tally.add(c, reason)
            if task is not None:
                kept += 1
                on_kept(task)
            if kept < quota:
                fill()
        for _, future in window:
            future.cancel()
    return tally


def _distribution(values: list[float], edges: tuple[float, ...] = (0.8, 0.9, 1.0)) -> dict[str, int]:
    """Counts of values in [0, e0), [e0, e1), ... and exactly 1.0."""
    out = {f"<{edges[0]:g}": sum(v < edges[0] for v in values)}
    for lo, hi in zip(edges, edges[1:], strict=False):
        out[f"[{lo:g},{hi:g})"] = sum(lo <= v < hi for v in values)
    out[f"={edges[-1]:g}"] = sum(v >= edges[-1] for v in values)
    return out


def _report(cfg: SynthConfig, key: str, files: list[SourceFile], scanned: int, tasks: list[Task], extra: dict) -> dict:
    tried = sum(f["tried"] for f in extra["families"].values())
    return {
        "config_hash": key, "sources": list(cfg.sources), **tool_versions(), "files_scanned": scanned,
        "files_with_doctests": len(files), "functions_with_doctests": sum(len(sf.functions) for sf in files),
        "candidates_tried": tried, "kept": len(tasks), "yield": round(len(tasks) / tried, 4) if tried else 0.0,
        "kept_per_family": dict(Counter(t.family for t in tasks)),
        "difficulty": dict(sorted(Counter(t.difficulty for t in tasks).items())),
        "mutation_score": _distribution([t.mutation_score for t in tasks]),
        "isolation": sorted({t.isolation for t in tasks}), **extra,
    }  # fmt: skip


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
    gates, registry = Gates(cfg), family_registry()
    tasks: list[Task] = []

    def on_kept(task: Task) -> None:
        tasks.append(task)
        if progress is not None:
            progress(len(tasks), cfg.max_tasks)

    families: dict[str, dict] = {}
    for family, quota in quotas(cfg.max_tasks, cfg.families).items():
        t0 = time.monotonic()
        tally = run_family(registry[family](files, cfg, cfg.seed), gates, quota, on_kept)
        families[family] = {"quota": quota, **tally.as_dict(time.monotonic() - t0)}
    write_parquet_atomic(tasks_path, tasks_table(tasks))
    extra = {
        "families": families, "screen": gates.screen.report(), "verifier": gates.verifier.stats(),
        "stopped": "max_tasks" if len(tasks) >= cfg.max_tasks else "candidates_exhausted",
        "wall_s": round(time.monotonic() - start, 2), "skipped": False,
    }  # fmt: skip
    report = _report(cfg, key, files, scanned, tasks, extra)
    write_json_atomic(report_path, report)
    write_text_atomic(marker, key)
    return report
