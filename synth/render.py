"""Render verified tasks as training text and write them as the `synthetic` domain's shards."""

from __future__ import annotations

import ast
from pathlib import Path

from synth.mutate import find_function, source_lines
from synth.task import Task, read_tasks

DOMAIN = "synthetic"
SOURCE = "synth"
SHARD_PREFIX = "synth"


def function_source(source: str, qualname: str) -> str:
    """The source text of one function (with its decorators), dedented by its own indentation."""
    func = find_function(ast.parse(source), qualname)
    first = min([func.lineno, *(d.lineno for d in func.decorator_list)]) - 1
    lines = source_lines(source)[first : func.end_lineno]
    indent = func.col_offset
    return "".join(line[indent:] if line[:indent].isspace() else line for line in lines).rstrip() + "\n"


MAX_FILE_CHARS = 4000
"""A touched file longer than this is shown as just the task's function."""


def touched_files(patch: str) -> list[str]:
    """Workspace paths a unified diff changes, in order."""
    return [line[4:].strip().removeprefix("b/") for line in patch.splitlines() if line.startswith("+++ ")]


def _shown(task: Task, name: str) -> str:
    text = task.files.get(name, "")
    if len(text) > MAX_FILE_CHARS:
        try:
            return function_source(text, task.function)
        except (KeyError, ValueError, SyntaxError):
            return text[:MAX_FILE_CHARS] + "\n# ...\n"
    return text if text.endswith("\n") else text + "\n"


def render_task(task: Task) -> str:
    """Training text of one task: the problem statement, the code it touches, and the fix as a diff."""
    shown = "".join(f"`{name}`:\n\n```python\n{_shown(task, name)}```\n\n" for name in touched_files(task.gold_patch))
    return (
        f"# {task.family.replace('_', ' ').capitalize()} task ({task.difficulty or 'unrated'})\n\n"
        f"{task.problem_statement.strip()}\n\n"
        f"## Code\n\n{shown}"
        f"## Fix\n\n```diff\n{task.gold_patch}```\n"
    )


def write_synthetic_shards(tasks_path: Path, shards_dir: Path, shard_docs: int) -> list[Path]:
    """Render every task in `tasks_path` into `shards_dir/synthetic/*.parquet` (SHARD_SCHEMA); drop stale shards."""
    from automixer.shards import write_shards

    out_dir = Path(shards_dir) / DOMAIN
    tasks = read_tasks(tasks_path)
    if not tasks:
        raise ValueError(
            f"{tasks_path} holds no verified tasks (see report.json beside it): point synth.sources at "
            "Python files with doctests, or remove `synthetic` from domains"
        )
    docs = [{"id": f"synth-{t.task_id}", "text": render_task(t), "source": f"{SOURCE}-{t.family}"} for t in tasks]
    paths = write_shards(docs, out_dir, DOMAIN, SHARD_PREFIX, shard_docs)
    keep = {p.resolve() for p in paths}
    for stale in sorted(out_dir.glob("*.parquet")):
        if stale.resolve() not in keep:
            stale.unlink()
    return paths
