"""Run workspace tests in the sandbox, and verify drafts into tasks (stable tests, flakiness, test strength)."""

from __future__ import annotations

import functools
import hashlib
import json
import platform
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from automixer.io import stable_hash
from synth.execute import Limits, execute
from synth.gates import GateConfig, GateResult, gate_mutants, score, split_outcomes
from synth.mutate import MutationError, function_span
from synth.sandbox import isolation_level
from synth.task import Task, make_patch
from synth.test_runner import module_name

if TYPE_CHECKING:
    from synth.draft import Draft

__all__ = [
    "RUNNER_NAME", "GateConfig", "Limits", "TestRun", "Verifier", "reward", "run_tests", "runner_source",
    "test_command", "with_runner",
]  # fmt: skip

RUNNER_NAME = "run_tests.py"
MARKER = "@@TEST_RESULTS@@"
VARIANTS_NAME = ".gate_variants.json"


@dataclass
class TestRun:
    """Per-test outcome of one sandboxed run (`results[id]` in pass, fail, error, timeout, skipped, missing)."""

    __test__ = False  # not a pytest test class

    results: dict[str, str] = field(default_factory=dict)
    logs: dict[str, str] = field(default_factory=dict)
    load_errors: dict[str, str] = field(default_factory=dict)
    """Target -> why it failed to import."""
    timed_out: bool = False
    """The whole run hit its wall timeout."""
    crashed: str | None = None
    """Why no results came back (killed by a signal, no results line), or None."""
    wall_s: float = 0.0
    isolation: str = ""

    def passing(self) -> set[str]:
        """Ids of the tests that passed."""
        return {t for t, s in self.results.items() if s == "pass"}


@functools.cache
def runner_source() -> str:
    """Source of the test runner script copied into every workspace as `run_tests.py`."""
    return Path(__file__).with_name("test_runner.py").read_text(encoding="utf-8")


def with_runner(files: dict[str, str]) -> dict[str, str]:
    """`files` plus the test runner script."""
    return {**files, RUNNER_NAME: runner_source()}


def test_command(
    targets: list[str] | tuple[str, ...],
    test_ids: list[str] | tuple[str, ...] | None = None,
    per_test_s: float = 2.0,
    *,
    shuffle: int | None = None,
    stop_on_timeout: bool = False,
    stop_on_fail: bool = False,
) -> list[str]:
    """The command that runs the given tests of the targets (all their tests when `test_ids` is empty)."""
    flags = ["--timeout", f"{per_test_s:g}"]
    flags += ["--stop-on-timeout"] * stop_on_timeout + ["--stop-on-fail"] * stop_on_fail
    flags += ["--shuffle", str(shuffle)] if shuffle is not None else []
    return ["python", "-s", "-P", RUNNER_NAME, *flags, *targets, *(["--", *test_ids] if test_ids else [])]


test_command.__test__ = False  # not a pytest test when imported into a test module


def parse_results(stdout: str) -> dict | None:
    """The payload of the last results line of a runner's output, or None."""
    for line in reversed(stdout.splitlines()):
        if line.startswith(MARKER + " "):
            try:
                payload = json.loads(line[len(MARKER) + 1 :])
            except json.JSONDecodeError:
                return None
            return payload if isinstance(payload, dict) else None
    return None


def _strings(value: object) -> dict[str, str]:
    return {str(k): str(v) for k, v in value.items()} if isinstance(value, dict) else {}


def run_tests(files: dict[str, str], command: list[str], limits: Limits, *, hash_seed: int = 0) -> TestRun:
    """Run a test command on a private copy of `files` in the sandbox (the runner is added if missing)."""
    res = execute({RUNNER_NAME: runner_source(), **files}, command, limits, hash_seed=hash_seed)
    payload = parse_results(res.stdout)
    if payload is None or not isinstance(payload.get("results"), dict):
        why = res.killed_by or f"exit {res.returncode}, no results line; stderr: {res.stderr[-300:]}"
        return TestRun(timed_out=res.timed_out, crashed=why, wall_s=res.wall_s, isolation=res.isolation)
    return TestRun(
        results=_strings(payload["results"]), logs=_strings(payload.get("logs")),
        load_errors=_strings(payload.get("load_errors")), timed_out=res.timed_out, wall_s=res.wall_s,
        isolation=res.isolation,
    )  # fmt: skip


