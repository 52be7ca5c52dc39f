"""The verified bug-fix task record, its Parquet form, and unified diffs between workspaces."""

from __future__ import annotations

import difflib
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pyarrow as pa

TASK_SCHEMA = pa.schema(
    [
        pa.field("task_id", pa.string(), nullable=False),
        pa.field("source_path", pa.string(), nullable=False),
        pa.field("module", pa.string(), nullable=False),
        pa.field("function", pa.string(), nullable=False),
        pa.field("operator", pa.string(), nullable=False),
        pa.field("seed", pa.int64(), nullable=False),
        pa.field("description", pa.string(), nullable=False),
        pa.field("files", pa.map_(pa.string(), pa.string()), nullable=False),
        pa.field("test_command", pa.list_(pa.string()), nullable=False),
        pa.field("fail_to_pass", pa.list_(pa.string()), nullable=False),
        pa.field("pass_to_pass", pa.list_(pa.string()), nullable=False),
        pa.field("gold_patch", pa.string(), nullable=False),
        pa.field("isolation", pa.string(), nullable=False),
        pa.field("family", pa.string(), nullable=False),
        pa.field("repo", pa.string(), nullable=False),
        pa.field("commit", pa.string(), nullable=False),
        pa.field("operators", pa.list_(pa.string()), nullable=False),
        pa.field("problem_statement", pa.string(), nullable=False),
        pa.field("flaky_tests", pa.list_(pa.string()), nullable=False),
        pa.field("mutation_score", pa.float64(), nullable=False),
        pa.field("mutants_total", pa.int64(), nullable=False),
        pa.field("mutants_killed", pa.int64(), nullable=False),
        pa.field("difficulty", pa.string(), nullable=False),
        pa.field("difficulty_score", pa.float64(), nullable=False),
        pa.field("provenance", pa.map_(pa.string(), pa.string()), nullable=False),
    ]
)
"""Columns of `tasks.parquet`, one row per verified task."""


@dataclass(frozen=True)
class Task:
    """A broken workspace, the command that tests it, which tests fail, and the patch that fixes it."""

    task_id: str
    source_path: str
    """Where the original function comes from, e.g. `stdlib/statistics.py`."""
    module: str
    function: str
    """Qualname of the mutated function (`func` or `Class.method`)."""
    operator: str
    seed: int
    description: str
    """What the mutation changed (not shown in the problem statement)."""
    files: dict[str, str] = field(default_factory=dict)
    """Path -> content of the BROKEN workspace."""
    test_command: list[str] = field(default_factory=list)
    fail_to_pass: list[str] = field(default_factory=list)
    pass_to_pass: list[str] = field(default_factory=list)
    gold_patch: str = ""
    """Unified diff from the broken workspace to the fixed one."""
    isolation: str = ""
    """How isolated the sandbox runs that verified this task were (`synth.sandbox.isolation_level`)."""
    family: str = "bugfix"
    """Task family (see `synth.draft.Draft.family`)."""
    repo: str = ""
    commit: str = ""
    operators: list[str] = field(default_factory=list)
    """Every operator / template applied (`operator` is the first, kept for the per-operator tables)."""
    problem_statement: str = ""
    """What a solver is told: the failing behaviour, never the gold patch."""
    flaky_tests: list[str] = field(default_factory=list)
    """Tests dropped because their outcome changed across shuffled, re-seeded runs."""
    mutation_score: float = 0.0
    """Share of fresh mutants of the reference that the kept tests kill (the test-strength gate)."""
    mutants_total: int = 0
    mutants_killed: int = 0
    difficulty: str = ""
    """`easy`, `medium` or `hard` (`synth.difficulty`)."""
    difficulty_score: float = 0.0
    provenance: dict[str, str] = field(default_factory=dict)
    """Tool versions, hash seeds and family extras: enough to regenerate and audit the task."""

    def to_row(self) -> dict:
        """This task as a row of TASK_SCHEMA."""
        row = asdict(self)
        row["files"] = sorted(self.files.items())
        row["provenance"] = sorted(self.provenance.items())
        return row

    @classmethod
    def from_row(cls, row: dict) -> Task:
        """A task from a row of TASK_SCHEMA (as given by `Table.to_pylist()`)."""
        data = {k: v for k, v in row.items() if k in cls.__dataclass_fields__}
        files = data["files"]
        data["files"] = dict(files) if not isinstance(files, dict) else files
        if "provenance" in data and not isinstance(data["provenance"], dict):
            data["provenance"] = dict(data["provenance"])
        for key in ("test_command", "fail_to_pass", "pass_to_pass", "operators", "flaky_tests"):
            if key not in data:
                continue
            data[key] = list(data[key])
        return cls(**data)


def tasks_table(tasks: list[Task]) -> pa.Table:
    """A pyarrow table of tasks in TASK_SCHEMA."""
    return pa.Table.from_pylist([t.to_row() for t in tasks], schema=TASK_SCHEMA)


def read_tasks(path: str | Path) -> list[Task]:
    """Every task stored in a tasks.parquet file."""
    import pyarrow.parquet as pq

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"tasks file not found: {path}; run `automixer synthesize` first")
    return [Task.from_row(r) for r in pq.read_table(path).to_pylist()]


def make_patch(before: dict[str, str], after: dict[str, str], context: int = 3) -> str:
    """Unified diff (git style `a/` `b/` names) turning the files `before` into `after`."""
    chunks = []
    for name in sorted(set(before) | set(after)):
        old, new = before.get(name, ""), after.get(name, "")
        if old != new:
            diff = difflib.unified_diff(
                old.splitlines(keepends=True), new.splitlines(keepends=True), f"a/{name}", f"b/{name}", n=context
            )
            chunks.append("".join(line if line.endswith("\n") else line + "\n" for line in diff))
    return "".join(chunks)


_HUNK = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")


def _apply_file(text: str, hunks: list[tuple[int, list[str]]], name: str) -> str:
    lines = text.splitlines(keepends=True)
    out: list[str] = []
    pos = 0
    for start, body in hunks:
        start = max(start - 1, 0)
        old = [h[1:] for h in body if h[:1] in (" ", "-")]
        new = [h[1:] for h in body if h[:1] in (" ", "+")]
        if [x.rstrip("\n") for x in lines[start : start + len(old)]] != [x.rstrip("\n") for x in old]:
            raise ValueError(f"patch does not apply to {name} at line {start + 1}")
        out += lines[pos:start] + [x if x.endswith("\n") else x + "\n" for x in new]
        pos = start + len(old)
    return "".join(out + lines[pos:])


def apply_patch(files: dict[str, str], patch: str) -> dict[str, str]:
    """Apply a unified diff (exact context, as made by `make_patch`) to files; raise ValueError if it does not fit."""
    result = dict(files)
    per_file: dict[str, list[tuple[int, list[str]]]] = {}
    name = None
    for line in patch.splitlines(keepends=True):
        if line.startswith("+++ "):
            name = line[4:].strip().removeprefix("b/")
            per_file.setdefault(name, [])
        elif line.startswith("--- "):
            continue
        elif m := _HUNK.match(line):
            if name is None:
                raise ValueError("patch hunk before any `+++` file header")
            per_file[name].append((int(m.group(1)), []))
        elif name is not None and per_file[name] and line[:1] in (" ", "-", "+"):
            per_file[name][-1][1].append(line)
    if not per_file:
        raise ValueError("not a unified diff: no `+++` file header found")
    for fname, hunks in per_file.items():
        if fname not in result:
            raise ValueError(f"patch names {fname!r}, which is not in the workspace")
        result[fname] = _apply_file(result[fname], hunks, fname)
    return result
