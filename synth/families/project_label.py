"""Label a generated project's checks by running the reference project in the sandbox, and write its test files.

A family describes its project as a `Plan`: the fixed and broken files (without tests), the test files' imports,
the checks (one test function each) per input and over all chosen inputs, and the function the verifier's
test-strength gate will mutate. `label_project` runs the labeller script (`project_labeller.py`) in the sandbox
twice, under two hash seeds:

1. every candidate input's checks on the reference and on a few probe mutants of the scope function (a sample
   drawn with another seed than the gate's); up to MAX_CASES inputs are chosen, greedily those that tell the most
   probe mutants apart, then those with results not yet covered;
2. the chosen inputs' checks and the aggregates on the reference and on the broken project.

Only checks whose reference value is literal data, equal in two evaluations of a run (under two `random`
seeds) and equal across both runs become tests. Nothing runs corpus code in this process.

Determinism: the same plan gives the same tests, except when a reference call runs close to the labeller's
CPU limits (CPU_S per check, BUDGET_S per variant), where a check may fit in one build and not in another.
"""

from __future__ import annotations

import ast
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from synth.execute import Limits, execute
from synth.families.project_spec import FunctionSpec, derived_seed
from synth.gates import gate_mutants
from synth.mutate import MutationError

if TYPE_CHECKING:
    from automixer.config import SynthConfig

LABEL_DIR = "_label"
MARK = "@@PROJECT_LABELS@@ "
CPU_S = 0.25
"""CPU seconds one check may take in the labeller (slower checks are dropped)."""
BUDGET_S = 3.0
"""CPU seconds of all checks of one project variant in one labeller run."""
MAX_REPR = 600
"""Longest expected value (its repr) kept in a test."""
HASH_SEEDS = (0, 1)
"""PYTHONHASHSEED of the two labeller runs."""
DEADLINE_SHARE = 0.5
"""Share of the sandbox timeout (as labeller CPU seconds) after which no further variant is started."""
PROBE_MUTANTS = 8
"""Mutants of the scope function run in the first labelling pass, to pick inputs that tell mutants apart."""
PROBE_BUDGET_S = 0.5
"""CPU seconds of all checks of one probe mutant."""
PROBE_CPU_S = 0.1
"""CPU seconds one check may take on a probe mutant."""
MIN_CASES = 2
"""Fewest inputs with labelled results a project needs."""
MAX_CASES = 10
"""Most inputs a project's tests use (chosen among the labelled ones, see `select`)."""

CLOSE_HELPER = '''

def close(got, want):
    """True if `got` equals `want`, floats compared with a relative tolerance of 1e-9."""
    if isinstance(want, float):
        return isinstance(got, (int, float)) and math.isclose(got, want, rel_tol=1e-9, abs_tol=1e-12)
    if isinstance(want, (list, tuple)):
        return type(got) is type(want) and len(got) == len(want) and all(map(close, got, want))
    if isinstance(want, dict):
        return type(got) is dict and got.keys() == want.keys() and all(close(got[k], want[k]) for k in want)
    return got == want
'''


@dataclass(frozen=True)
class Check:
    """One generated test: run `pre`, then assert that `expr` equals the reference's value."""

    file: str
    name: str
    expr: str
    pre: str = ""
    case: int | None = None
    """Index of the input it needs (None: an aggregate over all good inputs)."""

    @property
    def id(self) -> str:
        """Runner id of the test, e.g. `tests/test_report.py::test_outcome_0`."""
        return f"{self.file}::{self.name}"


@dataclass(frozen=True)
class TestFile:
    """Docstring and import lines of one generated test file."""

    doc: str
    imports: tuple[str, ...]


@dataclass(frozen=True)
class Plan:
    """What a family generates: files of both states (tests excluded) and the checks of its tests."""

    fixed: dict[str, str]
    broken: dict[str, str]
    test_files: dict[str, TestFile]
    per_case: Callable[[int, tuple[str, ...]], list[Check]]
    aggregates: Callable[[list[tuple[str, ...]]], list[Check]]
    scope_file: str
    """Fixed-state file holding the function the test-strength gate will mutate."""
    function: str
    """That function's qualname in `scope_file`."""


@dataclass(frozen=True)
class Labelled:
    """A labelled project: its test files, the expected values, and what the broken project does."""

    tests: dict[str, str]
    expected: dict[str, str]
    """Check id -> expected literal source, in test order."""
    checks: list[Check]
    broken: dict[str, dict[str, str]] = field(default_factory=dict)
    """Check id -> the broken project's result (`value`, `raises` or `bad`) for every check it does not pass."""
    broken_load_error: str | None = None


def labeller_source() -> str:
    """Source of the labeller script copied into the labelling workspace."""
    return Path(__file__).with_name("project_labeller.py").read_text(encoding="utf-8")


def _tops(files: dict[str, str]) -> list[str]:
    return sorted({name.split("/")[0].removesuffix(".py") for name in files})


