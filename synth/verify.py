"""Run a workspace's doctests in the sandbox and decide whether a mutant makes a valid task."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from synth.sandbox import private_dir, run_sandboxed

if TYPE_CHECKING:
    from synth.task import Task

RUNNER_NAME = "run_doctests.py"
MARKER = "@@DOCTEST_RESULTS@@"


@dataclass(frozen=True)
class Limits:
    """Sandbox limits of one test run."""

    timeout_s: float = 10.0
    """Wall timeout of the whole run."""
    memory_mb: int = 1024
    per_test_s: float = 2.0
    """CPU seconds one doctest may use before it counts as `timeout`."""


@dataclass
class TestRun:
    """Per-test outcome of one sandboxed run (`results[id]` in pass, fail, error, timeout, missing)."""

    results: dict[str, str] = field(default_factory=dict)
    logs: dict[str, str] = field(default_factory=dict)
    load_error: str | None = None
    timed_out: bool = False
    crashed: str | None = None
    """Why no results came back (killed by a signal, no results line), or None."""
    wall_s: float = 0.0

    def passing(self) -> set[str]:
        """Ids of the tests that passed."""
        return {t for t, s in self.results.items() if s == "pass"}


def runner_source() -> str:
    """Source of the doctest runner script copied into every workspace."""
    return Path(__file__).with_name("doctest_runner.py").read_text(encoding="utf-8")


def workspace_files(module: str, source: str) -> dict[str, str]:
    """The files of a single-module workspace: the module and the doctest runner."""
    return {f"{module}.py": source, RUNNER_NAME: runner_source()}


def test_command(module: str, test_ids: list[str], per_test_s: float, stop_on_timeout: bool = False) -> list[str]:
    """The command that runs the given doctests of a workspace module (`python` = the current interpreter)."""
    flags = ["--timeout", f"{per_test_s:g}", *(["--stop-on-timeout"] if stop_on_timeout else [])]
    return ["python", "-s", "-P", RUNNER_NAME, *flags, f"{module}.py", *test_ids]


def _parse(stdout: str) -> dict | None:
    for line in reversed(stdout.splitlines()):
        if line.startswith(MARKER + " "):
            try:
                return json.loads(line[len(MARKER) + 1 :])
            except json.JSONDecodeError:
                return None
    return None


def run_tests(files: dict[str, str], command: list[str], limits: Limits) -> TestRun:
    """Write `files` into a private temp dir and run `command` there in the sandbox."""
    cmd = [sys.executable, *command[1:]] if command[:1] == ["python"] else list(command)
    with private_dir("synth-ws-") as ws:
        for name, text in files.items():
            path = (ws / name).resolve()
            if ws.resolve() not in path.parents:
                raise ValueError(f"workspace file {name!r} escapes the workspace")
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        res = run_sandboxed(cmd, ws, timeout_s=limits.timeout_s, memory_mb=limits.memory_mb)
    payload = _parse(res.stdout)
    if payload is None:
        why = res.killed_by or f"exit {res.returncode}, no results line; stderr: {res.stderr[-300:]}"
        return TestRun(timed_out=res.timed_out, crashed=why, wall_s=res.wall_s)
    return TestRun(
        results=payload.get("results", {}), logs=payload.get("logs", {}), load_error=payload.get("load_error"),
        timed_out=res.timed_out, wall_s=res.wall_s,
    )  # fmt: skip


def classify(baseline: set[str], run: TestRun) -> tuple[str | None, list[str], list[str]]:
    """Judge a mutant run against the originally passing tests: (reject reason or None, failing, passing)."""
    if run.timed_out or "timeout" in run.results.values():
        return "timeout", [], []
    if run.crashed is not None:
        return "crashed", [], []
    if run.load_error is not None:
        return "import_error", [], []
    failing = sorted(t for t in baseline if run.results.get(t) != "pass")
    if not failing:
        return "equivalent_mutant", [], []
    return None, failing, sorted(baseline - set(failing))


def reward(task: Task, fixed_files: dict[str, str], limits: Limits | None = None) -> int:
    """1 if every fail_to_pass and pass_to_pass test of `task` passes on its workspace overlaid with `fixed_files`."""
    files = {**task.files, **fixed_files, RUNNER_NAME: task.files.get(RUNNER_NAME, runner_source())}
    run = run_tests(files, task.test_command, limits or Limits())
    wanted = [*task.fail_to_pass, *task.pass_to_pass]
    return int(not run.timed_out and bool(wanted) and all(run.results.get(t) == "pass" for t in wanted))
