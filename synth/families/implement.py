"""The implement family: a real function reduced to signature + docstring, with EvalPlus-style amplified tests.

The broken workspace has the function's body replaced by `raise NotImplementedError` (its docstring and doctest
examples stay, like HumanEval); the fixed one is the original module. Extra tests come from type-aware mutations of
the literal inputs of its doctest examples, labelled by running the reference in the sandbox.

Family-specific reject reasons returned by `build`:
- `test_name`: the module or function name starts with `test`, so the test runner would take it for a test.
- `called_at_import`: module-level code uses the function, so the stubbed module would not import.
- `unstubbable`: the body cannot be replaced by the docstring + `raise` as a clean splice.
- `no_call_examples`: no doctest example calls the function with literal arguments.
- `no_amplified_inputs`: mutation produced no new input within the size limits.
- `import_error`: the reference module failed to import in the labeller.
- `label_crashed`: the labeller run ended without its results line (crash, timeout, kill).
- `unlabelled`: the reference gave no stable literal result for any amplified input (it raised, timed out, printed,
  returned non-literal data, used the global `random` state, or differed between calls or hash seeds).
- `returns_none`: every kept expected value is None (the tests would not tell implementations apart).
"""

from __future__ import annotations

import ast
import copy
import json
import random
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from automixer.io import stable_hash
from synth.amplify import CallInput, amplify, doctest_calls, is_plain, literal_source
from synth.draft import Candidate, Draft
from synth.execute import Limits, execute
from synth.mutate import MutationError, find_function, source_lines
from synth.render import function_source

if TYPE_CHECKING:
    from automixer.config import SynthConfig
    from synth.discover import SourceFile

FAMILY = "implement"
MAX_KEPT = 8
"""Amplified tests kept per task."""
MAX_CANDIDATES = 32
"""Amplified inputs generated and labelled per function."""
LABEL_CPU_S = 0.25
"""CPU seconds one reference call may take while labelling (slower inputs are dropped)."""
LABEL_BUDGET_S = 3.0
"""CPU seconds of all labelling calls of one run (inputs past it are not labelled)."""
MAX_REPR = 600
"""Longest expected value (its repr) kept in a test."""
HASH_SEEDS = (0, 1)
"""The labeller runs once per hash seed; only results equal under all of them are kept."""
LABELLER_FILE = "_automixer_label.py"
INPUTS_FILE = "_automixer_inputs.txt"
MARK = "@@LABELS@@ "

LABELLER = r'''"""Label inputs by calling the reference function once per input (written by automixer synth; stdlib only)."""
import ast
import contextlib
import importlib
import io
import json
import os
import random
import signal
import sys
import time


class _Timeout(BaseException):
    pass


def _on_prof(signum, frame):
    raise _Timeout


def _call(fn, line, limit):
    args, kwargs = ast.literal_eval(line)
    out = io.StringIO()
    signal.setitimer(signal.ITIMER_PROF, limit)
    try:
        with contextlib.redirect_stdout(out):
            result = fn(*args, **kwargs)
    finally:
        signal.setitimer(signal.ITIMER_PROF, 0)
    return result, out.getvalue()


def _label(fn, line, limit, max_repr):
    state = random.getstate()
    try:
        first, printed = _call(fn, line, limit)
        others = [_call(fn, line, limit)[0]]
        if random.getstate() != state:  # it drew from the global random state: the result must not depend on it
            for k in range(4):
                random.seed(k)
                others.append(_call(fn, line, limit)[0])
    except _Timeout:
        return ["timeout", None]
    except BaseException:
        return ["raised", None]
    try:
        text = repr(first)
        if printed:
            return ["printed", None]
        if len(text) > max_repr:
            return ["too_long", None]
        if ast.literal_eval(text) != first:
            return ["unrepresentable", None]
        if any(repr(other) != text for other in others):
            return ["nondeterministic", None]
    except BaseException:
        return ["unrepresentable", None]
    return ["ok", text]


def main():
    limit, budget, max_repr = float(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3])
    module, function = sys.argv[4], sys.argv[5]
    with open(sys.argv[6], encoding="utf-8") as f:
        lines = f.read().splitlines()
    signal.signal(signal.SIGPROF, _on_prof)
    sys.path.insert(0, os.getcwd())
    report = {"error": None, "labels": []}
    try:
        signal.setitimer(signal.ITIMER_PROF, budget)
        try:
            with contextlib.redirect_stdout(io.StringIO()):
                fn = getattr(importlib.import_module(module), function)
        finally:
            signal.setitimer(signal.ITIMER_PROF, 0)
    except BaseException as exc:
        report["error"] = type(exc).__name__
    else:
        start = time.process_time()
        for line in lines:
            over = time.process_time() - start > budget
            report["labels"].append(["skipped", None] if over else _label(fn, line, limit, max_repr))
    print("\n" + MARK + json.dumps(report), flush=True)


MARK = "@@LABELS@@ "
main()
'''

