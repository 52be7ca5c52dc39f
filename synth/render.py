"""Render verified tasks as training text and write them as the `synthetic` domain's shards."""

from __future__ import annotations

import ast
from pathlib import Path

from synth.mutate import find_function, source_lines
from synth.task import Task, read_tasks

DOMAIN = "synthetic"
SOURCE = "synth-bugfix"
SHARD_PREFIX = "synth-bugfix"


def function_source(source: str, qualname: str) -> str:
    """The source text of one function (with its decorators), dedented by its own indentation."""
    func = find_function(ast.parse(source), qualname)
    first = min([func.lineno, *(d.lineno for d in func.decorator_list)]) - 1
    lines = source_lines(source)[first : func.end_lineno]
    indent = func.col_offset
    return "".join(line[indent:] if line[:indent].isspace() else line for line in lines).rstrip() + "\n"


def render_task(task: Task) -> str:
    """Training text of one task: the failing tests, the broken function, and the fix as a diff."""
    module_file = f"{task.module}.py"
    cmd = task.test_command
    rerun = [*cmd[: cmd.index(module_file) + 1], *task.fail_to_pass] if module_file in cmd else cmd
    failing = "\n".join(f"- `{t}`" for t in task.fail_to_pass)
    n_pass = len(task.pass_to_pass)
    return (
        f"# Bug fix: `{module_file}`\n\n"
        f"The doctests of `{module_file}` are run, one test per documented object, with:\n\n"
        f"    {' '.join(rerun)}\n\n"
        f"These tests fail and must pass after the fix:\n{failing}\n\n"
        f"These {n_pass} other tests pass and must keep passing.\n\n"
        f"The bug is in `{task.function}`:\n\n"
        f"```python\n{function_source(task.files[module_file], task.function)}```\n\n"
        f"## Fix\n\n"
        f"```diff\n{task.gold_patch}```\n"
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
    docs = [{"id": f"synth-{t.task_id}", "text": render_task(t), "source": SOURCE} for t in tasks]
    paths = write_shards(docs, out_dir, DOMAIN, SHARD_PREFIX, shard_docs)
    keep = {p.resolve() for p in paths}
    for stale in sorted(out_dir.glob("*.parquet")):
        if stale.resolve() not in keep:
            stale.unlink()
    return paths
