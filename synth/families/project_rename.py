"""The rename family: a library function was renamed and its signature changed; the call sites must follow.

Project: `lib/<mod>.py` (the real module after the refactor: the function renamed, its signature changed, and
every use inside the module, doctests included, carried through), three call sites written against the old API
in the broken state (`app/report.py` imports the function, `app/stats.py` calls it through the module,
`cli.py` imports it too), and tests of each (`tests/test_report.py`, `tests/test_stats.py`, `tests/test_cli.py`).
The library is the same in both states; the gold patch carries the change through every call site. The tests
never change, so the broken state fails with ImportError at load time and with wrong outcomes (AttributeError)
at run time.

Family-specific reject reasons of `build` (besides those of `label_project`):
- `unsafe_rewrite`: no signature change can be carried through the module safely (the function is used as a
  value, called with unpacked arguments, its name is bound again, or its signature does not allow it).
- `broken_passes`: the broken project passes every kept check (should not happen; kept as a guard).
"""

from __future__ import annotations

import ast
import random
from collections.abc import Iterator
from typing import TYPE_CHECKING

from synth.draft import Candidate, Draft
from synth.families.project_label import Plan, TestFile, label_project, limits_for, workspace
from synth.families.project_rewrite import ApiChange, RewriteError, rewrite_module
from synth.families.project_spec import APP_NAMES, PROJECT_TOPS, FunctionSpec, free_name, module_names
from synth.families.project_templates import (
    aggregate_checks,
    cli_check,
    cli_module,
    failing_list,
    import_line,
    local_callee,
    outcome_check,
    package_init,
    report_module,
    run_command,
    stats_module,
)

if TYPE_CHECKING:
    from automixer.config import SynthConfig

FAMILY = "rename"
NEW_NAMES = ("compute_{}", "calc_{}", "{}_value", "find_{}", "eval_{}", "get_{}")
"""Templates of the new name (filled with the old name)."""
REPORT, STATS, CLI = "tests/test_report.py", "tests/test_stats.py", "tests/test_cli.py"


def def_params(source: str, name: str) -> tuple[str, ...]:
    """Names of the positional parameters of top-level function `name`."""
    funcs = [n for n in ast.parse(source).body if isinstance(n, ast.FunctionDef) and n.name == name]
    return tuple(a.arg for a in funcs[-1].args.args)


def new_name(spec: FunctionSpec, taken: set[str], rng: random.Random) -> str:
    """A new, unused name for the function, from a seeded template."""
    templates = list(NEW_NAMES)
    rng.shuffle(templates)
    for t in templates:
        prefix, suffix = t.split("{}")
        if spec.name.startswith(prefix) and spec.name.endswith(suffix):
            continue  # `get_get_x`, `x_value_value`
        name = t.format(spec.name)
        if name not in taken and name not in APP_NAMES:
            return name
    return free_name(f"{spec.name}_v2", taken | APP_NAMES)


def keyword_from(spec: FunctionSpec) -> int:
    """Index of the first parameter a `kwonly` change makes keyword-only: one the call sites pass positionally."""
    return 1 if len(spec.params) > 1 else 0


def refactor(spec: FunctionSpec, changes: list[str], new: str) -> tuple[ApiChange, str] | None:
    """The first of `changes` that can be carried through the module: (the change, the rewritten module)."""
    params = def_params(spec.sf.text, spec.name)
    for change in changes:
        api = ApiChange(spec.name, new, change, params, keyword_from(spec))
        try:
            return api, rewrite_module(spec.sf.text, api)
        except RewriteError:
            continue
    return None