CLOSE_HELPER = '''

def _close(got, want):
    """True if `got` equals `want`, floats compared with a relative tolerance."""
    if isinstance(want, float):
        return isinstance(got, (int, float)) and math.isclose(got, want, rel_tol=1e-9, abs_tol=1e-12)
    if isinstance(want, (list, tuple)):
        return type(got) is type(want) and len(got) == len(want) and all(map(_close, got, want))
    if isinstance(want, dict):
        return isinstance(got, dict) and got.keys() == want.keys() and all(_close(got[k], want[k]) for k in want)
    return got == want
'''


def stub_function(source: str, function: str) -> str:
    """The module with `function`'s body after its docstring replaced by `raise NotImplementedError`.

    Only lines of the function's body change; raises MutationError when that is not a clean splice."""
    tree = ast.parse(source)
    func = find_function(tree, function)
    doc = func.body[0]
    if ast.get_docstring(func, clean=False) is None or len(func.body) < 2:
        raise MutationError(f"{function} has no docstring followed by a body")
    lines = source_lines(source)
    rest = lines[doc.end_lineno - 1].encode("utf-8")[doc.end_col_offset :].decode("utf-8", errors="replace")
    if rest.strip() and not rest.strip().startswith("#"):
        raise MutationError(f"code follows the docstring of {function} on its last line")
    first = lines[doc.lineno - 1]
    own_line = doc.lineno > func.lineno
    indent = first[: len(first) - len(first.lstrip())] if own_line else " " * (func.col_offset + 4)
    ending = "\r\n" if lines[doc.end_lineno - 1].endswith("\r\n") else "\n"
    stub = [*lines[: doc.end_lineno], f"{indent}raise NotImplementedError{ending}", *lines[func.end_lineno :]]
    text = "".join(stub)
    expected = copy.deepcopy(tree)
    find_function(expected, function).body = [doc, ast.Raise(exc=ast.Name("NotImplementedError", ast.Load()))]
    try:
        ok = ast.dump(ast.parse(text)) == ast.dump(expected)
    except SyntaxError:
        ok = False
    if not ok:
        raise MutationError(f"cannot stub the body of {function} as a clean splice")
    return text


def _is_main_guard(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and "__name__" in ast.unparse(node.test) and "__main__" in ast.unparse(node.test)


def _import_time_names(tree: ast.Module) -> set[str]:
    """Names loaded by code run at import: outside function bodies and the `__main__` guard."""
    names: set[str] = set()
    stack: list[ast.AST] = list(tree.body)
    while stack:
        node = stack.pop()
        if _is_main_guard(node):
            continue
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            defaults = [*node.args.defaults, *(d for d in node.args.kw_defaults if d is not None)]
            stack.extend([*getattr(node, "decorator_list", []), *defaults])
            continue
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load):
            names.add(node.id)
        stack.extend(ast.iter_child_nodes(node))
    return names


