"""Export verified tasks as SWE-bench-style JSONL (one instance per line, sorted, byte-identical on rerun).

SWE-bench fields: `instance_id` (`<owner>__<repo>-<task_id>`, `local-<task_id>` without a repo), `repo`,
`base_commit` and `environment_setup_commit` (the source commit, or the Python version for `stdlib`), `patch` (the
gold patch), `test_patch` (empty: the tests are already in the broken workspace), `problem_statement`,
`hints_text` (empty), `created_at` (empty: an export never records the current time), `version` (the Python
version the task was verified with, from its provenance), and `FAIL_TO_PASS` / `PASS_TO_PASS` as JSON-encoded
lists, as SWE-bench stores them. Extras, prefixed `automixer_`: the broken workspace's files, the test command,
family, difficulty and its score, mutation score, isolation level, provenance, and the task's own id/function.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import TYPE_CHECKING

from automixer.io import atomic_path

if TYPE_CHECKING:
    from synth.task import Task

SWEBENCH_FIELDS = (
    "instance_id", "repo", "base_commit", "patch", "test_patch", "problem_statement", "hints_text", "created_at",
    "version", "FAIL_TO_PASS", "PASS_TO_PASS", "environment_setup_commit",
)  # fmt: skip
"""The SWE-bench columns every record has (all strings)."""
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


def instance_id(task: Task) -> str:
    """SWE-bench-style id: `<owner>__<repo>-<task_id>` (`local-<task_id>` when the task has no repo)."""
    repo = _UNSAFE.sub("_", task.repo.replace("/", "__")) if task.repo else "local"
    return f"{repo}-{task.task_id}"


def swebench_record(task: Task) -> dict:
    """One task as a SWE-bench instance plus `automixer_` extras (JSON-able; no timestamps)."""
    from synth.difficulty import difficulty

    label, score = (task.difficulty, task.difficulty_score) if task.difficulty else difficulty(task)
    return {
        "instance_id": instance_id(task),
        "repo": task.repo,
        "base_commit": task.commit,
        "patch": task.gold_patch,
        "test_patch": "",
        "problem_statement": task.problem_statement,
        "hints_text": "",
        "created_at": "",
        "version": task.provenance.get("python", ""),
        "FAIL_TO_PASS": json.dumps(list(task.fail_to_pass)),
        "PASS_TO_PASS": json.dumps(list(task.pass_to_pass)),
        "environment_setup_commit": task.commit,
        "automixer_task_id": task.task_id,
        "automixer_source_path": task.source_path,
        "automixer_module": task.module,
        "automixer_function": task.function,
        "automixer_files": dict(sorted(task.files.items())),
        "automixer_test_command": list(task.test_command),
        "automixer_family": task.family,
        "automixer_operators": list(task.operators),
        "automixer_difficulty": label,
        "automixer_difficulty_score": score,
        "automixer_mutation_score": task.mutation_score,
        "automixer_flaky_tests": list(task.flaky_tests),
        "automixer_isolation": task.isolation,
        "automixer_provenance": dict(sorted(task.provenance.items())),
    }


def export_swebench(tasks_path: str | Path, out_path: str | Path) -> int:
    """Write every task of a tasks.parquet as SWE-bench JSONL (sorted by instance_id, atomic); return the count."""
    from synth.task import read_tasks

    records = sorted((swebench_record(t) for t in read_tasks(tasks_path)), key=lambda r: r["instance_id"])
    ids = [r["instance_id"] for r in records]
    if len(set(ids)) != len(ids):
        raise ValueError(f"{tasks_path}: duplicate instance ids in the export")
    text = "".join(json.dumps(r, sort_keys=True, ensure_ascii=False) + "\n" for r in records)
    with atomic_path(out_path) as tmp:
        tmp.write_bytes(text.encode("utf-8"))
    return len(records)
