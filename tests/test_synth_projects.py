"""Project task families (cross_module, rename, version_pin, nondeterministic) on real TheAlgorithms functions.

Every workspace runs in the real sandbox: the tests' own tiny runner (below) executes the generated test files
in a chosen order; one test also verifies a draft end to end with the real Verifier and `reward`.
"""

from __future__ import annotations

import ast
import dataclasses
import gzip
import json
import random

import pytest

from automixer.config import SynthConfig
from synth.discover import SourceFile, load_source
from synth.draft import Draft
from synth.execute import Limits, execute
from synth.families import project_nondet, project_pin
from synth.families.project_rewrite import ApiChange, RewriteError, rewrite_module
from synth.families.project_spec import usable_functions
from synth.families.projects import FAMILIES

PATHS = (
    "hashes/fletcher16.py",
    "conversions/temperature_conversions.py",
    "bit_manipulation/single_bit_manipulation_operations.py",
    "strings/barcode_validator.py",
)
CFG = SynthConfig(timeout_s=20.0)
MARK = "@@MINI@@ "
MINI_RUNNER = """
import importlib.util, json, os, sys
sys.path.insert(0, os.getcwd())
modules, out = {}, {}
for test_id in json.loads(sys.argv[1]):
    path, name = test_id.split("::")
    if path not in modules:
        spec = importlib.util.spec_from_file_location(path[:-3].replace("/", "."), path)
        module = importlib.util.module_from_spec(spec)
        try:
            spec.loader.exec_module(module)
            modules[path] = module
        except BaseException:
            modules[path] = None
    if modules[path] is None:
        out[test_id] = "error"
        continue
    try:
        getattr(modules[path], name)()
        out[test_id] = "pass"
    except AssertionError:
        out[test_id] = "fail"
    except BaseException:
        out[test_id] = "error"
print("@@MINI@@ " + json.dumps(out))
"""


@pytest.fixture(scope="module")
def files(shared_data, tmp_path_factory) -> list[SourceFile]:
    """A few real TheAlgorithms modules from the shared corpus, as SourceFiles."""
    root = tmp_path_factory.mktemp("thealgorithms")
    out = []
    with gzip.open(shared_data / "code" / "code_corpus_python.jsonl.gz", "rt", encoding="utf-8") as f:
        for line in f:
            rec = json.loads(line)
            if rec["repo"] == "TheAlgorithms/Python" and rec["path"] in PATHS:
                path = root / rec["path"]
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(rec["text"], encoding="utf-8")
                sf = load_source(f"TheAlgorithms/Python/{rec['path']}", path)
                assert sf is not None, rec["path"]
                out.append(dataclasses.replace(sf, repo=rec["repo"], commit=rec["commit"]))
    assert len(out) == len(PATHS)
    return out


def first_drafts(files: list[SourceFile], family: str, n: int = 1, seed: int = 0, tries: int = 8) -> list[Draft]:
    """The first `n` drafts the family builds from the files (at most `tries` candidates built)."""
    drafts = []
    for k, cand in enumerate(FAMILIES[family](files, CFG, seed)):
        if k >= tries or len(drafts) >= n:
            break
        built = cand.build()
        if isinstance(built, Draft):
            drafts.append(built)
    assert len(drafts) == n, f"{family}: fewer than {n} drafts in {tries} candidates"
    return drafts


def ids_of(draft: Draft) -> list[str]:
    """Runner ids of every test function in the draft's target files (parsed, not run)."""
    ids = []
    for target in draft.targets:
        tree = ast.parse(draft.fixed[target])
        ids += [
            f"{target}::{n.name}" for n in tree.body if isinstance(n, ast.FunctionDef) and n.name.startswith("test_")
        ]
    return ids


def run(files: dict[str, str], ids: list[str]) -> dict[str, str]:
    """Statuses of the tests `ids`, run in this order in one sandboxed interpreter."""
    res = execute({**files, "_mini.py": MINI_RUNNER}, ["python", "-s", "-P", "_mini.py", json.dumps(ids)], Limits(30.0))
    lines = [x for x in res.stdout.splitlines() if x.startswith(MARK)]
    assert lines, res.stderr[-2000:]
    return json.loads(lines[-1][len(MARK) :])


def changed(draft: Draft) -> set[str]:
    """Files the gold patch (broken -> fixed) touches."""
    return {k for k in draft.fixed.keys() | draft.broken.keys() if draft.fixed.get(k) != draft.broken.get(k)}


