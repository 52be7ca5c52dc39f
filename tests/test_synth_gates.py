"""Verifying drafts for real in the sandbox: stable tests, flakiness, the test-strength gate, the task it builds."""

from __future__ import annotations

import ast
from concurrent.futures import ThreadPoolExecutor

import pytest

from synth.draft import Draft
from synth.execute import Limits, execute
from synth.gates import GateConfig, Outcomes, gate_mutants, split_outcomes
from synth.task import apply_patch
from synth.verify import RUNNER_NAME, Verifier, reward

LIMITS = Limits(timeout_s=20.0, per_test_s=0.5)

GRADE = '''"""Letter grades."""


def grade(score):
    """The letter for a score out of 100.

    >>> grade(95)
    'A'
{more}    """
    if score >= 90:
        return "A"
    if score >= 80:
        return "B"
    if score >= 70:
        return "C"
    return "F"
'''
BOUNDARIES = "".join(
    f"    >>> grade({s})\n    {g!r}\n" for s, g in ((90, "A"), (89, "B"), (80, "B"), (79, "C"), (70, "C"), (69, "F"))
)
STRONG = GRADE.format(more=BOUNDARIES)
WEAK = GRADE.format(more="")


def _draft(fixed: dict[str, str], broken: dict[str, str], **kw) -> Draft:
    base = dict(
        family="bugfix", source_path="local/grades.py", repo="", commit="", module="grades", function="grade",
        operators=("compare_boundary",), seed=7, description="test draft", broken=broken, fixed=fixed,
        targets=("grades.py",), scope_file="grades.py", problem_statement="grade() is wrong", extra={"k": "v"},
    )  # fmt: skip
    return Draft(**{**base, **kw})


def _verifier(**gates) -> Verifier:
    return Verifier(LIMITS, GateConfig(**gates))


def test_a_valid_draft_becomes_a_task_whose_patch_and_reward_work() -> None:
    broken = STRONG.replace("score >= 80", "score > 80")
    verifier = _verifier()
    reason, task = verifier.verify(_draft({"grades.py": STRONG}, {"grades.py": broken}))
    assert reason is None and task is not None
    assert task.fail_to_pass == ["grades.grade"] and task.pass_to_pass == []
    assert task.files == {"grades.py": broken, RUNNER_NAME: task.files[RUNNER_NAME]}
    assert task.test_command[:4] == ["python", "-s", "-P", RUNNER_NAME] and "--shuffle" not in task.test_command
    assert task.operator == "compare_boundary" and task.operators == ["compare_boundary"]
    assert task.mutation_score >= 0.8 and task.mutants_total == 10 and task.mutants_killed >= 8
    assert task.provenance["hash_seeds"] == "1,2,3" and task.provenance["k"] == "v" and task.provenance["python"]
    assert task.problem_statement == "grade() is wrong" and task.difficulty == "" and task.isolation
    fixed = apply_patch(task.files, task.gold_patch)
    assert fixed["grades.py"] == STRONG and fixed[RUNNER_NAME] == task.files[RUNNER_NAME]
    assert reward(task, fixed, LIMITS) == 1
    assert reward(task, task.files, LIMITS) == 0
    again = _verifier().verify(_draft({"grades.py": STRONG}, {"grades.py": broken}))[1]
    assert again == task  # deterministic, including the task id


def test_weak_tests_are_rejected_with_their_score_recorded() -> None:
    verifier = _verifier()
    reason, task = verifier.verify(_draft({"grades.py": WEAK}, {"grades.py": WEAK.replace(">= 90", "> 95")}))
    assert (reason, task) == ("weak_tests", None)
    scores = verifier.stats()["mutation_scores"]
    assert len(scores) == 1 and scores[0] < 0.8
    assert "runs_broken" not in verifier.stats()  # the function's gate decides before any broken run
    lenient = _verifier(min_score=scores[0])  # the same draft passes a gate set at its score
    assert lenient.verify(_draft({"grades.py": WEAK}, {"grades.py": WEAK.replace(">= 90", "> 95")}))[0] is None


