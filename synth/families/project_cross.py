"""The cross_module family: a bug in a library module that only the application's tests reveal.

Project: `lib/<mod>.py` (the real module), `app/report.py` (generated code that maps the real function over
inputs and aggregates the outcomes), `tests/test_report.py` (tests of the app, labelled on the reference).
Broken: the real function mutated by one seeded `synth.mutate` operator. Only the app's tests are targets, so
the failure surfaces one module away from the bug. When the module calls the function at import time, the
broken tests may fail to import; the draft then allows load errors.

Family-specific reject reasons of `build` (besides those of `label_project`):
- `syntax_error`: the mutation could not be written back as valid code.
- `equivalent_mutant`: the broken project gives the reference's result on every kept check.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import TYPE_CHECKING

from synth.draft import Candidate, Draft
from synth.families.project_label import Plan, TestFile, label_project, limits_for, workspace
from synth.families.project_spec import FunctionSpec
from synth.families.project_templates import (
    aggregate_checks,
    call_text,
    failing_list,
    import_line,
    local_callee,
    outcome_check,
    package_init,
    report_module,
    result_text,
    run_command,
)
from synth.mutate import OPERATORS, Mutation, MutationError, mutate

if TYPE_CHECKING:
    from automixer.config import SynthConfig

FAMILY = "cross_module"
TEMPLATE = "cross_module.report"
TEST_FILE = "tests/test_report.py"


def lib_file(spec: FunctionSpec) -> str:
    """Workspace path of the real module."""
    return f"lib/{spec.module}.py"


def plan(spec: FunctionSpec, broken_lib: str) -> Plan:
    """The project around the real function, with `broken_lib` as the broken state's library module."""
    callee = local_callee(spec, spec.name)
    report = report_module(spec, [import_line(f"lib.{spec.module}", spec.name, callee)], call_text(callee, spec))
    common = {
        "lib/__init__.py": package_init("Library code the application builds on."),
        "app/__init__.py": package_init("The application."),
        "app/report.py": report,
    }
    return Plan(
        fixed={**common, lib_file(spec): spec.sf.text},
        broken={**common, lib_file(spec): broken_lib},
        test_files={TEST_FILE: TestFile("Tests of app.report.", ("from app.report import outcome, summary, table",))},
        per_case=lambda i, case: [outcome_check(TEST_FILE, i, case)],
        aggregates=lambda cases: aggregate_checks(TEST_FILE, cases),
        scope_file=lib_file(spec),
        function=spec.name,
    )


def build(spec: FunctionSpec, mutation: Mutation, seed: int, cfg: SynthConfig) -> Draft | str:
    """The cross_module draft of one mutant, or a reject reason (see the module docstring)."""
    p = plan(spec, mutation.source)
    labelled = label_project(p, spec, limits_for(cfg))
    if isinstance(labelled, str):
        return labelled
    if not labelled.broken:
        return "equivalent_mutant"
    failing = list(labelled.broken)
    example = next(c for c in labelled.checks if c.id == failing[0])
    statement = (
        f"Some tests of the application's report module fail:\n\n{failing_list(failing)}\n"
        f"For example, `{example.expr}` {result_text(labelled.broken[example.id])}, but the test expects "
        f"`{labelled.expected[example.id]}`.\n\nRun the tests with `{run_command([TEST_FILE])}`.\n"
    )
    return Draft(
        family=FAMILY, source_path=spec.sf.rel, repo=spec.sf.repo, commit=spec.sf.commit,
        module=f"lib.{spec.module}", function=spec.name, operators=(TEMPLATE, mutation.operator), seed=seed,
        description=f"{lib_file(spec)}::{spec.name}: {mutation.description}; surfaces in {TEST_FILE}",
        broken=workspace(p.broken, labelled), fixed=workspace(p.fixed, labelled), targets=(TEST_FILE,),
        scope_file=lib_file(spec), allow_load_errors=labelled.broken_load_error is not None,
        problem_statement=statement,
        extra={"template": TEMPLATE, "bug_file": lib_file(spec), "cases": str(len({c.case for c in labelled.checks} - {None}))},
    )  # fmt: skip


def candidates(spec: FunctionSpec, cfg: SynthConfig) -> Iterator[Candidate]:
    """Up to `cfg.mutants_per_function` distinct mutants of the function, operators in a seeded order."""
    rng = random.Random(spec.seed)
    ops = list(OPERATORS)
    rng.shuffle(ops)
    seen: set[str] = set()
    base = f"{spec.sf.rel}::{spec.name}::{FAMILY}"
    for attempt in range(2 * len(ops)):
        if len(seen) >= cfg.mutants_per_function:
            return
        op, mseed = ops[attempt % len(ops)], rng.randrange(2**31)
        try:
            mutation = mutate(spec.sf.text, spec.name, op, mseed)
        except MutationError:
            yield Candidate(FAMILY, f"{base}::{op}::{mseed}", op, lambda: "syntax_error")
            continue
        if mutation is None or mutation.source in seen:
            continue
        seen.add(mutation.source)
        yield Candidate(FAMILY, f"{base}::{op}::{mseed}", op, lambda m=mutation, s=mseed: build(spec, m, s, cfg))