def reward(task: Task, fixed_files: dict[str, str], limits: Limits | None = None) -> int:
    """1 if every fail_to_pass and pass_to_pass test passes on the task workspace overlaid with `fixed_files`."""
    files = {**task.files, **fixed_files, RUNNER_NAME: task.files.get(RUNNER_NAME) or runner_source()}
    run = run_tests(files, task.test_command, limits or Limits())
    wanted = [*task.fail_to_pass, *task.pass_to_pass]
    ok = run.crashed is None and not run.timed_out and bool(wanted)
    return int(ok and all(run.results.get(t) == "pass" for t in wanted))


def _digest(*parts: object) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


@dataclass(frozen=True)
class _Fixed:
    reason: str | None
    stable: tuple[str, ...] = ()
    flaky: tuple[str, ...] = ()


@dataclass(frozen=True)
class _Broken:
    reason: str | None
    fail_to_pass: tuple[str, ...] = ()
    pass_to_pass: tuple[str, ...] = ()
    flaky: tuple[str, ...] = ()
    isolation: str = ""


def _broken_reason(run: TestRun, allow_load_errors: bool) -> str | None:
    """Why a run of the broken state rejects the draft outright, or None."""
    if run.timed_out or "timeout" in run.results.values():
        return "timeout"
    if run.crashed is not None:
        return "crashed"
    return "import_error" if run.load_errors and not allow_load_errors else None


