"""SWE-bench JSONL export of verified tasks, and the LLM-free difficulty score."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from automixer.io import write_parquet_atomic
from synth.difficulty import (
    EASY_BELOW,
    HARD_FROM,
    changed_lines,
    code_lines,
    difficulty,
    difficulty_score,
    files_touched,
    label,
)
from synth.export import SWEBENCH_FIELDS, export_swebench, instance_id, swebench_record
from synth.task import Task, apply_patch, make_patch, tasks_table

FIXED = 'def clip(x, lo, hi):\n    """Clamp x — into [lo, hi].\n\n    >>> clip(5, 0, 3)\n    3\n    """\n    if x < lo:\n        return lo\n    return min(x, hi)\n'
LONG = FIXED.replace("    if x < lo:\n", "".join(f"    t{i} = x + {i}\n" for i in range(40)) + "    if x < lo:\n")


def _task(task_id: str, repo: str = "TheAlgorithms/Python", fixed: str = FIXED, **kw: object) -> Task:
    broken = fixed.replace("min(x, hi)", "max(x, hi)")
    fields = {
        "task_id": task_id, "source_path": f"{repo}/maths/mod.py", "module": "mod", "function": "clip",
        "operator": "arith_swap", "seed": 3, "description": "min -> max",
        "files": {"mod.py": broken, "run_tests.py": "#"}, "test_command": ["python", "run_tests.py", "mod.py"],
        "fail_to_pass": ["mod.clip"], "pass_to_pass": ["mod.f"],
        "gold_patch": make_patch({"mod.py": broken}, {"mod.py": fixed}), "isolation": "process-group+rlimits",
        "repo": repo, "commit": "abc123", "operators": ["arith_swap"], "problem_statement": "`clip` does not clamp.",
        "mutation_score": 0.9, "mutants_total": 10, "mutants_killed": 9, "provenance": {"python": "3.11.9", "b": "1"},
    }  # fmt: skip
    return Task(**{**fields, **kw})


def test_record_fields_and_types() -> None:
    rec = swebench_record(_task("0f1e"))
    assert set(SWEBENCH_FIELDS) <= set(rec) and all(isinstance(rec[k], str) for k in SWEBENCH_FIELDS)
    assert all(k in SWEBENCH_FIELDS or k.startswith("automixer_") for k in rec)
    assert rec["instance_id"] == "TheAlgorithms__Python-0f1e" and rec["created_at"] == "" and rec["version"] == "3.11.9"
    assert json.loads(rec["FAIL_TO_PASS"]) == ["mod.clip"] and json.loads(rec["PASS_TO_PASS"]) == ["mod.f"]
    assert (rec["base_commit"], rec["environment_setup_commit"], rec["test_patch"]) == ("abc123", "abc123", "")
    assert rec["automixer_difficulty"] in ("easy", "medium", "hard")  # computed: the task had none
    assert isinstance(rec["automixer_files"], dict) and isinstance(rec["automixer_mutation_score"], float)
    assert instance_id(_task("9", repo="")) == "local-9" and instance_id(_task("9", repo="a b/c")) == "a_b__c-9"
    kept = swebench_record(_task("1", difficulty="hard", difficulty_score=7.5))
    assert (kept["automixer_difficulty"], kept["automixer_difficulty_score"]) == ("hard", 7.5)


def test_export_round_trip_and_determinism(tmp_path: Path) -> None:
    tasks = [_task("b2"), _task("a1", repo="stdlib", commit="3.11.9"), _task("c3", repo="")]
    write_parquet_atomic(tmp_path / "tasks.parquet", tasks_table(tasks))
    write_parquet_atomic(tmp_path / "shuffled.parquet", tasks_table(tasks[::-1]))
    assert export_swebench(tmp_path / "tasks.parquet", tmp_path / "a.jsonl") == 3
    first = (tmp_path / "a.jsonl").read_bytes()
    export_swebench(tmp_path / "tasks.parquet", tmp_path / "a.jsonl")
    export_swebench(tmp_path / "shuffled.parquet", tmp_path / "b.jsonl")
    assert (tmp_path / "a.jsonl").read_bytes() == first == (tmp_path / "b.jsonl").read_bytes()
    rows = [json.loads(line) for line in first.decode("utf-8").splitlines()]
    assert [r["instance_id"] for r in rows] == ["TheAlgorithms__Python-b2", "local-c3", "stdlib-a1"]
    assert "—" in first.decode("utf-8")  # UTF-8, not escaped
    by_id = {t.task_id: t for t in tasks}
    for row in rows:
        task = by_id[row["automixer_task_id"]]
        assert row["automixer_files"] == task.files and row["patch"] == task.gold_patch
        assert apply_patch(row["automixer_files"], row["patch"])["mod.py"] == FIXED
        assert row["automixer_provenance"] == task.provenance and row["automixer_test_command"] == task.test_command
    assert not list(tmp_path.glob(".*.tmp"))
    write_parquet_atomic(tmp_path / "empty.parquet", tasks_table([]))
    assert export_swebench(tmp_path / "empty.parquet", tmp_path / "e.jsonl") == 0
    assert (tmp_path / "e.jsonl").read_bytes() == b""


def test_difficulty_measurements() -> None:
    task = _task("x")
    assert (changed_lines(task.gold_patch), files_touched(task.gold_patch)) == (2, 1)
    assert code_lines(FIXED) == 3 and code_lines(LONG) == 43 and code_lines("x = (") == 0


def test_difficulty_is_monotonic() -> None:
    base = {"family": "bugfix", "operators": ["compare_flip"], "n_changed": 2, "n_files": 1, "n_code_lines": 10,
            "n_fail_to_pass": 2}  # fmt: skip
    s0 = difficulty_score(**base)
    for key, more in (("n_changed", 8), ("n_files", 3), ("n_code_lines", 60)):
        assert difficulty_score(**{**base, key: more}) > s0, key
    assert difficulty_score(**{**base, "n_fail_to_pass": 6}) < s0  # more failing tests: easier to localise
    assert difficulty_score(**{**base, "operators": ["remove_statement"]}) > s0
    assert difficulty_score(**{**base, "operators": ["compare_flip", "remove_statement"]}) == difficulty_score(
        **{**base, "operators": ["remove_statement"]}
    )
    assert difficulty_score(**{**base, "family": "implement"}) > difficulty_score(**{**base, "family": "rename"}) > s0
    assert [label(EASY_BELOW - 0.01), label(EASY_BELOW), label(HARD_FROM - 0.01), label(HARD_FROM)] == [
        "easy", "medium", "medium", "hard"
    ]  # fmt: skip


def test_difficulty_labels_on_tasks() -> None:
    short, long_ = difficulty(_task("s")), difficulty(_task("l", fixed=LONG))
    assert long_[1] > short[1] and short == difficulty(_task("s"))
    many = difficulty(_task("m", fail_to_pass=[f"mod.t{i}" for i in range(8)]))
    assert many[1] < short[1]
    implement = difficulty(dataclasses.replace(_task("i", fixed=LONG), family="implement", operators=["stub"]))
    assert implement[0] == "hard" and short[0] == "easy"
