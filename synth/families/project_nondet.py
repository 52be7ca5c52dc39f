"""The nondeterministic family: a test that depends on the clock or on test order must be made deterministic.

Project: `lib/<mod>.py` (the real module, unchanged), `app/clock.py` (the project's injectable clock),
`app/report.py` (outcomes of the real function plus one stateful/time-stamped helper), `tests/test_report.py`.
Variants (seeded):
- `clock_date` / `clock_time`: `stamped()` reads `datetime.date.today()` / `time.time()` instead of the project
  clock that the tests freeze, so the stamped tests fail on every run (their actual values change with time).
- `default_arg`: `collect(cases, into=[])` shares its mutable default across calls. `test_collect_twice` (two
  calls, same input, same result expected) fails whatever the order; the one-call `test_collect_<i>` tests
  pass only when they run first, so the verifier's flakiness gate (shuffled orders) drops them as flaky.
- `module_cache`: `distinct()` keeps the outcomes it has seen in a module-level list. `test_distinct_twice`
  fails whatever the order; `test_distinct_<k>` (input 0 and input k) pass only when they run first.
The fix never touches the tests. The real function stays the task's function, so the test-strength gate
mutates it and the `test_outcome_<i>` tests must catch its mutants.

Family-specific reject reasons of `build` (besides those of `label_project`):
- `no_stable_failure`: the test that must fail whatever the order was not kept (its value was not labelled).
- `broken_passes`: the broken project passes every kept check.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from synth.draft import Candidate, Draft
from synth.families.project_label import Check, Plan, TestFile, label_project, limits_for, workspace
from synth.families.project_spec import FunctionSpec, args_text, pick
from synth.families.project_templates import (
    call_text,
    cases_text,
    failing_list,
    import_line,
    local_callee,
    outcome_check,
    package_init,
    report_module,
    run_command,
)

if TYPE_CHECKING:
    from automixer.config import SynthConfig

FAMILY = "nondeterministic"
VARIANTS = ("clock_date", "clock_time", "default_arg", "module_cache")
TEST_FILE = "tests/test_report.py"
FROZEN = 981158400.0
"""The moment the tests freeze the clock at: 2001-02-03 00:00:00 UTC."""
FROZEN_DATE = "2001-02-03"
ORDER_TESTS = 3
"""Order-dependent tests per project (few, so that the flakiness gate's shuffled runs likely expose each)."""

CLOCK = '''"""The project clock: code asks it for the time and the date, so that tests can freeze both."""

from __future__ import annotations

import datetime
import time

_frozen: float | None = None


def freeze(moment: float | None) -> None:
    """Make `now()` return this POSIX timestamp from now on (None: follow the real clock again)."""
    global _frozen
    _frozen = moment


def now() -> float:
    """Seconds since the epoch: the frozen moment, or the real time."""
    return time.time() if _frozen is None else _frozen


def today() -> datetime.date:
    """The UTC date of `now()`."""
    return datetime.datetime.fromtimestamp(now(), datetime.timezone.utc).date()
'''


def _stamped(spec: FunctionSpec, field: str, when: str) -> str:
    params = ", ".join(spec.local)
    return (
        f"def stamped({params}):\n"
        f'    """The outcome of one input, stamped with the {"date" if field == "date" else "time"} it was computed."""\n'
        f"    status, value = outcome({params})\n"
        f'    return {{"{field}": {when}, "status": status, "value": value}}\n'
    )


COLLECT_DOC = '    """Append the outcome of every input to `into` and return it (a new list when none is given)."""\n'
COLLECT_FIXED = (
    "def collect(cases, into=None):\n" + COLLECT_DOC + "    if into is None:\n        into = []\n"
    "    for case in cases:\n        into.append(outcome(*case))\n    return into\n"
)
COLLECT_BROKEN = (
    "def collect(cases, into=[]):\n" + COLLECT_DOC + "    for case in cases:\n        into.append(outcome(*case))\n"
    "    return into\n"
)
DISTINCT_DOC = '    """The distinct outcomes of `cases`, in first-seen order."""\n'
DISTINCT_FIXED = (
    "def distinct(cases):\n" + DISTINCT_DOC + "    seen = []\n    for case in cases:\n"
    "        result = outcome(*case)\n        if result not in seen:\n            seen.append(result)\n"
    "    return seen\n"
)
DISTINCT_BROKEN = (
    "_SEEN = []  # outcomes already reported\n\n\n"
    "def distinct(cases):\n" + DISTINCT_DOC + "    out = []\n    for case in cases:\n"
    "        result = outcome(*case)\n        if result not in _SEEN:\n            _SEEN.append(result)\n"
    "            out.append(result)\n    return out\n"
)


def _reports(spec: FunctionSpec, variant: str) -> tuple[str, str, str]:
    """(fixed app/report.py, broken app/report.py, name of the helper the variant is about)."""
    callee = local_callee(spec, spec.name)
    imp = import_line(f"lib.{spec.module}", spec.name, callee)
    call = call_text(callee, spec)
    if variant in ("clock_date", "clock_time"):
        field, good, bad, mod = (
            ("date", "clock.today().isoformat()", "datetime.date.today().isoformat()", "import datetime")
            if variant == "clock_date"
            else ("at", "clock.now()", "time.time()", "import time")
        )
        fixed = report_module(spec, ["from app import clock", imp], call, (_stamped(spec, field, good),))
        return fixed, report_module(spec, [mod, "", imp], call, (_stamped(spec, field, bad),)), "stamped"
    helper, good, bad = (
        ("collect", COLLECT_FIXED, COLLECT_BROKEN) if variant == "default_arg" else
        ("distinct", DISTINCT_FIXED, DISTINCT_BROKEN)
    )  # fmt: skip
    return report_module(spec, [imp], call, (good,)), report_module(spec, [imp], call, (bad,)), helper


def _per_case(variant: str, i: int, case: tuple[str, ...]) -> list[Check]:
    checks = [outcome_check(TEST_FILE, i, case)]
    if variant.startswith("clock"):
        freeze = f"clock.freeze({FROZEN!r})"
        checks.append(Check(TEST_FILE, f"test_stamped_{i}", f"stamped({args_text(case)})", freeze, i))
    elif variant == "default_arg" and i < ORDER_TESTS:
        checks.append(Check(TEST_FILE, f"test_collect_{i}", f"collect({cases_text([case])})", case=i))
    return checks


def _aggregates(variant: str, cases: list[tuple[str, ...]]) -> list[Check]:
    if variant.startswith("clock"):
        return []
    helper = "collect" if variant == "default_arg" else "distinct"
    pre = f"first = {helper}({cases_text(cases[:2])})\nsecond = {helper}({cases_text(cases[:2])})"
    twice = Check(TEST_FILE, f"test_{helper}_twice", "(first, second)", pre)
    if variant == "default_arg":
        return [twice]
    pairs = [Check(TEST_FILE, f"test_distinct_{k}", f"distinct({cases_text([cases[0], c])})") for k, c in
             enumerate(cases[1 : ORDER_TESTS + 1], 1)]  # fmt: skip
    return [*pairs, twice]


def plan(spec: FunctionSpec, variant: str) -> tuple[Plan, str]:
    """The project of one variant, and the helper it is about."""
    fixed, broken, helper = _reports(spec, variant)
    common = {
        "lib/__init__.py": package_init("Library code the application builds on."),
        f"lib/{spec.module}.py": spec.sf.text,
        "app/__init__.py": package_init("The application."),
        "app/clock.py": CLOCK,
    }
    imports = ("from app import clock", f"from app.report import {helper}, outcome")
    return Plan(
        fixed={**common, "app/report.py": fixed},
        broken={**common, "app/report.py": broken},
        test_files={TEST_FILE: TestFile("Tests of app.report.", imports)},
        per_case=lambda i, case: _per_case(variant, i, case),
        aggregates=lambda cases: _aggregates(variant, cases),
        scope_file=f"lib/{spec.module}.py",
        function=spec.name,
    ), helper


def _statement(variant: str, helper: str, failing: list[str]) -> str:
    if variant.startswith("clock"):
        what = "date" if variant == "clock_date" else "time"
        return (
            f"These tests of `{TEST_FILE}` fail, and the values they get depend on when they run:\n\n"
            f"{failing_list(failing)}\nThe tests expect reports stamped with the {what} of {FROZEN_DATE} "
            f"(UTC), the moment they set on the project clock; the reports carry another {what}.\n\n"
            f"Run the tests with `{run_command([TEST_FILE])}`.\n"
        )
    return (
        f"`{TEST_FILE}::test_{helper}_twice` fails: calling `{helper}` twice with the same inputs does not give "
        f"the same result twice. Other tests of `{helper}` in the same file pass or fail depending on the order "
        f"in which the tests run.\n\nRun the tests with `{run_command([TEST_FILE])}`.\n"
    )


def build(spec: FunctionSpec, variant: str, seed: int, cfg: SynthConfig) -> Draft | str:
    """The nondeterministic draft of one function and variant, or a reject reason (see the module docstring)."""
    p, helper = plan(spec, variant)
    labelled = label_project(p, spec, limits_for(cfg))
    if isinstance(labelled, str):
        return labelled
    stable = f"{TEST_FILE}::test_{helper}_twice"
    if not variant.startswith("clock") and stable not in labelled.expected:
        return "no_stable_failure"
    if not labelled.broken:
        return "broken_passes"
    failing = [t for t in labelled.broken if f"::test_{helper}" in t]
    kind = "time" if variant.startswith("clock") else "order"
    order = [
        c.id for c in labelled.checks if kind == "order" and c.name.startswith(f"test_{helper}_") and c.id != stable
    ]
    return Draft(
        family=FAMILY, source_path=spec.sf.rel, repo=spec.sf.repo, commit=spec.sf.commit,
        module=f"lib.{spec.module}", function=spec.name, operators=(f"nondeterministic.{variant}",), seed=seed,
        description=f"app/report.py::{helper} is {kind}-dependent ({variant})",
        broken=workspace(p.broken, labelled), fixed=workspace(p.fixed, labelled), targets=(TEST_FILE,),
        scope_file=f"lib/{spec.module}.py", problem_statement=_statement(variant, helper, failing),
        extra={"variant": variant, "kind": kind, "helper": helper, "order_dependent": ",".join(order)},
    )  # fmt: skip


def candidates(spec: FunctionSpec, cfg: SynthConfig) -> Iterator[Candidate]:
    """One candidate per function, its variant chosen by the function's seed."""
    variant = pick(VARIANTS, spec.seed, FAMILY)
    key = f"{spec.sf.rel}::{spec.name}::{FAMILY}::{variant}::{spec.seed}"
    yield Candidate(FAMILY, key, variant, lambda: build(spec, variant, spec.seed, cfg))
