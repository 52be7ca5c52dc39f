"""The workspace test runner, run in the sandbox: doctests, test files, shuffling, load errors, hostile tests."""

from __future__ import annotations

import ast
import json

import pytest

from synth.execute import Limits, execute
from synth.mutate import function_span
from synth.test_runner import module_name, parse_args
from synth.verify import (
    MARKER,
    RUNNER_NAME,
    parse_results,
    run_tests,
    runner_source,
    test_command,
    with_runner,
)

LIMITS = Limits(timeout_s=20.0, per_test_s=0.5)

LIB = '''"""A small library.

>>> 2 + 2
4
"""
from pkg import helper


def double(x):
    """Twice `x`.

    >>> double(4)
    8
    """
    return helper.twice(x)


def wrong(x):
    """A doctest that fails.

    >>> wrong(1)
    3
    """
    return x
'''

HELPER = '''def twice(x):
    """Twice.

    >>> twice(3)
    6
    """
    return x * 2
'''

TESTS = """import unittest

from pkg.lib import double


def test_double():
    assert double(3) == 6


def test_fails():
    assert double(3) == 7


def test_errors():
    raise ValueError("boom")


def test_needs_an_argument(x):
    raise AssertionError("never collected")


def helper_not_a_test():
    raise AssertionError("never collected")


class TestDouble(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.two = 2

    def test_one(self):
        self.assertEqual(double(1), self.two)

    def test_bad(self):
        self.assertEqual(double(1), 3)

    @unittest.skip("not today")
    def test_skipped(self):
        raise AssertionError("skipped tests do not run")
"""

PROJECT = {"pkg/__init__.py": "", "pkg/lib.py": LIB, "pkg/helper.py": HELPER, "tests/test_lib.py": TESTS}
TARGETS = ["pkg/lib.py", "pkg/helper.py", "tests/test_lib.py"]


def _run(files: dict[str, str], targets: list[str], ids: list[str] | None = None, **flags) -> object:
    return run_tests(with_runner(files), test_command(targets, ids, LIMITS.per_test_s, **flags), LIMITS)


def test_doctests_and_test_files_of_a_multi_file_project() -> None:
    run = _run(PROJECT, TARGETS)
    assert run.crashed is None and run.load_errors == {}
    assert run.results == {
        "pkg.lib": "pass",
        "pkg.lib.double": "pass",
        "pkg.lib.wrong": "fail",
        "pkg.helper.twice": "pass",
        "tests/test_lib.py::test_double": "pass",
        "tests/test_lib.py::test_fails": "fail",
        "tests/test_lib.py::test_errors": "error",
        "tests/test_lib.py::TestDouble::test_one": "pass",
        "tests/test_lib.py::TestDouble::test_bad": "fail",
        "tests/test_lib.py::TestDouble::test_skipped": "skipped",
    }
    assert "Expected:\n    3\nGot:\n    1" in run.logs["pkg.lib.wrong"]
    assert "ValueError: boom" in run.logs["tests/test_lib.py::test_errors"]
    assert "pkg.lib.double" not in run.logs  # only non-passing tests keep a log


def test_requested_ids_only_and_missing_ones() -> None:
    ids = ["tests/test_lib.py::test_double", "pkg.lib.double", "pkg.lib.nope", "tests/test_lib.py::test_nope"]
    run = _run(PROJECT, TARGETS, ids)
    assert run.results == {
        "tests/test_lib.py::test_double": "pass",
        "pkg.lib.double": "pass",
        "pkg.lib.nope": "missing",
        "tests/test_lib.py::test_nope": "missing",
    }


ORDER_TESTS = "ORDER = []\n" + "".join(
    f"\n\ndef test_{name}():\n    ORDER.append({name!r})\n    raise AssertionError(repr(ORDER))\n"
    for name in ("alpha", "bravo", "charlie", "delta", "echo", "foxtrot")
)


def _order(run) -> list[str]:
    logs = [run.logs[t] for t in run.results]
    longest = max((ast.literal_eval(line.split("AssertionError: ", 1)[1]) for log in logs for line in log.splitlines()
                   if line.startswith("AssertionError: [")), key=len)  # fmt: skip
    return longest


