"""The one seam through which synth runs workspace code: write files, run a Python command in the sandbox."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from synth.sandbox import SandboxResult


@dataclass(frozen=True)
class Limits:
    """Sandbox limits of one test run."""

    timeout_s: float = 10.0
    """Wall timeout of the whole run."""
    memory_mb: int = 1024
    """Address-space limit."""
    per_test_s: float = 2.0
    """CPU seconds one test may use before it counts as `timeout` (passed to the test runner)."""


def write_workspace(root: Path, files: dict[str, str]) -> None:
    """Write `files` (relative path -> text) under `root`; refuse paths that escape it."""
    root = root.resolve()
    for name, text in files.items():
        path = (root / name).resolve()
        if root not in path.parents:
            raise ValueError(f"workspace file {name!r} escapes the workspace")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


def execute(files: dict[str, str], argv: list[str], limits: Limits, *, hash_seed: int = 0) -> SandboxResult:
    """Run `argv` (`python ...` means the sandbox interpreter) in a private copy of `files`, in the sandbox.

    Runs on a warm worker started with PYTHONHASHSEED=`hash_seed` (synth.pool; thread-safe). A Python command
    (`python [-s -P -B] SCRIPT|-c CODE|-m MOD ...`) runs in a forked child of the worker, without a new interpreter;
    any other command is exec'd there, under the same protections."""
    from synth.pool import default_pool

    if not 0 <= hash_seed < 2**32:
        raise ValueError(f"hash_seed must be in [0, 2**32), got {hash_seed}")
    for name in files:
        if Path(name).is_absolute() or ".." in Path(name).parts:
            raise ValueError(f"workspace file {name!r} escapes the workspace")
    return default_pool().run(files, argv, timeout_s=limits.timeout_s, memory_mb=limits.memory_mb, hash_seed=hash_seed)