def _sites(spec: FunctionSpec, name: str, call) -> dict[str, str]:
    """The three call-site files, written against function `name` called as `call(callee)`."""
    callee = local_callee(spec, name)
    mod = spec.module if spec.module not in APP_NAMES | set(spec.local) else f"lib_{spec.module}"
    mod_import = f"from lib import {spec.module}" + (f" as {mod}" if mod != spec.module else "")
    imp = import_line(f"lib.{spec.module}", name, callee)
    return {
        "app/report.py": report_module(spec, [imp], call(callee), shown=name),
        "app/stats.py": stats_module(spec, [mod_import], call(f"{mod}.{name}"), shown=name),
        "cli.py": cli_module(spec, [imp], call(callee), shown=name),
    }


def plan(spec: FunctionSpec, api: ApiChange, lib: str) -> Plan:
    """Fixed: call sites use the new API; broken: they still use the old one."""
    common = {
        "lib/__init__.py": package_init("Library code the application builds on."),
        f"lib/{spec.module}.py": lib,
        "app/__init__.py": package_init("The application."),
    }
    args = list(spec.local)
    fixed = _sites(spec, api.new, lambda callee: api.call(callee, args))
    broken = _sites(spec, api.old, lambda callee: f"{callee}({', '.join(args)})")
    return Plan(
        fixed={**common, **fixed},
        broken={**common, **broken},
        test_files={
            REPORT: TestFile("Tests of app.report.", ("from app.report import outcome, summary, table",)),
            STATS: TestFile("Tests of app.stats.", ("from app.stats import tally",)),
            CLI: TestFile("Tests of the command line.", ("from cli import main",)),
        },
        per_case=lambda i, case: [outcome_check(REPORT, i, case), cli_check(CLI, i, case)],
        aggregates=lambda cases: [*aggregate_checks(REPORT, cases), *aggregate_checks(STATS, cases, ("tally",))],
        scope_file=f"lib/{spec.module}.py",
        function=api.new,
    )


def build(spec: FunctionSpec, seed: int, cfg: SynthConfig) -> Draft | str:
    """The rename draft of one function, or a reject reason (see the module docstring)."""
    rng = random.Random(seed)
    changes = ["kwonly", "swap"]
    rng.shuffle(changes)
    new = new_name(spec, module_names(spec.sf.text) | PROJECT_TOPS, rng)
    done = refactor(spec, changes, new)
    if done is None:
        return "unsafe_rewrite"
    api, lib = done
    p = plan(spec, api, lib)
    labelled = label_project(p, spec, limits_for(cfg))
    if isinstance(labelled, str):
        return labelled
    if not labelled.broken and not labelled.broken_load_error:
        return "broken_passes"
    targets = tuple(sorted(labelled.tests))
    statement = (
        f"`lib/{spec.module}.py` was refactored and the public API of its function `{spec.name}` changed; "
        f"the rest of the project was not updated, and its tests fail. "
        f"`{REPORT}` and `{CLI}` no longer import "
        f"(`ImportError: cannot import name '{spec.name}' from 'lib.{spec.module}'`), and these tests fail:\n\n"
        f"{failing_list(list(labelled.broken))}\n"
        f"Run the tests with `{run_command(targets)}`.\n"
    )
    return Draft(
        family=FAMILY, source_path=spec.sf.rel, repo=spec.sf.repo, commit=spec.sf.commit,
        module=f"lib.{spec.module}", function=api.new, operators=(f"rename.{api.change}",), seed=seed,
        description=f"{api.describe()} in lib/{spec.module}.py; call sites in app/report.py, app/stats.py and "
        "cli.py still use the old API",
        broken=workspace(p.broken, labelled), fixed=workspace(p.fixed, labelled), targets=targets,
        scope_file=f"lib/{spec.module}.py", allow_load_errors=True, problem_statement=statement,
        extra={"old_name": api.old, "new_name": api.new, "change": api.change},
    )  # fmt: skip


def candidates(spec: FunctionSpec, cfg: SynthConfig) -> Iterator[Candidate]:
    """One candidate per function."""
    key = f"{spec.sf.rel}::{spec.name}::{FAMILY}::{spec.seed}"
    yield Candidate(FAMILY, key, "rename", lambda: build(spec, spec.seed, cfg))