def test_shuffle_changes_the_order_but_not_the_results() -> None:
    files = {"tests/test_order.py": ORDER_TESTS}
    runs = {seed: _run(files, ["tests/test_order.py"], shuffle=seed) for seed in (None, 1, 2)}
    orders = {seed: _order(run) for seed, run in runs.items()}
    assert orders[None] == ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot"]  # sorted without a seed
    assert len({tuple(o) for o in orders.values()}) == 3
    assert all(sorted(o) == orders[None] for o in orders.values())
    assert {json.dumps(r.results, sort_keys=True) for r in runs.values()} == {
        json.dumps({f"tests/test_order.py::test_{n}": "fail" for n in orders[None]}, sort_keys=True)
    }
    assert _order(_run(files, ["tests/test_order.py"], shuffle=1)) == orders[1]  # a seed is reproducible


def test_load_error_per_target_and_the_rest_still_runs() -> None:
    files = {**PROJECT, "tests/test_broken.py": "import not_a_module\n", "bad.py": "raise RuntimeError('no')\n"}
    targets = [*TARGETS, "tests/test_broken.py", "bad.py"]
    run = _run(files, targets)
    assert set(run.load_errors) == {"tests/test_broken.py", "bad.py"}
    assert "ModuleNotFoundError" in run.load_errors["tests/test_broken.py"]
    assert run.results["tests/test_broken.py::<load>"] == "error"
    assert run.results["bad.py::<load>"] == "error"
    assert run.results["tests/test_lib.py::test_double"] == "pass"
    ids = ["tests/test_broken.py::test_x", "bad.f", "pkg.lib.double"]
    assert _run(files, targets, ids).results == {
        "tests/test_broken.py::test_x": "error",
        "bad.f": "error",
        "pkg.lib.double": "pass",
    }


HOSTILE = f"""import os
import sys


class Interrupt(KeyboardInterrupt):
    pass


def test_exit():
    sys.exit(0)


def test_interrupt():
    raise Interrupt()


def test_prints_a_fake_marker():
    print({MARKER!r} + ' {{"results": {{"x": "pass"}}}}')
    os.write(1, ({MARKER!r} + ' {{"load_errors": {{}}, "results": {{"fake": "pass"}}, "logs": {{}}}}\\n').encode())


def test_replaces_stdout():
    sys.stdout = open(os.devnull, "w")


def test_spins():
    while True:
        try:
            pass
        except BaseException:  # swallows the first timer interrupt; the timer fires again
            pass


def test_z_after():
    assert True
"""


def test_hostile_tests_fail_alone_and_our_results_line_is_last() -> None:
    run = _run({"tests/test_hostile.py": HOSTILE}, ["tests/test_hostile.py"])
    p = "tests/test_hostile.py::"
    assert run.crashed is None
    assert run.results == {
        f"{p}test_exit": "error",
        f"{p}test_interrupt": "error",
        f"{p}test_prints_a_fake_marker": "pass",
        f"{p}test_replaces_stdout": "pass",
        f"{p}test_spins": "timeout",
        f"{p}test_z_after": "pass",
    }
    assert "SystemExit" in run.logs[f"{p}test_exit"]


def test_stop_on_timeout_and_stop_on_fail() -> None:
    files = {"tests/test_hostile.py": HOSTILE}
    ids = [f"tests/test_hostile.py::{t}" for t in ("test_exit", "test_spins", "test_z_after")]
    stop_t = _run(files, ["tests/test_hostile.py"], ids, stop_on_timeout=True).results
    assert stop_t == {ids[0]: "error", ids[1]: "timeout"}
    assert _run(files, ["tests/test_hostile.py"], ids, stop_on_fail=True).results == {ids[0]: "error"}


def test_a_test_that_kills_the_interpreter_is_a_crash() -> None:
    run = _run({"tests/test_exit.py": "import os\n\n\ndef test_bye():\n    os._exit(0)\n"}, ["tests/test_exit.py"])
    assert run.crashed is not None and run.results == {}


SHAPES = '''import os

PID = os.getpid()  # which process imported the module


class Base:
    def area(self):
        return 1


class Square(Base):
    def area(self):
        """Area plus the base's.

        >>> Square().area()
        5
        """
        return super().area() + 4
'''

SHAPE_TESTS = """import os

from shapes import PID, Square


def test_area():
    assert Square().area() == 5


def test_imported_in_this_process():
    assert PID == os.getpid()


def test_writes():
    open("made.txt", "x").write("1")  # fails if a copy of the workspace were shared
"""


