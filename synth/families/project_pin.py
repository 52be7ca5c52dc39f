"""The version_pin family: app code written against release 1 of a vendored package while `pins.txt` says 2.

Project: `vendor/<pkg>_v1/<mod>.py` (the real module) and `vendor/<pkg>_v2/<mod>.py` (release 2: the same code
with a breaking API change, described in `vendor/<pkg>_v2/CHANGES.md`), a loader `<pkg>/__init__.py` that
imports the release pinned in `pins.txt` (`<pkg>==2`), call sites `app/report.py` (`import <pkg>`) and `cli.py`
(`from <pkg> import ...`), and their tests. Broken: the call sites use the release-1 API. Gold patch: port them
to release 2. Pinning back to `<pkg>==1` is an equally valid fix (recorded as `alt_fix`).

API changes (seeded, the first that fits the function): `rename` (new name), `kwonly` (parameters after the
first become keyword-only), `swap` (first two parameters swapped), `result_dict` (returns {"value": result}; the
real code moves to `_<name>_impl`, which is then the task's function).

Family-specific reject reasons of `build` (besides those of `label_project`):
- `unsafe_rewrite`: no API change can be carried through the module safely.
- `broken_passes`: the broken project passes every kept check.
"""

from __future__ import annotations

import ast
import random
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING

from synth.draft import Candidate, Draft
from synth.families.project_label import Labelled, Plan, TestFile, label_project, limits_for, workspace
from synth.families.project_rename import def_params, keyword_from, new_name
from synth.families.project_rewrite import ApiChange, RewriteError, rewrite_module
from synth.families.project_spec import APP_NAMES, PROJECT_TOPS, FunctionSpec, module_names
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
)
from synth.mutate import source_lines

if TYPE_CHECKING:
    from automixer.config import SynthConfig

FAMILY = "version_pin"
VARIANTS = ("rename", "kwonly", "swap", "result_dict")
MAX_TRIES = 2
"""Variants labelled per function before giving up with `broken_passes`."""
REPORT, CLI = "tests/test_report.py", "tests/test_cli.py"

LOADER = '''"""{pkg}: imports the vendored release pinned in pins.txt (`{pkg}==N` loads vendor/{pkg}_vN/)."""

from __future__ import annotations

import importlib
from pathlib import Path

PINS = Path(__file__).resolve().parent.parent / "pins.txt"


def pinned_major() -> str:
    """The major version of {pkg} pinned in pins.txt."""
    for line in PINS.read_text(encoding="utf-8").splitlines():
        name, sep, version = line.split("#")[0].strip().partition("==")
        if sep and name.strip() == "{pkg}":
            return version.strip().split(".")[0]
    raise ImportError("{pkg} is not pinned in pins.txt")


__version__ = pinned_major()
_release = importlib.import_module(f"vendor.{pkg}_v{{__version__}}.{mod}")
globals().update({{k: v for k, v in vars(_release).items() if not k.startswith("_")}})
'''

PINS = "# Pinned releases of the vendored packages (vendor/<name>_v<major>/).\n{pkg}=={major}\n"

CHANGES = {
    "rename": "`{old}` was renamed to `{new}`; its parameters are unchanged.",
    "kwonly": "`{old}` now takes {kw} as keyword-only: `{sig}`.",
    "swap": "the first two parameters of `{old}` traded places: `{sig}`.",
    "result_dict": '`{old}` now returns a dict `{{"value": result}}` instead of the bare result.',
}


def package_name(spec: FunctionSpec) -> str:
    """The vendored package's name: the module's name unless it clashes with the stdlib or the project."""
    mod = spec.module
    clash = mod in sys.stdlib_module_names or mod in PROJECT_TOPS or mod in APP_NAMES or mod in spec.local
    return f"{mod}_pkg" if clash else mod


def release_two(spec: FunctionSpec, variant: str, rng: random.Random) -> tuple[ApiChange, str, str] | None:
    """(API change, release-2 module, name of the real function in it), or None if the variant does not fit."""
    params = def_params(spec.sf.text, spec.name)
    taken = module_names(spec.sf.text) | PROJECT_TOPS
    if variant == "result_dict":
        impl = f"_{spec.name}_impl"
        if impl in taken:
            return None
        try:
            text = rewrite_module(spec.sf.text, ApiChange(spec.name, impl, "none", params))
        except RewriteError:
            return None
        func = [n for n in ast.parse(spec.sf.text).body if isinstance(n, ast.FunctionDef) and n.name == spec.name]
        sig = ast.unparse(func[-1].args)
        passed = ", ".join([*params, *(f"{a.arg}={a.arg}" for a in func[-1].args.kwonlyargs)])
        wrapper = (
            f"\n\ndef {spec.name}({sig}) -> dict:\n"
            f'    """`{spec.name}` of release 2: the result comes wrapped as {{"value": result}}."""\n'
            f'    return {{"value": {impl}({passed})}}\n'
        )
        end = next(n.end_lineno for n in ast.parse(text).body if isinstance(n, ast.FunctionDef) and n.name == impl)
        lines = source_lines(text)
        v2 = "".join(lines[:end]).rstrip("\n") + "\n" + wrapper + "".join(lines[end:])
        try:
            ast.parse(v2)
        except SyntaxError:
            return None
        return ApiChange(spec.name, spec.name, "none", params), v2, impl
    new = new_name(spec, taken, rng) if variant == "rename" else spec.name
    api = ApiChange(spec.name, new, "none" if variant == "rename" else variant, params, keyword_from(spec))
    try:
        return api, rewrite_module(spec.sf.text, api), new
    except RewriteError:
        return None


