"""Verifiable synthetic coding tasks built without an LLM: AST-mutated functions caught by their doctests."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from automixer.config import SynthConfig
    from synth.task import Task

__all__ = ["generate_tasks", "reward"]


def generate_tasks(cfg: SynthConfig, out_dir: Path, progress: Callable[[int, int], None] | None = None) -> dict:
    """Write verified bug-fix tasks to `out_dir/tasks.parquet` plus `report.json`; return the report."""
    from synth.generate import generate_tasks as _generate

    return _generate(cfg, out_dir, progress)


def reward(task: Task, fixed_files: dict[str, str]) -> int:
    """1 if the task's tests all pass on its workspace overlaid with `fixed_files`, else 0."""
    from synth.verify import reward as _reward

    return _reward(task, fixed_files)