def used_at_import(tree: ast.Module, name: str) -> bool:
    """True if code run at import may call `name`, directly or through the module's own functions and classes."""
    defs = {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)}
    reached = _import_time_names(tree)
    frontier = sorted(reached)
    while frontier:
        node = defs.get(frontier.pop())
        if node is None:
            continue
        inner = {n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
        frontier.extend(sorted(inner - reached))
        reached |= inner
    return name in reached


def _parse_labels(stdout: str, n: int) -> list[str | None] | str:
    """Expected-value sources per input (None where unusable) from the labeller's output, or a reject reason."""
    lines = [line for line in stdout.splitlines() if line.startswith(MARK)]
    try:
        report = json.loads(lines[-1][len(MARK) :]) if lines else None
    except json.JSONDecodeError:
        report = None
    if not isinstance(report, dict) or not isinstance(report.get("labels"), list):
        return "label_crashed"
    if report.get("error"):
        return "import_error"
    out: list[str | None] = []
    for entry in report["labels"][:n]:
        text = entry[1] if isinstance(entry, list) and len(entry) == 2 and entry[0] == "ok" else None
        out.append(_canonical(text) if isinstance(text, str) and len(text) <= MAX_REPR else None)
    return out + [None] * (n - len(out))


def _canonical(text: str) -> str | None:
    """The deterministic literal source of a labelled value, or None if it is not plain literal data."""
    try:
        value = ast.literal_eval(text)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return None
    return literal_source(value) if is_plain(value) else None


def label(module: str, source: str, function: str, calls: list[CallInput], limits: Limits) -> list[str | None] | str:
    """Expected results (literal sources) of the reference on `calls`, None where unusable; or a reject reason."""
    budget = min(LABEL_BUDGET_S, limits.timeout_s / 3)
    argv = ["python", "-s", "-P", LABELLER_FILE, str(LABEL_CPU_S), str(budget), str(MAX_REPR)]
    argv += [module, function, INPUTS_FILE]
    out: list[str | None] = [None] * len(calls)
    todo = list(range(len(calls)))  # later hash seeds re-check only what the earlier runs labelled alike
    for run, hash_seed in enumerate(HASH_SEEDS):
        inputs = "".join(calls[i].data_source() + "\n" for i in todo)
        files = {f"{module}.py": source, LABELLER_FILE: LABELLER, INPUTS_FILE: inputs}
        labels = _parse_labels(execute(files, argv, limits, hash_seed=hash_seed).stdout, len(todo))
        if isinstance(labels, str):
            return labels
        for i, text in zip(todo, labels, strict=True):
            out[i] = text if run == 0 or text == out[i] else None
        todo = [i for i in todo if out[i] is not None]
        if not todo:
            break
    return out


def select(calls: list[CallInput], labels: list[str | None], n: int = MAX_KEPT) -> list[tuple[CallInput, str]]:
    """Up to `n` labelled cases in generation order, preferring ones whose expected value is not yet covered."""
    ok = [(i, c, t) for i, (c, t) in enumerate(zip(calls, labels, strict=True)) if t is not None]
    chosen: set[int] = set()
    outputs: set[str] = set()
    for i, _, text in ok:
        if len(chosen) < n and text not in outputs:
            chosen.add(i)
            outputs.add(text)
    for i, _, _ in ok:
        if len(chosen) < n:
            chosen.add(i)
    return [(c, t) for i, c, t in ok if i in chosen]


def _has_float(value: Any) -> bool:
    if isinstance(value, float):
        return True
    if isinstance(value, dict):
        return any(_has_float(v) for v in value.values())
    return isinstance(value, list | tuple) and any(_has_float(v) for v in value)


def amplified_test_file(module: str, function: str) -> str:
    """Workspace path of the amplified tests of `function`."""
    return f"test_{module}_{function}_amplified.py"


def render_tests(module: str, function: str, cases: list[tuple[CallInput, str]]) -> str:
    """A test file with one `test_amplified_NN` function per (input, expected literal source) case."""
    floats = any(_has_float(ast.literal_eval(t)) for _, t in cases)
    head = f'"""Amplified tests of `{function}` in `{module}.py`: mutated documented inputs, reference outputs."""\n\n'
    head += ("import math\n\n" if floats else "") + f"from {module} import {function}\n"
    head += CLOSE_HELPER if floats else ""
    body = []
    for k, (call, want) in enumerate(cases):
        got = call.call_source(function)
        check = f"_close({got}, {want})" if _has_float(ast.literal_eval(want)) else f"{got} == {want}"
        body.append(f"\n\ndef test_amplified_{k:02d}():\n    assert {check}\n")
    return head + "".join(body)


def _statement(module: str, function: str, test_file: str, stub: str) -> str:
    signature = function_source(stub, function).rstrip("\n").rsplit("\n", 1)[0]
    return (
        f"Implement `{function}` in `{module}.py` so that its documented examples and the tests in "
        f"`{test_file}` pass.\n\n```python\n{signature}\n```\n"
    )


def _docstrings(tree: ast.Module, function: str) -> list[str]:
    """The function's own docstring first, then every other docstring of the module, in source order."""
    own = ast.get_docstring(find_function(tree, function), clean=False) or ""
    kinds = (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)
    others = [ast.get_docstring(n, clean=False) for n in ast.walk(tree) if isinstance(n, kinds)]
    return [own, *(d for d in others if d and d != own)]


def build(sf: SourceFile, function: str, cfg: SynthConfig, seed: int) -> Draft | str:
    """The implement draft of one function, or a reject reason (see the module docstring)."""
    if sf.module.startswith("test") or function.startswith("test"):
        return "test_name"
    tree = ast.parse(sf.text)
    if used_at_import(tree, function):
        return "called_at_import"
    try:
        stub = stub_function(sf.text, function)
    except MutationError:
        return "unstubbable"
    seeds = doctest_calls(_docstrings(tree, function), sf.module, function)
    if not seeds:
        return "no_call_examples"
    calls = amplify(seeds, stable_hash(str(seed), sf.rel, function), MAX_CANDIDATES)
    if not calls:
        return "no_amplified_inputs"
    labels = label(sf.module, sf.text, function, calls, Limits(cfg.timeout_s, cfg.memory_mb))
    if isinstance(labels, str):
        return labels
    cases = select(calls, labels)
    if not cases:
        return "unlabelled"
    if all(t == "None" for _, t in cases):
        return "returns_none"
    name, test_file = f"{sf.module}.py", amplified_test_file(sf.module, function)
    tests = render_tests(sf.module, function, cases)
    return Draft(
        family=FAMILY, source_path=sf.rel, repo=sf.repo, commit=sf.commit, module=sf.module, function=function,
        operators=("stub_body", "amplify"), seed=seed,
        description=f"body of `{function}` removed; {len(cases)} tests amplified from {len(seeds)} documented inputs",
        broken={name: stub, test_file: tests}, fixed={name: sf.text, test_file: tests}, targets=(name, test_file),
        scope_file=name, problem_statement=_statement(sf.module, function, test_file, stub),
        extra={"amplified_inputs": str(len(cases)), "doctest_inputs": str(len(seeds))},
    )  # fmt: skip


def candidates(files: list[SourceFile], cfg: SynthConfig, seed: int) -> Iterator[Candidate]:
    """One candidate per top-level function with its own doctests, in a seeded order."""
    units = sorted(((sf.rel, fn, i) for i, sf in enumerate(files) for fn in sf.functions if "." not in fn))
    random.Random(int(stable_hash(str(seed), FAMILY), 16)).shuffle(units)
    for rel, fn, i in units:
        yield Candidate(
            FAMILY, f"{rel}::{fn}::implement", "stub_body", lambda sf=files[i], fn=fn: build(sf, fn, cfg, seed)
        )


FAMILIES = {FAMILY: candidates}