def _sites(spec: FunctionSpec, pkg: str, name: str, call) -> dict[str, str]:
    """The two call-site files, written against `<pkg>.<name>` called as `call(callee)`."""
    callee = local_callee(spec, name)
    return {
        "app/report.py": report_module(spec, [f"import {pkg}"], call(f"{pkg}.{name}"), shown=name),
        "cli.py": cli_module(spec, [import_line(pkg, name, callee)], call(callee), shown=name),
    }


def plan(spec: FunctionSpec, pkg: str, variant: str, made: tuple[ApiChange, str, str]) -> Plan:
    """Fixed: pinned to 2, call sites ported; broken: pinned to 2, call sites still on the release-1 API."""
    api, v2, function = made
    args = list(spec.local)
    old_call = lambda callee: f"{callee}({', '.join(args)})"  # noqa: E731
    new_call = (lambda c: old_call(c) + '["value"]') if variant == "result_dict" else (lambda c: api.call(c, args))
    kw = ", ".join(f"`{p}`" for p in api.params[api.first_keyword :])
    changes = CHANGES[variant].format(old=api.old, new=api.new, kw=kw, sig=f"{api.new}({', '.join(api.new_params())})")
    common = {
        "pins.txt": PINS.format(pkg=pkg, major=2),
        f"{pkg}/__init__.py": LOADER.format(pkg=pkg, mod=spec.module),
        "vendor/__init__.py": package_init("Vendored third-party packages, one folder per major release."),
        f"vendor/{pkg}_v1/__init__.py": package_init(f"{pkg} 1.4.2 (vendored)."),
        f"vendor/{pkg}_v1/{spec.module}.py": spec.sf.text,
        f"vendor/{pkg}_v2/__init__.py": package_init(f"{pkg} 2.0.0 (vendored)."),
        f"vendor/{pkg}_v2/{spec.module}.py": v2,
        f"vendor/{pkg}_v2/CHANGES.md": f"# {pkg} 2.0.0\n\nBreaking changes:\n\n- {changes}\n",
        "app/__init__.py": package_init("The application."),
    }
    return Plan(
        fixed={**common, **_sites(spec, pkg, api.new, new_call)},
        broken={**common, **_sites(spec, pkg, api.old, old_call)},
        test_files={
            REPORT: TestFile("Tests of app.report.", ("from app.report import outcome, summary, table",)),
            CLI: TestFile("Tests of the command line.", ("from cli import main",)),
        },
        per_case=lambda i, case: [outcome_check(REPORT, i, case), cli_check(CLI, i, case)],
        aggregates=lambda cases: aggregate_checks(REPORT, cases),
        scope_file=f"vendor/{pkg}_v2/{spec.module}.py",
        function=function,
    )


def build(spec: FunctionSpec, seed: int, cfg: SynthConfig) -> Draft | str:
    """The version_pin draft of one function, or a reject reason (see the module docstring).

    Variants are tried in a seeded order; one whose broken project still passes (e.g. swapped parameters of a
    symmetric function) gives way to the next, up to MAX_TRIES labelled variants."""
    rng = random.Random(seed)
    variants = list(VARIANTS)
    rng.shuffle(variants)
    reason, tries = "unsafe_rewrite", 0
    for variant in variants:
        made = release_two(spec, variant, rng)
        if made is None:
            continue
        pkg = package_name(spec)
        p = plan(spec, pkg, variant, made)
        labelled = label_project(p, spec, limits_for(cfg))
        if isinstance(labelled, str):
            return labelled
        if labelled.broken or labelled.broken_load_error:
            return _draft(spec, seed, variant, made[2], p, labelled, pkg)
        reason, tries = "broken_passes", tries + 1
        if tries >= MAX_TRIES:
            break
    return reason


def _draft(spec: FunctionSpec, seed: int, variant: str, function: str, p: Plan, labelled: Labelled, pkg: str) -> Draft:
    targets = tuple(sorted(labelled.tests))
    changes = p.fixed[f"vendor/{pkg}_v2/CHANGES.md"].rsplit("- ", 1)[1].strip()
    statement = (
        f"`pins.txt` was bumped to `{pkg}==2` (the vendored release in `vendor/{pkg}_v2/`), and since then the "
        f"project's tests fail:\n\n{failing_list(sorted(labelled.broken))}\n"
        f"Run the tests with `{run_command(targets)}`.\n"
    )
    return Draft(
        family=FAMILY, source_path=spec.sf.rel, repo=spec.sf.repo, commit=spec.sf.commit,
        module=f"vendor.{pkg}_v2.{spec.module}", function=function, operators=(f"version_pin.{variant}",),
        seed=seed, description=f"{pkg} 2.0 ({variant}): {changes}; app/report.py and cli.py use release 1",
        broken=workspace(p.broken, labelled), fixed=workspace(p.fixed, labelled), targets=targets,
        scope_file=p.scope_file, allow_load_errors=True, problem_statement=statement,
        extra={"pin": "2", "package": pkg, "variant": variant, "alt_fix": f"pins.txt: {pkg}==1"},
    )  # fmt: skip


def candidates(spec: FunctionSpec, cfg: SynthConfig) -> Iterator[Candidate]:
    """One candidate per function."""
    key = f"{spec.sf.rel}::{spec.name}::{FAMILY}::{spec.seed}"
    yield Candidate(FAMILY, key, "version_pin", lambda: build(spec, spec.seed, cfg))