def _variant(name: str, files: dict[str, str | None], budget_s: float, cpu_s: float) -> dict:
    """A labeller variant: the reference project with `files` written over it (None: removed)."""
    return {"name": name, "files": files, "budget_s": budget_s, "cpu_s": cpu_s}


def _run(plan: Plan, checks: list[Check], variants: list[dict], limits: Limits, hash_seed: int) -> dict | str:
    """One labeller run over the reference project and `variants` of it; its report or a reject reason."""
    files = {**plan.fixed, f"{LABEL_DIR}/labeller.py": labeller_source()}
    spec = {
        "variants": [_variant("ref", {}, BUDGET_S, CPU_S), *variants], "tops": _tops({**plan.fixed, **plan.broken}),
        "max_repr": MAX_REPR, "deadline_s": DEADLINE_SHARE * limits.timeout_s, "setup": "\n".join(i for t in plan.test_files.values() for i in t.imports),
        "items": [{"id": c.id, "pre": c.pre, "expr": c.expr} for c in checks],
    }  # fmt: skip
    files[f"{LABEL_DIR}/spec.json"] = json.dumps(spec, sort_keys=True)
    argv = ["python", "-s", "-P", f"{LABEL_DIR}/labeller.py", f"{LABEL_DIR}/spec.json"]
    result = execute(files, argv, limits, hash_seed=hash_seed)
    lines = [line for line in result.stdout.splitlines() if line.startswith(MARK)]
    try:
        report = json.loads(lines[-1][len(MARK) :]) if lines else None
    except json.JSONDecodeError:
        report = None
    if not isinstance(report, dict) or not isinstance(report.get("ref"), dict):
        return "label_crashed"
    if report["ref"]["load_error"]:
        return "import_error"
    return report


def _broken_overlay(plan: Plan) -> dict[str, str | None]:
    """The files that differ between the broken and the fixed project."""
    out: dict[str, str | None] = {k: v for k, v in plan.broken.items() if plan.fixed.get(k) != v}
    out.update({k: None for k in plan.fixed if k not in plan.broken})
    return out


def _probe_mutants(plan: Plan, seed: int) -> list[dict]:
    """Labeller variants with fresh mutants of the scope function (a different sample than the gate's)."""
    try:
        mutants = gate_mutants(plan.fixed[plan.scope_file], plan.function, PROBE_MUTANTS, seed)
    except (KeyError, SyntaxError, MutationError):
        return []
    return [_variant(f"m{k}", {plan.scope_file: m.source}, PROBE_BUDGET_S, PROBE_CPU_S) for k, m in enumerate(mutants)]


UNSTABLE_ERRORS = ("'RecursionError'", "'MemoryError'")
"""Results naming these errors depend on the stack depth or memory of the run, so they are not expected values."""


def _value(result: dict | None) -> str | None:
    """The labelled value (literal source) of a result, or None."""
    value = result.get("value") if isinstance(result, dict) else None
    return None if value is None or any(e in value for e in UNSTABLE_ERRORS) else value


def _has_float(value: object) -> bool:
    if isinstance(value, float):
        return True
    if isinstance(value, dict):
        return any(_has_float(v) for v in value.values())
    return isinstance(value, list | tuple) and any(_has_float(v) for v in value)


def render_test_file(spec: TestFile, checks: list[Check], expected: dict[str, str]) -> str:
    """A test file: docstring, imports, a float-tolerant `close` helper when needed, one function per check."""
    floats = any(_has_float(ast.literal_eval(expected[c.id])) for c in checks)
    text = f'"""{spec.doc}"""\n\n' + ("import math\n\n" if floats else "") + "\n".join(spec.imports) + "\n"
    text += CLOSE_HELPER if floats else ""
    for c in checks:
        want = expected[c.id]
        pre = "".join(f"    {line}\n" for line in c.pre.splitlines())
        test = f"close({c.expr}, {want})" if _has_float(ast.literal_eval(want)) else f"{c.expr} == {want}"
        text += f"\n\ndef {c.name}():\n{pre}    assert {test}\n"
    return text


def _stem(name: str) -> str:
    """A per-input test's name without its input number: `test_outcome_3` -> `test_outcome`."""
    return name.rsplit("_", 1)[0]


def _constant(checks: list[Check], expected: dict[str, str]) -> bool:
    """True if every kind of per-input check (`test_outcome_0`, `test_outcome_1`... ) has a single value."""
    kinds: dict[str, set[str]] = {}
    for c in checks:
        kinds.setdefault(_stem(c.name), set()).add(expected[c.id])
    return all(len(values) < 2 for values in kinds.values())


