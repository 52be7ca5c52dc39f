"""The implement family: doctest inputs, type-aware amplification, sandboxed labelling and the drafts it builds."""

from __future__ import annotations

import ast
import dataclasses
import gzip
import json
import random
from pathlib import Path

import pytest

from automixer.config import SynthConfig
from synth.amplify import CallInput, amplify, caps_for, doctest_calls, fits, literal_source, mutate_value
from synth.discover import SourceFile, load_source
from synth.execute import Limits, execute
from synth.families.implement import FAMILIES, LABEL_CPU_S, amplified_test_file, build, label, stub_function
from synth.mutate import find_function

REPO = "TheAlgorithms/Python"
PATHS = ("sorts/bubble_sort.py", "strings/reverse_words.py", "maths/gcd_of_n_numbers.py", "maths/average_mean.py")
CFG = SynthConfig(timeout_s=10.0)

CHECK = """
import doctest, importlib, json, sys
module, function, test_module = sys.argv[1:4]
res = {}
tests = importlib.import_module(test_module)
for name in sorted(n for n in dir(tests) if n.startswith("test_")):
    try:
        getattr(tests, name)()
        res[name] = "pass"
    except AssertionError:
        res[name] = "fail"
    except BaseException as exc:
        res[name] = "error:" + type(exc).__name__
mod = importlib.import_module(module)
for name in sorted(n for n, v in vars(mod).items() if callable(v) and getattr(v, "__module__", "") == module):
    for t in doctest.DocTestFinder().find(getattr(mod, name), name, globs=dict(vars(mod))):
        failed = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS).run(t, out=lambda s: None).failed
        res["doctest:" + name] = "fail" if failed else "pass"
print("@@CHECK@@ " + json.dumps(res))
"""


@pytest.fixture(scope="module")
def corpus(shared_data: Path, tmp_path_factory) -> dict[str, SourceFile]:
    """A few real TheAlgorithms files, written to disk and loaded as SourceFiles."""
    root = tmp_path_factory.mktemp("thealgorithms")
    out = {}
    with gzip.open(shared_data / "code" / "code_corpus_python.jsonl.gz", "rt", encoding="utf-8") as f:
        for line in f:
            rec = json.loads(line)
            if rec["repo"] == REPO and rec["path"] in PATHS:
                path = root / rec["path"]
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(rec["text"], encoding="utf-8")
                sf = load_source(f"{REPO}/{rec['path']}", path)
                assert sf is not None, rec["path"]
                out[rec["path"]] = dataclasses.replace(sf, repo=rec["repo"], commit=rec["commit"])
    assert sorted(out) == sorted(PATHS)
    return out


def _seeds(sf: SourceFile, function: str) -> list[CallInput]:
    doc = ast.get_docstring(find_function(ast.parse(sf.text), function), clean=False)
    return doctest_calls([doc], sf.module, function)


def _check(files: dict[str, str], module: str, function: str, test_file: str) -> dict[str, str]:
    """Run the generated tests and the module's doctests in the sandbox; status per test."""
    res = execute(
        {**files, "_check.py": CHECK}, ["python", "-s", "_check.py", module, function, test_file[:-3]], Limits()
    )
    lines = [line for line in res.stdout.splitlines() if line.startswith("@@CHECK@@ ")]
    assert lines, res.stderr[-2000:]
    return json.loads(lines[-1].split(" ", 1)[1])


def test_doctest_calls_take_literal_calls_only() -> None:
    doc = """
    >>> fn(1, [2, 3])
    5
    >>> mod.fn(x={'a': (1, 2.5)}, y=None)
    0
    >>> xs = [4, -5]
    >>> fn(xs) == fn(*xs)
    True
    >>> fn(len([1]))
    1
    >>> other(7), fn(1, [2, 3])
    (7, 5)
    """
    calls = doctest_calls([doc], "mod", "fn")
    assert calls == [
        CallInput((1, [2, 3])),
        CallInput((), (("x", {"a": (1, 2.5)}), ("y", None))),
        CallInput(([4, -5],)),
    ]
    assert calls[1].call_source("fn") == "fn(x={'a': (1, 2.5)}, y=None)"


def test_literal_source_round_trips_and_sorts_sets() -> None:
    for value in [{3, 1, 2}, {"b": (1,), "a": [1.5, -0.0]}, (), set(), b"x\n", [True, None, 1 + 2j]]:
        assert ast.literal_eval(literal_source(value)) == value
    assert literal_source({"c", "a", "b"}) == "{'a', 'b', 'c'}"
    assert literal_source((1,)) == "(1,)"


def _types(value):
    """Type structure: scalars by type, homogeneous containers by the set of their element structures."""
    if isinstance(value, list | tuple | set):
        return type(value), frozenset(_types(v) for v in value)
    if isinstance(value, dict):
        return dict, frozenset(_types(k) for k in value), frozenset(_types(v) for v in value.values())
    return type(value)