class Verifier:
    """Turns drafts into verified tasks; thread-safe, with per-workspace caches of the fixed state and the gate."""

    def __init__(self, limits: Limits, gates: GateConfig) -> None:
        self.limits = limits
        self.gates = gates
        self._lock = threading.Lock()
        self._key_locks: dict[str, threading.Lock] = {}
        self._cache: dict[str, object] = {}
        self._counts: Counter = Counter()
        self._wall: dict[str, float] = {}
        self._scores: list[float] = []

    def verify(self, draft: Draft) -> tuple[str | None, Task | None]:
        """(reject reason, None) or (None, the verified task)."""
        reason, task = self._verify(draft)
        with self._lock:
            self._counts["verified" if task is not None else f"rejected:{reason}"] += 1
        return reason, task

    def _verify(self, draft: Draft) -> tuple[str | None, Task | None]:
        if draft.scope_file not in draft.fixed:
            raise ValueError(f"draft scope_file {draft.scope_file!r} is not in its fixed workspace")
        fixed = self._fixed_state(draft)
        if fixed.reason is not None:
            return fixed.reason, None
        # The gate on every stable test first: it is shared by all drafts of the function, and the kept tests are
        # a subset of the stable ones, so a weak score here is weak for any draft (no broken runs needed).
        gate, reason = self._gate(draft, fixed.stable)
        if reason is not None:
            return self._gated(reason, gate)
        broken = self._broken_state(draft, fixed.stable)
        if broken.reason is not None:
            return broken.reason, None
        kept = tuple(sorted([*broken.fail_to_pass, *broken.pass_to_pass]))
        if kept != fixed.stable:  # flaky in the broken state: score exactly the tests the task keeps
            gate, reason = self._gate(draft, kept)
            if reason is not None:
                return self._gated(reason, gate)
        self._gated(None, gate)
        return None, self._task(draft, fixed, broken, gate)

    def _gated(self, reason: str | None, gate: GateResult | None) -> tuple[str | None, None]:
        """Record the score of a draft the gate decided (accepted or weak) and pass the reason on."""
        if reason in (None, "weak_tests"):
            with self._lock:
                self._scores.append(gate.score)
        return reason, None

    def _run(self, phase: str, files: dict[str, str], command: list[str], hash_seed: int) -> TestRun:
        run = run_tests(files, command, self.limits, hash_seed=hash_seed)
        self._count_run(phase, run.wall_s)
        return run

    def _count_run(self, phase: str, wall_s: float) -> None:
        with self._lock:
            self._counts["runs"] += 1
            self._counts[f"runs_{phase}"] += 1
            self._wall[phase] = self._wall.get(phase, 0.0) + wall_s

    def _once(self, kind: str, key: str, compute: Callable[[], object]):
        """The cached value of `compute` for `key`, computed once even when threads ask at the same time."""
        key = f"{kind}:{key}"
        with self._lock:
            lock = self._key_locks.setdefault(key, threading.Lock())
        with lock:
            with self._lock:
                if key in self._cache:
                    self._counts[f"{kind}_cache_hits"] += 1
                    return self._cache[key]
            value = compute()
            with self._lock:
                self._cache[key] = value
                self._counts[f"{kind}_computed"] += 1
            return value

    def _command(self, draft: Draft, ids, shuffle: int | None, **flags: bool) -> list[str]:
        return test_command(draft.targets, ids, self.limits.per_test_s, shuffle=shuffle, **flags)

    def _fixed_state(self, draft: Draft) -> _Fixed:
        """Tests that pass in every shuffled, re-seeded run of the fixed workspace (cached per workspace)."""
        key = _digest(sorted(draft.fixed.items()), list(draft.targets), draft.test_ids)
        return self._once("fixed", key, lambda: self._compute_fixed(draft))

    def _compute_fixed(self, draft: Draft) -> _Fixed:
        if draft.test_ids is not None and not draft.test_ids:
            return _Fixed("no_tests")
        files, ids = with_runner(draft.fixed), list(draft.test_ids or [])
        runs = []
        for i in range(self.gates.runs):
            run = self._run("fixed", files, self._command(draft, ids, i + 1), hash_seed=i + 1)
            if i == 0:  # later runs only recheck what passed in the first
                if run.crashed is None and all(s == "missing" for s in run.results.values()):
                    return _Fixed("no_tests")
                ids = sorted(run.passing())
                if not ids:
                    return _Fixed("original_fails")
            runs.append(run.results)
        outcome = split_outcomes(runs, ids)
        return _Fixed(None if outcome.passed else "original_fails", outcome.passed, outcome.flaky)

    def _broken_state(self, draft: Draft, stable: tuple[str, ...]) -> _Broken:
        """F2P / P2P: stable tests failing / passing in every shuffled, re-seeded run of the broken workspace."""
        files = with_runner(draft.broken)
        runs, isolation = [], ""
        for i in range(self.gates.runs):
            command = self._command(draft, stable, i + 1, stop_on_timeout=True)
            run = self._run("broken", files, command, hash_seed=i + 1)
            reason = _broken_reason(run, draft.allow_load_errors)
            if reason is not None:
                return _Broken(reason)
            runs.append(run.results)
            isolation = isolation or run.isolation
            outcome = split_outcomes(runs, stable)
            if not outcome.failed:  # nothing failed in every run so far: cheap exit
                return _Broken("equivalent_mutant" if i == 0 else "flaky_no_stable_failure")
        return _Broken(None, outcome.failed, outcome.passed, outcome.flaky, isolation)

    def _gate(self, draft: Draft, tests: tuple[str, ...]) -> tuple[GateResult | None, str | None]:
        """The test-strength gate of `tests` (cached per workspace, function and tests) and its reject reason."""
        key = _digest(sorted(draft.fixed.items()), draft.scope_file, draft.function, list(draft.targets), tests)
        gate = self._once("gate", key, lambda: self._compute_gate(draft, tests))
        if gate is None:
            return None, "no_gate_mutants"
        if not gate.reference_passes:  # a kept test depends on order or hash seed after all
            return gate, "original_fails"
        return gate, "weak_tests" if gate.score < self.gates.min_score else None

    def _compute_gate(self, draft: Draft, kept: tuple[str, ...]) -> GateResult | None:
        source = draft.fixed[draft.scope_file]
        try:
            mutants = gate_mutants(source, draft.function, self.gates.mutants, self.gates.seed)
        except (KeyError, SyntaxError, MutationError):
            mutants = []
        if not mutants:
            return None
        passes = self._run_variants(draft, kept, [source, *(m.source for m in mutants)])
        return score([not ok for ok in passes[1:]], reference_passes=passes[0])

    def _run_variants(self, draft: Draft, kept: tuple[str, ...], texts: list[str]) -> list[bool]:
        """Whether every kept test passes with each text as the scope file (one sandbox run, forked per text)."""
        command = self._command(draft, kept, None, stop_on_fail=True)
        own = f"{module_name(draft.scope_file)}.{draft.function}"  # the function's own doctest kills most mutants
        first = [t for t in kept if t == own or t.startswith(own + ".")]
        span = function_span(texts[0], draft.function)
        spec = {"path": draft.scope_file, "function": draft.function, "span": span, "texts": texts, "first": first}
        spec["wall_s"] = self.limits.timeout_s
        files = {**with_runner(draft.fixed), VARIANTS_NAME: json.dumps(spec)}
        batch = replace(self.limits, timeout_s=self.limits.timeout_s * (len(texts) + 1))
        res = execute(files, [*command[:4], "--variants", VARIANTS_NAME, *command[4:]], batch, hash_seed=0)
        self._count_run("gate", res.wall_s)
        variants = (parse_results(res.stdout) or {}).get("variants")
        if isinstance(variants, list) and len(variants) == len(texts):
            return [
                isinstance(v, dict)
                and "crashed" not in v
                and all(_strings(v.get("results")).get(t) == "pass" for t in kept)
                for v in variants
            ]
        with self._lock:  # the batch itself failed: fall back to one run per text
            self._counts["gate_fallbacks"] += 1
        base = with_runner(draft.fixed)
        out = []
        for text in texts:
            run = self._run("gate", {**base, draft.scope_file: text}, command, hash_seed=0)
            out.append(run.crashed is None and not run.timed_out and all(run.results.get(t) == "pass" for t in kept))
        return out

    def _task(self, draft: Draft, fixed: _Fixed, broken: _Broken, gate: GateResult) -> Task:
        files = with_runner(draft.broken)
        seeds = ",".join(str(i + 1) for i in range(self.gates.runs))
        provenance = {
            "python": platform.python_version(), "hash_seeds": seeds, "shuffle_seeds": seeds,
            "gate_seed": str(self.gates.seed), **draft.extra,
        }  # fmt: skip
        identity = (draft.family, draft.source_path, draft.function, ",".join(draft.operators))
        return Task(
            task_id=stable_hash(*identity, _digest(sorted(draft.broken.items()))),
            source_path=draft.source_path, module=draft.module, function=draft.function,
            operator=draft.operators[0] if draft.operators else draft.family, seed=draft.seed,
            description=draft.description, files=files,
            test_command=self._command(draft, sorted([*broken.fail_to_pass, *broken.pass_to_pass]), None),
            fail_to_pass=list(broken.fail_to_pass), pass_to_pass=list(broken.pass_to_pass),
            gold_patch=make_patch(files, with_runner(draft.fixed)), isolation=broken.isolation or isolation_level(),
            family=draft.family, repo=draft.repo, commit=draft.commit, operators=list(draft.operators),
            problem_statement=draft.problem_statement, flaky_tests=sorted({*fixed.flaky, *broken.flaky}),
            mutation_score=gate.score, mutants_total=gate.total, mutants_killed=gate.killed, provenance=provenance,
        )  # fmt: skip

    def stats(self) -> dict:
        """Counters for the report: runs and their wall time per phase, cache hits, verdicts, sorted gate scores."""
        with self._lock:
            counts = dict(sorted(self._counts.items()))
            wall = {phase: round(s, 3) for phase, s in sorted(self._wall.items())}
            return {**counts, "run_wall_s": wall, "mutation_scores": sorted(self._scores)}