def select(values: list[str | None], kills: list[set[str]], n: int) -> list[int]:
    """Up to `n` labelled inputs, in order: greedily those killing the most probe mutants not yet killed,
    then those whose result is not yet covered, then the rest."""
    ok = [i for i, v in enumerate(values) if v is not None]
    chosen: list[int] = []
    killed: set[str] = set()
    while len(chosen) < n:
        best = max(ok, key=lambda i: (len(kills[i] - killed), -i), default=None)
        if best is None or not kills[best] - killed:
            break
        chosen.append(best)
        killed |= kills[best]
        ok.remove(best)
    seen = {values[i] for i in chosen}
    for i in list(ok):
        if len(chosen) < n and values[i] not in seen:
            chosen.append(i)
            seen.add(values[i])
            ok.remove(i)
    chosen += ok[: n - len(chosen)]
    return sorted(chosen)


def _first_pass(plan: Plan, spec: FunctionSpec, limits: Limits) -> tuple[list[tuple[str, ...]], dict[str, str]] | str:
    """Label every input's checks once (on the reference and on probe mutants); choose up to MAX_CASES inputs;
    their labels under renumbered check ids.

    A per-input check only some inputs have (e.g. the first few) may lack a first-pass label after renumbering;
    like an aggregate, it is then labelled by the second pass alone."""
    per_input = [plan.per_case(i, case) for i, case in enumerate(spec.cases)]
    probes = _probe_mutants(plan, derived_seed("probe", str(spec.seed)))
    if not probes:
        return "no_gate_mutants"
    report = _run(plan, [c for cs in per_input for c in cs], probes, limits, HASH_SEEDS[0])
    if isinstance(report, str):
        return report
    ref = report["ref"]["results"]
    labels = {k: _value(v) for k, v in ref.items()}
    values = [labels.get(cs[0].id) if all(labels.get(c.id) for c in cs) else None for cs in per_input]
    kills = [
        {p["name"] for p in probes if any(_killed(ref.get(c.id), report.get(p["name"]), c.id) for c in cs)}
        for cs in per_input
    ]
    chosen = select(values, kills, MAX_CASES)
    cases = [spec.cases[i] for i in chosen]
    renamed = {}
    for j, i in enumerate(chosen):
        old = {_stem(c.name): labels[c.id] for c in per_input[i]}
        renamed.update({c.id: old[_stem(c.name)] for c in plan.per_case(j, spec.cases[i]) if _stem(c.name) in old})
    return cases, renamed


def _killed(ref: dict | None, probe: dict | None, check_id: str) -> bool:
    """True if a probe mutant's result for a check differs from the reference's (not merely skipped)."""
    if not isinstance(probe, dict) or probe.get("load_error") or probe.get("skipped"):
        return False
    got = probe.get("results", {}).get(check_id)
    return isinstance(got, dict) and got.get("bad") != "skipped" and got != ref


def label_project(plan: Plan, spec: FunctionSpec, limits: Limits) -> Labelled | str:
    """Label the plan's checks on the reference project and write the test files; or a reject reason.

    Reasons: `no_gate_mutants` (the scope function has no mutation site, so the verifier's test-strength gate
    could not run), `import_error` (the reference project does not import), `label_crashed` (no labeller report),
    `unlabelled` (fewer than MIN_CASES inputs with stable literal results), `constant_results` (every input
    gives the same result, so the tests could not tell implementations apart)."""
    first = _first_pass(plan, spec, limits)
    if isinstance(first, str):
        return first
    cases, labels0 = first
    if len(cases) < MIN_CASES:
        return "unlabelled"
    per_case = [c for j, case in enumerate(cases) for c in plan.per_case(j, case)]
    checks = per_case + plan.aggregates(cases)
    report = _run(plan, checks, [_variant("broken", _broken_overlay(plan), BUDGET_S, CPU_S)], limits, HASH_SEEDS[1])
    if isinstance(report, str):
        return report
    labels1 = {k: _value(v) for k, v in report["ref"]["results"].items()}
    agree = [c for c in per_case if labels1.get(c.id) and labels0.get(c.id, labels1[c.id]) == labels1[c.id]]
    kept = agree + ([c for c in checks if c.case is None and labels1.get(c.id)] if agree == per_case else [])
    expected = {c.id: labels1[c.id] for c in kept}
    if len({c.case for c in agree}) < MIN_CASES:
        return "unlabelled"
    if _constant(agree, expected):
        return "constant_results"
    tests = {
        f: render_test_file(t, [c for c in kept if c.file == f], expected)
        for f, t in plan.test_files.items()
        if any(c.file == f for c in kept)
    }
    bad = report.get("broken", {})
    if bad.get("skipped"):
        return "label_crashed"
    results = bad.get("results", {})
    differs = {c.id: results.get(c.id, {"bad": "missing"}) for c in kept if _value(results.get(c.id)) != expected[c.id]}
    return Labelled(tests, expected, kept, differs, bad.get("load_error"))


def limits_for(cfg: SynthConfig) -> Limits:
    """Sandbox limits of a labeller run under a synth config."""
    return Limits(timeout_s=cfg.timeout_s, memory_mb=cfg.memory_mb)


def workspace(files: dict[str, str], labelled: Labelled) -> dict[str, str]:
    """A project state with its generated test files, keys sorted."""
    merged = {**files, **labelled.tests}
    return {k: merged[k] for k in sorted(merged)}