def test_equivalent_mutant_is_rejected_after_one_run() -> None:
    verifier = _verifier()
    same = STRONG.replace('return "F"', "return 'F'")
    assert verifier.verify(_draft({"grades.py": STRONG}, {"grades.py": same})) == ("equivalent_mutant", None)
    stats = verifier.stats()
    assert stats["runs_fixed"] == 3 and stats["runs_gate"] == 1  # fixed state, the function's gate (shared)
    assert stats["runs_broken"] == 1  # then a single broken run


def test_plain_rejections() -> None:
    verifier = _verifier()
    fixed = {"grades.py": STRONG}
    spin = STRONG.replace("    if score >= 90:\n", "    while True:\n        pass\n    if score >= 90:\n")
    assert verifier.verify(_draft(fixed, {"grades.py": spin}))[0] == "timeout"
    assert verifier.verify(_draft(fixed, {"grades.py": "raise ImportError('x')\n"}))[0] == "import_error"
    no_doctest = {"grades.py": 'def grade(score):\n    return "A"\n'}
    assert verifier.verify(_draft(no_doctest, no_doctest))[0] == "no_tests"
    failing = {"grades.py": STRONG.replace('return "F"', 'return "E"')}
    assert verifier.verify(_draft(failing, {"grades.py": STRONG}))[0] == "original_fails"
    ident = '''def grade(score):\n    """Same.\n\n    >>> grade(3)\n    3\n    """\n    return score\n'''
    draft = _draft({"grades.py": ident}, {"grades.py": ident.replace("return score", "return None")})
    assert verifier.verify(draft)[0] == "no_gate_mutants"
    assert verifier.stats()["rejected:timeout"] == 1


PAIRS = [("apple", "banana"), ("apple", "cherry"), ("kiwi", "lime"), ("plum", "fig"), ("oak", "elm"), ("sun", "sky")]
PROBE = f"print([next(iter(set(p))) for p in {PAIRS!r}])"


@pytest.fixture(scope="module")
def set_order() -> dict[int, list[str]]:
    """Which element of each pair a set iterates first, under PYTHONHASHSEED 1, 2, 3 (in the sandbox)."""
    return {s: ast.literal_eval(execute({}, ["python", "-c", PROBE], LIMITS, hash_seed=s).stdout) for s in (1, 2, 3)}


def _pick(set_order: dict[int, list[str]], pattern: tuple[bool, bool, bool]) -> tuple[str, str]:
    """A pair and the element that comes first exactly under the hash seeds marked True."""
    for i, pair in enumerate(PAIRS):
        for word in pair:
            if tuple(set_order[s][i] == word for s in (1, 2, 3)) == pattern:
                return pair, word
    pytest.fail(f"no probe pair has the hash-order pattern {pattern}; add pairs")


LIB = '''def pick(words):
    """The alphabetically first word.

    >>> pick(["b", "a", "c"])
    'a'
    """
    best = words[0]
    for word in words[1:]:
        if word < best:
            best = word
    return best
'''

STATE_TESTS = """from lib import pick

STATE = []


def test_append():
    STATE.append(1)
    assert pick(["x", "y"]) == "x"


def test_count():
    assert pick(["b", "c"]) == "b"


def test_untouched():
    assert STATE == []  # order-dependent: passes only when it runs before test_append


def test_extra():
    assert pick(["q"]) == "q"


def test_hash_order():
    assert next(iter(set({pair!r}))) == {first!r}  # depends on PYTHONHASHSEED


def test_other():
    assert pick({pair!r}) == {smallest!r}
"""


def _project(set_order, broken_lib: str | None = None) -> tuple[dict[str, str], dict[str, str]]:
    pair, first = _pick(set_order, (True, False, False))
    tests = STATE_TESTS.format(pair=pair, first=first, smallest=min(pair))
    fixed = {"lib.py": LIB, "tests/test_state.py": tests}
    return fixed, {**fixed, "lib.py": broken_lib or LIB.replace("word < best", "word > best")}


def _project_draft(fixed: dict[str, str], broken: dict[str, str], **kw) -> Draft:
    kw = {"targets": ("lib.py", "tests/test_state.py"), **kw}
    return _draft(fixed, broken, module="lib", function="pick", scope_file="lib.py", **kw)


