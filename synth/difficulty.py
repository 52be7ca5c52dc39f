"""LLM-free difficulty of a verified task: a weighted sum of what makes a bug hard to find and fix.

    score = FAMILY_WEIGHTS[family]
          + max(OPERATOR_WEIGHTS[op] for op in operators)        (DEFAULT_OPERATOR_WEIGHT if unknown / none)
          + 0.75 * log2(1 + changed_lines)                       (+/- lines of the gold patch)
          + 0.75 * (files_touched - 1)                           (files the gold patch changes)
          + 1.00 * log2(1 + code_lines / 5)                      (code lines of the reference function)
          - 0.75 * log2(max(1, fail_to_pass))                    (more failing tests = easier to localise)

    label = easy if score < EASY_BELOW, medium if score < HARD_FROM, else hard

`code_lines` counts the lines spanned by the reference function's statements, docstring excluded (doctests
are tests, not code to read). The score is rounded to 3 decimals; the label depends only on the task record, so
it is deterministic.
"""

from __future__ import annotations

import ast
import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from synth.task import Task

FAMILY_WEIGHTS: dict[str, float] = {
    "bugfix": 0.0,  # one local mutation, located by its failing doctests
    "rename": 0.5,  # mechanical, but spread over the project's call sites
    "version_pin": 0.5,  # an API that changed between versions: read the error, adapt the call
    "cross_module": 1.0,  # the failing test lives in another module than the bug
    "implement": 1.5,  # write a whole body from the signature, docstring and tests
    "nondeterministic": 1.5,  # order / hash-seed / time dependence that fails only sometimes
}
"""Extra difficulty of each family (unknown families: 0.5)."""

OPERATOR_WEIGHTS: dict[str, float] = {
    "compare_flip": 0.5,  # `<` -> `>`: the output is usually visibly wrong
    "arith_swap": 0.5,  # `+` -> `-`
    "negate_condition": 0.5,  # `if c` -> `if not c`
    "bool_swap": 0.75,  # `and` <-> `or`, `True` <-> `False`
    "swap_args": 0.75,  # `f(a, b)` -> `f(b, a)`
    "compare_boundary": 1.0,  # `<` -> `<=`: wrong only at the edge
    "off_by_one": 1.0,  # `n` -> `n + 1`: wrong only at the edge
    "remove_statement": 1.25,  # the missing code must be reinvented
}
"""Difficulty of each bug-fix mutation operator; the hardest operator applied counts."""

DEFAULT_OPERATOR_WEIGHT = 0.75
"""Weight of an operator or family template not in OPERATOR_WEIGHTS."""
EASY_BELOW = 2.5
HARD_FROM = 4.0
"""Thresholds chosen so that bug-fix mutants of TheAlgorithms doctest functions split about 35% easy, 52% medium,
13% hard (2,651 mutants, 1-5 failing tests); the other families add their weight on top."""


def changed_lines(patch: str) -> int:
    """Added plus removed lines of a unified diff."""
    return sum(1 for line in patch.splitlines() if line[:1] in "+-" and not line.startswith(("+++ ", "--- ")))


def files_touched(patch: str) -> int:
    """Files a unified diff changes."""
    return sum(1 for line in patch.splitlines() if line.startswith("+++ "))


def code_lines(function_source: str) -> int:
    """Lines spanned by a function's statements, its docstring excluded (0 if it does not parse)."""
    try:
        tree = ast.parse(function_source)
    except SyntaxError:
        return 0
    func = next((n for n in tree.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)), None)
    if func is None:
        return 0
    body = func.body[1:] if ast.get_docstring(func, clean=False) is not None else func.body
    return len({i for stmt in body for i in range(stmt.lineno, (stmt.end_lineno or stmt.lineno) + 1)})


def difficulty_score(
    family: str, operators: list[str], n_changed: int, n_files: int, n_code_lines: int, n_fail_to_pass: int
) -> float:
    """The module docstring's formula on raw measurements."""
    op = max((OPERATOR_WEIGHTS.get(o, DEFAULT_OPERATOR_WEIGHT) for o in operators), default=DEFAULT_OPERATOR_WEIGHT)
    score = (
        FAMILY_WEIGHTS.get(family, 0.5)
        + op
        + 0.75 * math.log2(1 + max(0, n_changed))
        + 0.75 * max(0, n_files - 1)
        + math.log2(1 + max(0, n_code_lines) / 5)
        - 0.75 * math.log2(max(1, n_fail_to_pass))
    )
    return round(score, 3)


def label(score: float) -> str:
    """`easy`, `medium` or `hard` for a score."""
    return "easy" if score < EASY_BELOW else "medium" if score < HARD_FROM else "hard"


def difficulty(task: Task) -> tuple[str, float]:
    """(label, score) of a task, from its gold patch, family, operators, failing tests and reference function."""
    from synth.screen import task_function_source

    try:
        lines = code_lines(task_function_source(task))
    except (KeyError, ValueError, SyntaxError):
        lines = 0
    operators = list(task.operators) or ([task.operator] if task.operator else [])
    score = difficulty_score(
        task.family, operators, changed_lines(task.gold_patch), files_touched(task.gold_patch), lines,
        len(task.fail_to_pass),
    )  # fmt: skip
    return label(score), score