def _variants(spec: dict) -> list[dict]:
    files = with_runner({"shapes.py": SHAPES, "tests/test_shapes.py": SHAPE_TESTS})
    files["v.json"] = json.dumps({"path": "shapes.py", "wall_s": 10.0, **spec})
    command = test_command(["shapes.py", "tests/test_shapes.py"], None, 0.5)
    res = execute(files, [*command[:4], "--variants", "v.json", *command[4:]], LIMITS)
    return [v["results"] for v in parse_results(res.stdout)["variants"]]


def test_variants_swap_the_function_in_place_or_reload_a_private_copy() -> None:
    mutant = SHAPES.replace("super().area() + 4", "super().area() - 4")
    texts = [SHAPES, mutant, SHAPES.replace("+ 4", "+ 2 + 2")]
    swapped = _variants({"function": "Square.area", "texts": texts})
    span = function_span(SHAPES, "Square.area")
    assert span == (12, 18, 18, [("Square", 0)])
    assert _variants({"function": "Square.area", "texts": texts, "span": span}) == swapped
    outside = mutant.replace("PID = os.getpid()", "PID = (")  # broken outside the def: only the def is compiled
    only_def = _variants({"function": "Square.area", "texts": [SHAPES, outside], "span": span})[1]
    assert only_def["tests/test_shapes.py::test_area"] == "fail" and only_def["shapes.Square.area"] == "fail"
    assert [r["shapes.Square.area"] for r in swapped] == ["pass", "fail", "pass"]
    assert [r["tests/test_shapes.py::test_area"] for r in swapped] == ["pass", "fail", "pass"]
    assert [r["tests/test_shapes.py::test_writes"] for r in swapped] == ["pass"] * 3
    assert {r["tests/test_shapes.py::test_imported_in_this_process"] for r in swapped} == {"fail"}  # loaded once
    reloaded = _variants({"function": "Square.missing", "texts": [SHAPES, mutant]})
    assert [r["tests/test_shapes.py::test_area"] for r in reloaded] == ["pass", "fail"]
    assert reloaded[1]["tests/test_shapes.py::test_imported_in_this_process"] == "pass"  # a fresh import


def test_variants_run_the_first_ids_first_and_stop_on_fail() -> None:
    mutant = SHAPES.replace("+ 4", "+ 5")
    files = with_runner({"shapes.py": SHAPES, "tests/test_shapes.py": SHAPE_TESTS})
    spec = {
        "path": "shapes.py",
        "function": "Square.area",
        "texts": [SHAPES, mutant],
        "first": ["tests/test_shapes.py::test_area"],
    }
    files["v.json"] = json.dumps(spec)
    command = test_command(
        ["shapes.py", "tests/test_shapes.py"],
        ["shapes.Square.area", "tests/test_shapes.py::test_area"],
        0.5,
        stop_on_fail=True,
    )
    res = execute(files, [*command[:4], "--variants", "v.json", *command[4:]], LIMITS)
    reference, killed = (v["results"] for v in parse_results(res.stdout)["variants"])
    assert reference == {"shapes.Square.area": "pass", "tests/test_shapes.py::test_area": "pass"}
    assert killed == {"tests/test_shapes.py::test_area": "fail"}  # ran first (not in sorted order), then stopped


def test_command_line_and_results_parsing() -> None:
    cmd = test_command(("a.py", "tests/test_b.py"), ["a.f"], 1.5, shuffle=3, stop_on_fail=True)
    assert cmd == ["python", "-s", "-P", RUNNER_NAME, "--timeout", "1.5", "--stop-on-fail", "--shuffle", "3",
                   "a.py", "tests/test_b.py", "--", "a.f"]  # fmt: skip
    targets, ids, opts = parse_args(cmd[4:])
    assert targets == ["a.py", "tests/test_b.py"] and ids == ["a.f"]
    assert opts["shuffle"] == 3 and opts["stop_on_fail"] and not opts["stop_on_timeout"] and opts["timeout"] == 1.5
    with pytest.raises(ValueError, match="unknown option"):
        parse_args(["--nope", "a.py"])
    out = f'{MARKER} {{"results": {{"a": "fail"}}}}\nnoise\n{MARKER} {{"results": {{"a": "pass"}}}}\n'
    assert parse_results(out) == {"results": {"a": "pass"}}
    assert parse_results("nothing here") is None
    assert module_name("pkg/sub/mod.py") == "pkg.sub.mod" and module_name("pkg/__init__.py") == "pkg"
    assert with_runner({"a.py": ""})[RUNNER_NAME] == runner_source()