def test_order_and_hash_dependent_tests_are_flaky_and_dropped(set_order) -> None:
    fixed, broken = _project(set_order)
    verifier = _verifier(min_score=0.0)
    reason, task = verifier.verify(_project_draft(fixed, broken))
    assert reason is None, reason
    assert task.flaky_tests == ["tests/test_state.py::test_hash_order", "tests/test_state.py::test_untouched"]
    kept = {*task.fail_to_pass, *task.pass_to_pass}
    assert not kept & set(task.flaky_tests)
    assert "lib.pick" in task.fail_to_pass and "tests/test_state.py::test_extra" in task.pass_to_pass
    assert reward(task, apply_patch(task.files, task.gold_patch), LIMITS) == 1


def test_a_draft_whose_only_failure_is_flaky_is_rejected(set_order) -> None:
    pair, first = _pick(set_order, (False, False, True))  # the broken code fails under hash seeds 1 and 2 only
    other = pair[1] if first == pair[0] else pair[0]
    lib = '''def pick(words):\n    """The first word.\n\n    >>> pick(["b"])\n    'b'\n    """\n    return words[0]\n'''
    tests = f"from lib import pick\n\n\ndef test_pick():\n    assert pick({[first, other]!r}) == {first!r}\n"
    fixed = {"lib.py": lib, "tests/test_x.py": tests}
    broken = {**fixed, "lib.py": lib.replace("return words[0]", "return next(iter(set(words)))")}
    draft = _project_draft(fixed, broken, targets=("lib.py", "tests/test_x.py"))
    assert _verifier().verify(draft) == ("flaky_no_stable_failure", None)


def test_load_errors_of_test_files_fail_to_pass_only_when_allowed(set_order) -> None:
    fixed, _ = _project(set_order)
    renamed = {**fixed, "lib.py": LIB.replace("def pick", "def choose").replace(">>> pick", ">>> choose")}
    assert _verifier().verify(_project_draft(fixed, renamed))[0] == "import_error"
    reason, task = _verifier(min_score=0.0).verify(_project_draft(fixed, renamed, allow_load_errors=True))
    assert reason is None
    assert "tests/test_state.py::test_extra" in task.fail_to_pass
    assert "lib.pick" in task.fail_to_pass  # the doctest of the renamed function is missing


def test_shared_workspaces_are_computed_once_across_threads() -> None:
    fixed = {"grades.py": STRONG}
    drafts = [_draft(fixed, {"grades.py": STRONG.replace(a, b)}) for a, b in ((">= 80", "> 80"), (">= 70", "> 70"))]
    verifier = _verifier()
    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(verifier.verify, drafts))
    assert [r[0] for r in results] == [None, None]
    stats = verifier.stats()
    assert stats["fixed_computed"] == 1 and stats["fixed_cache_hits"] == 1
    assert stats["gate_computed"] == 1 and stats["gate_cache_hits"] == 1
    assert stats["runs"] == 3 + 2 * 3 + 1  # fixed state once, three broken runs each, one gate batch
    assert set(stats["run_wall_s"]) == {"fixed", "broken", "gate"}
    assert results[0][1].task_id != results[1][1].task_id


def test_gate_mutants_are_seeded_distinct_and_spread_over_operators() -> None:
    first = gate_mutants(STRONG, "grade", 10, seed=0)
    assert first == gate_mutants(STRONG, "grade", 10, seed=0)
    assert len({m.source for m in first}) == 10 and STRONG not in {m.source for m in first}
    assert len({m.operator for m in first}) >= 5
    assert [m.source for m in gate_mutants(STRONG, "grade", 10, seed=1)] != [m.source for m in first]
    assert len(gate_mutants(WEAK, "grade", 500, seed=0)) < 500  # bounded by the function's sites


def test_split_outcomes() -> None:
    runs = [{"a": "pass", "b": "fail", "c": "pass"}, {"a": "pass", "b": "error", "c": "fail"}]
    assert split_outcomes(runs, ["c", "b", "a", "d"]) == Outcomes(("a",), ("b", "d"), ("c",))
    with pytest.raises(ValueError):
        GateConfig(runs=0)