def check_common(draft: Draft) -> tuple[dict[str, str], dict[str, str]]:
    """Shared invariants; returns the statuses of the fixed and the broken state (sorted order)."""
    ids = ids_of(draft)
    assert ids and all(t.startswith("tests/test_") for t in draft.targets)
    assert all(draft.fixed[t] == draft.broken[t] for t in draft.targets), "the tests are the same in both states"
    assert draft.scope_file in draft.fixed and draft.problem_statement
    assert any(
        isinstance(n, ast.FunctionDef) and n.name == draft.function
        for n in ast.parse(draft.fixed[draft.scope_file]).body
    )
    fixed, broken = run(draft.fixed, ids), run(draft.broken, ids)
    assert set(fixed.values()) == {"pass"}, fixed
    assert any(s != "pass" for s in broken.values()), broken
    return fixed, broken


def test_cross_module_bug_in_lib_surfaces_in_app_tests(files):
    for draft in first_drafts(files, "cross_module", n=2):
        _, broken = check_common(draft)
        assert draft.targets == ("tests/test_report.py",)
        assert changed(draft) == {draft.scope_file} and draft.scope_file.startswith("lib/")
        assert draft.operators[0] == "cross_module.report" and draft.module == f"lib.{draft.scope_file[4:-3]}"
        assert "lib/" not in draft.problem_statement  # the statement shows the symptom, not where the bug is
        assert any(s == "fail" for s in broken.values())


def test_rename_is_carried_through_every_call_site(files):
    draft = first_drafts(files, "rename")[0]
    _, broken = check_common(draft)
    assert changed(draft) == {"app/report.py", "app/stats.py", "cli.py"}  # lib and tests already follow the API
    assert draft.allow_load_errors and draft.function == draft.extra["new_name"] != draft.extra["old_name"]
    assert f"def {draft.extra['new_name']}(" in draft.fixed[draft.scope_file]
    assert f"def {draft.extra['old_name']}(" not in draft.fixed[draft.scope_file]
    assert {s for t, s in broken.items() if t.startswith(("tests/test_report.py", "tests/test_cli.py"))} == {"error"}


def test_version_pin_port_or_pin_back_both_fix_it(files):
    draft = first_drafts(files, "version_pin")[0]
    check_common(draft)
    pkg = draft.extra["package"]
    assert draft.extra["pin"] == "2" and f"{pkg}==2" in draft.broken["pins.txt"]
    assert changed(draft) == {"app/report.py", "cli.py"}
    assert draft.scope_file == f"vendor/{pkg}_v2/{draft.scope_file.split('/')[-1]}"
    pinned_back = {**draft.broken, "pins.txt": draft.broken["pins.txt"].replace(f"{pkg}==2", f"{pkg}==1")}
    assert set(run(pinned_back, ids_of(draft)).values()) == {"pass"}


def test_version_pin_both_fixes_get_reward_one(files):
    verify = pytest.importorskip("synth.verify")
    gates = pytest.importorskip("synth.gates")
    verifier = verify.Verifier(verify.Limits(timeout_s=20.0, per_test_s=2.0), gates.GateConfig())
    for draft in first_drafts(files, "version_pin", n=2, tries=10):
        reason, task = verifier.verify(draft)
        if task is None:
            continue
        pkg = draft.extra["package"]
        pins = task.files["pins.txt"].replace(f"{pkg}==2", f"{pkg}==1")
        assert verify.reward(task, {k: draft.fixed[k] for k in changed(draft)}) == 1
        assert verify.reward(task, {"pins.txt": pins}) == 1
        assert verify.reward(task, {}) == 0
        return
    pytest.fail("no version_pin draft verified")


def spec_of(files: list[SourceFile], name: str):
    """The spec of the usable function `name`."""
    return next(s for s in usable_functions(files, 0, "nondeterministic") if s.name == name)


@pytest.mark.parametrize("variant", ["clock_date", "clock_time"])
def test_time_dependent_test_fails_until_the_clock_is_used(files, variant):
    draft = project_nondet.build(spec_of(files, "kelvin_to_rankine"), variant, 7, CFG)
    assert isinstance(draft, Draft), draft
    fixed, broken = check_common(draft)
    assert changed(draft) == {"app/report.py"}
    assert {t for t, s in broken.items() if s != "pass"} == {t for t in broken if "::test_stamped_" in t}
    assert "clock." not in draft.broken["app/report.py"] and "clock." in draft.fixed["app/report.py"]