def _within(new, old) -> bool:
    """True if `new` has `old`'s type and its elements have structures seen among `old`'s (empty: anything)."""
    if type(new) is not type(old):
        return False
    if isinstance(old, list | tuple | set) and old and len({type(v) for v in old}) == 1:
        return all(type(v) is type(next(iter(old))) for v in new)
    return True


def test_mutations_keep_types(corpus) -> None:
    rng = random.Random(7)
    checked = 0
    for path, sf in corpus.items():
        for fn in sf.functions:
            for call in _seeds(sf, fn):
                for _ in range(20):
                    for value in [*call.args, *(v for _, v in call.kwargs)]:
                        new = mutate_value(value, rng)
                        assert _within(new, value), (path, fn, value, new)
                        checked += 1
    assert checked > 500
    assert mutate_value(True, rng) is False
    assert all(type(mutate_value(2.5, rng)) is float for _ in range(50))
    assert all(isinstance(x, int) for _ in range(50) for x in mutate_value([[1, 2], [3]], rng, 0) for x in x)


def test_amplify_is_seeded_deduplicated_and_capped(corpus) -> None:
    sf = corpus["sorts/bubble_sort.py"]
    seeds = _seeds(sf, "bubble_sort_iterative")
    assert len(seeds) >= 5
    first = amplify(seeds, 3, 40)
    assert [c.key() for c in first] == [c.key() for c in amplify(seeds, 3, 40)]
    assert [c.key() for c in first] != [c.key() for c in amplify(seeds, 4, 40)]
    keys = [c.key() for c in first]
    assert len(keys) == 40 and len(set(keys)) == 40
    assert not set(keys) & {c.key() for c in seeds}
    caps = caps_for(seeds)
    assert all(fits(c, caps) and len(c.args) == 1 and isinstance(c.args[0], list) for c in first)
    assert amplify([CallInput(())], 0, 5) == []


def test_labels_match_the_reference(corpus) -> None:
    cases = [
        ("sorts/bubble_sort.py", "bubble_sort_iterative", lambda xs: sorted(xs)),
        ("strings/reverse_words.py", "reverse_words", lambda s: " ".join(reversed(s.split()))),
    ]
    for path, fn, oracle in cases:
        sf = corpus[path]
        calls = [c for c in amplify(_seeds(sf, fn), 1, 24) if _sortable(c)]
        labels = label(sf.module, sf.text, fn, calls, Limits())
        assert isinstance(labels, list) and len(labels) == len(calls)
        assert sum(t is not None for t in labels) >= len(calls) // 2
        for call, text in zip(calls, labels, strict=True):
            if text is not None:
                assert ast.literal_eval(text) == oracle(*call.args), (fn, call)


def _sortable(call: CallInput) -> bool:
    try:
        sorted(call.args[0])
    except TypeError:
        return False
    return True


def test_labeller_drops_rejected_slow_printing_and_non_literal_results() -> None:
    source = (
        "import random\n\n\ndef f(x):\n    if x < 0:\n        raise ValueError(x)\n    if x == 7:\n"
        "        while True:\n            pass\n    if x == 8:\n        print(x)\n    if x == 9:\n"
        "        return object()\n    if x == 10:\n        return random.choice([1, 2, 3, 4, 5])\n"
        "    if x == 11:\n        return sorted(random.sample([3, 1, 2], 3))\n    return [x, x * 0.5]\n"
    )
    calls = [CallInput((x,)) for x in (3, -1, 7, 8, 9, 10, 11, 0)]
    labels = label("m", source, "f", calls, Limits(timeout_s=10.0))
    assert labels == ["[3, 1.5]", None, None, None, None, None, "[1, 2, 3]", "[0, 0.0]"]
    assert LABEL_CPU_S < 1
    assert label("m", "raise ImportError('x')\n", "f", calls, Limits()) == "import_error"


def test_stub_keeps_signature_and_docstring_and_edits_only_the_body(corpus) -> None:
    sf = corpus["maths/gcd_of_n_numbers.py"]
    fn = "get_greatest_common_divisor"
    stub = stub_function(sf.text, fn)
    func = find_function(ast.parse(stub), fn)
    orig = find_function(ast.parse(sf.text), fn)
    assert ast.dump(func.args) == ast.dump(orig.args) and ast.get_docstring(func) == ast.get_docstring(orig)
    assert ast.unparse(func.body[-1]) == "raise NotImplementedError"
    old, new = sf.text.splitlines(), stub.splitlines()
    doc_end = orig.body[0].end_lineno
    assert old[:doc_end] == new[:doc_end] and old[orig.end_lineno :] == new[doc_end + 1 :]