@pytest.mark.parametrize("variant", ["default_arg", "module_cache"])
def test_order_dependent_tests_really_depend_on_order(files, variant):
    draft = project_nondet.build(spec_of(files, "fletcher16"), variant, 7, CFG)
    assert isinstance(draft, Draft), draft
    check_common(draft)
    helper = draft.extra["helper"]
    ids = ids_of(draft)
    order_dependent = draft.extra["order_dependent"].split(",")
    assert len(order_dependent) >= 2 and set(order_dependent) <= set(ids)
    forward, backward = run(draft.broken, ids), run(draft.broken, ids[::-1])
    stable = f"tests/test_report.py::test_{helper}_twice"
    assert forward[stable] == backward[stable] == "fail"  # fails whatever the order
    assert {t: forward[t] for t in order_dependent} != {t: backward[t] for t in order_dependent}
    assert set(run(draft.fixed, ids[::-1]).values()) == {"pass"}  # the fix is order-independent


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_drafts_are_byte_identical_for_a_seed(files, family):
    cands = [c for _, c in zip(range(3), FAMILIES[family](files, CFG, 0), strict=False)]
    again = [c for _, c in zip(range(3), FAMILIES[family](files, CFG, 0), strict=False)]
    other = [c.key for _, c in zip(range(3), FAMILIES[family](files, CFG, 1), strict=False)]
    assert [c.key for c in cands] == [c.key for c in again] and len(cands) == 3
    assert other != [c.key for c in cands]
    first, second = cands[0].build(), again[0].build()
    assert first == second and repr(first) == repr(second)


def test_version_pin_variants_are_coherent(files):
    spec = next(s for s in usable_functions(files, 0, "version_pin") if s.name == "set_bit")
    for variant in project_pin.VARIANTS:
        made = project_pin.release_two(spec, variant, random.Random(0))
        assert made is not None, variant
        api, v2, function = made
        tree = ast.parse(v2)
        assert any(isinstance(n, ast.FunctionDef) and n.name == function for n in tree.body)
        assert any(isinstance(n, ast.FunctionDef) and n.name == api.new for n in tree.body)


GCD = '''"""Greatest common divisor.

>>> gcd(12, 18)
6
"""


def gcd(a: int, b: int = 0) -> int:
    """gcd of a and b.

    >>> gcd(12,
    ...     18)
    6
    """
    return a if b == 0 else gcd(b, a % b)


def gcd3(a, b, c):
    return gcd(gcd(a, b), c)


def lcm(a, b):
    return a * b // gcd(a, b=b)  # keyword call
'''


def test_rewrite_carries_the_api_change_through_the_module():
    kw = rewrite_module(GCD, ApiChange("gcd", "compute_gcd", "kwonly", ("a", "b")))
    assert "def compute_gcd(a: int, *, b: int = 0) -> int:" in kw
    assert "compute_gcd(b, b=a % b)" in kw and "compute_gcd(compute_gcd(a, b=b), b=c)" in kw
    assert ">>> compute_gcd(12, b=18)" in kw and "a * b // compute_gcd(a, b=b)" in kw
    assert "gcd(" not in kw.replace("compute_gcd(", "")
    old, new = {}, {}
    exec(compile(GCD, "gcd", "exec"), old)  # our own fixture text, not corpus code
    exec(compile(kw, "gcd_kw", "exec"), new)
    assert new["compute_gcd"](12, b=18) == old["gcd"](12, 18) == 6
    assert new["gcd3"](12, 18, 4) == old["gcd3"](12, 18, 4) == 2 and new["lcm"](4, 6) == 12
    with pytest.raises(RewriteError):  # a required and a defaulted parameter cannot trade places
        rewrite_module(GCD, ApiChange("gcd", "gcd", "swap", ("a", "b")))
    swap = rewrite_module(
        "def sub(a, b):\n    return a - b\n\n\nX = sub(5, sub(3, 1))\n", ApiChange("sub", "minus", "swap", ("a", "b"))
    )
    assert swap == "def minus(b, a):\n    return a - b\n\n\nX = minus(minus(1, 3), 5)\n"
    namespace: dict = {}
    exec(compile(kw, "gcd_kw", "exec"), namespace)  # our own fixture text, not corpus code
    assert namespace["compute_gcd"](12, b=18) == 6 and namespace["lcm"](4, 6) == 12
    with pytest.raises(RewriteError):
        rewrite_module(GCD + "\nFUNCS = [gcd]\n", ApiChange("gcd", "compute_gcd", "kwonly", ("a", "b")))
    assert "FUNCS = [compute_gcd]" in rewrite_module(
        GCD + "\nFUNCS = [gcd]\n", ApiChange("gcd", "compute_gcd", "none", ("a", "b"))
    )