def test_stub_fails_the_tests_and_the_reference_passes(corpus) -> None:
    sf = corpus["sorts/bubble_sort.py"]
    draft = build(sf, "bubble_sort_iterative", CFG, 0)
    assert not isinstance(draft, str), draft
    test_file = amplified_test_file(sf.module, "bubble_sort_iterative")
    assert draft.targets == ("bubble_sort.py", test_file) and draft.test_ids is None
    assert draft.family == "implement" and draft.repo == REPO and draft.operators == ("stub_body", "amplify")
    assert draft.broken[test_file] == draft.fixed[test_file]
    n = int(draft.extra["amplified_inputs"])
    assert 1 <= n <= 8 and int(draft.extra["doctest_inputs"]) >= 5
    fixed = _check(draft.fixed, sf.module, draft.function, test_file)
    broken = _check(draft.broken, sf.module, draft.function, test_file)
    amplified = [k for k in fixed if k.startswith("test_amplified_")]
    assert len(amplified) == n
    assert all(v == "pass" for v in fixed.values()), fixed
    assert all(broken[k] == "error:NotImplementedError" for k in amplified)
    assert broken["doctest:bubble_sort_iterative"] == "fail"
    assert broken["doctest:bubble_sort_recursive"] == "pass"
    assert "def bubble_sort_iterative(collection" in draft.problem_statement and test_file in draft.problem_statement


def test_floats_are_compared_with_a_tolerance(corpus) -> None:
    sf = corpus["maths/average_mean.py"]
    draft = build(sf, "mean", CFG, 0)
    assert not isinstance(draft, str), draft
    test_file = amplified_test_file(sf.module, "mean")
    assert "math.isclose" in draft.fixed[test_file] and "assert _close(mean(" in draft.fixed[test_file]
    assert set(_check(draft.fixed, sf.module, "mean", test_file).values()) == {"pass"}


def test_drafts_are_byte_identical_for_a_seed(corpus) -> None:
    files = [corpus[p] for p in PATHS]
    keys = [c.key for c in FAMILIES["implement"](files, CFG, 5)]
    assert keys == [c.key for c in FAMILIES["implement"](files, CFG, 5)]
    assert keys != [c.key for c in FAMILIES["implement"](files, CFG, 6)]
    assert len(keys) == len(set(keys)) == sum("." not in f for sf in files for f in sf.functions)
    sf = corpus["strings/reverse_words.py"]
    assert build(sf, "reverse_words", CFG, 5) == build(sf, "reverse_words", CFG, 5)
    assert build(sf, "reverse_words", CFG, 5) != build(sf, "reverse_words", CFG, 6)


def test_rejects_carry_their_reason(tmp_path) -> None:
    doc = '    """\n    >>> {call}\n    1\n    """\n'
    defs = {
        "f": ("f(object())", "return 1"),
        "g": ("g(2)", "print(x)\n    return x"),
        "h": ("h(2)", "return x"),
        "k": ("k()", "return 1"),
        "n": ("n(2)", "x += 1"),
        "p": ("p(2)", "return x"),
        "test_t": ("test_t(2)", "return x"),
    }
    text = "".join(
        f"def {name}({'' if name == 'k' else 'x'}):\n{doc.format(call=call)}    {body}\n\n\n"
        for name, (call, body) in defs.items()
    )
    helper = "def _helper():\n    return [p(1)]\n\n\nif True:\n    H = [h(3), _helper()]\n"
    (tmp_path / "m.py").write_text(text + helper, encoding="utf-8")
    sf = load_source("local/m.py", tmp_path / "m.py")
    assert sf is not None and sf.functions == tuple(sorted(defs))
    expected = {
        "f": "no_call_examples", "g": "unlabelled", "h": "called_at_import", "k": "no_amplified_inputs",
        "n": "returns_none", "p": "called_at_import", "test_t": "test_name",
    }  # fmt: skip
    assert {name: build(sf, name, CFG, 0) for name in defs} == expected


def test_end_to_end_with_the_workspace_runner(corpus) -> None:
    runner = Path(__file__).resolve().parents[1] / "synth" / "test_runner.py"
    if not runner.is_file():
        pytest.skip("synth/test_runner.py not written yet")
    sf = corpus["sorts/bubble_sort.py"]
    draft = build(sf, "bubble_sort_iterative", CFG, 0)
    assert not isinstance(draft, str), draft
    cmd = ["python", "-s", "-P", "run_tests.py", *draft.targets]
    results = {}
    for state in (draft.broken, draft.fixed):
        res = execute({**state, "run_tests.py": runner.read_text(encoding="utf-8")}, cmd, Limits())
        line = res.stdout.strip().splitlines()[-1]
        assert line.startswith("@@TEST_RESULTS@@ "), res.stderr[-2000:]
        results[id(state)] = json.loads(line.split(" ", 1)[1])["results"]
    broken, fixed = results[id(draft.broken)], results[id(draft.fixed)]
    assert set(fixed.values()) == {"pass"}
    failing = {t for t, s in broken.items() if s != "pass"}
    assert "bubble_sort.bubble_sort_iterative" in failing and broken["bubble_sort.bubble_sort_recursive"] == "pass"
    assert sum(t.startswith(draft.targets[1] + "::test_amplified_") for t in failing) == int(
        draft.extra["amplified_inputs"]
    )
