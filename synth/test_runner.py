"""Run a workspace's tests (doctests of modules, test functions of `test_*.py` files); print the results as JSON.

Copied into every task workspace as `run_tests.py`; it uses the standard library only. Usage:
    python -s -P run_tests.py [--timeout CPU_S] [--stop-on-timeout] [--stop-on-fail] [--shuffle SEED]
        [--variants FILE.json] TARGET [TARGET ...] [-- TEST_ID ...]
The workspace root (this script's folder) is `sys.path[0]`. A TARGET named `test_*.py` contributes its top-level
no-argument `test_*` functions (`path::name`) and the `test_*` methods of its `unittest.TestCase` subclasses
(`path::Class::method`); any other TARGET `pkg/mod.py` is imported as `pkg.mod` and contributes its doctests
(`pkg.mod.qualname`), with the module bound to its last name in the doctest globals. A target that fails to import
is listed in `load_errors` and its tests are `error` (with no ids requested: the single id `TARGET::<load>`).
Statuses: pass, fail, error, timeout (over CPU_S CPU seconds), skipped, missing (no such test). Tests run in sorted
id order, or shuffled by SEED; `--stop-on-timeout` stops after a timeout, `--stop-on-fail` after any non-pass.
`--variants` (used by the test-strength gate) names a JSON file `{"path": P, "function": Q, "texts": [...],
"span": [first line, last line, line count, [[class, column], ...]], "first": [ids], "wall_s": S}`: the workspace
is imported once, then for each text a forked child (killed after S wall seconds, working in a private copy of the
workspace with P replaced by the text) runs the tests: texts[0] is P itself; for the others the def of Q compiled
from the text (only its `span` lines when given) replaces the code of Q's function objects (a fresh import of the
copy when that cannot be done), and the ids in `first` run first. The results line then holds
`{"variants": [payload or {"crashed": why}, ...]}`.
The last line of stdout is `@@TEST_RESULTS@@ {"load_errors": {...}, "results": {id: status}, "logs": {id: text}}`.
"""

from __future__ import annotations
import __future__

import contextlib
import doctest
import gc
import importlib
import importlib.util
import inspect
import io
import json
import os
import random
import select
import shutil
import signal
import sys
import time
import traceback
import types
import unittest

MARKER = "@@TEST_RESULTS@@"
LOAD_ID = "<load>"
_OUT_FD = [1]  # main() dups fd 1 here, so the results line gets out even if a test replaces or closes stdout
_dumps = json.dumps
_armed = [False, False]  # [timer armed, timer fired]
_FUTURE_FLAGS = sum(
    f.compiler_flag
    for f in (getattr(__future__, n) for n in __future__.all_feature_names)
    if f.compiler_flag >= 0x20000
)  # the `from __future__` flags a code object carries into compile()


class TestTimeout(KeyboardInterrupt):
    """Raised by the CPU timer; a KeyboardInterrupt so neither doctest nor unittest swallows it."""


def _on_timer(signum: int, frame: object) -> None:
    if _armed[0]:
        _armed[1] = True
        raise TestTimeout


@contextlib.contextmanager
def _cpu_limit(seconds: float):
    """Arm the CPU timer (re-firing, in case the code under test swallows the first interrupt)."""
    _armed[:] = [True, False]
    signal.signal(signal.SIGPROF, _on_timer)
    signal.setitimer(signal.ITIMER_PROF, seconds, max(seconds / 4, 0.05))
    try:
        yield
    finally:
        _armed[0] = False
        signal.setitimer(signal.ITIMER_PROF, 0)


def _describe(exc: BaseException) -> str:
    try:
        return f"{type(exc).__name__}: {exc}"[:500]
    except BaseException:  # noqa: BLE001 - a hostile __str__
        return type(exc).__name__


def module_name(target: str) -> str:
    """Dotted import name of a workspace file (`pkg/mod.py` -> `pkg.mod`, `pkg/__init__.py` -> `pkg`)."""
    parts = target.replace(os.sep, "/").removesuffix(".py").split("/")
    return ".".join(parts[:-1] if parts[-1] == "__init__" and len(parts) > 1 else parts)


def _is_test_file(target: str) -> bool:
    return os.path.basename(target).startswith("test_")


def _shadow(root: str) -> None:
    """Forget already-imported modules that a top-level workspace file or package shadows."""
    names = {
        e.removesuffix(".py") for e in os.listdir(root) if e.endswith(".py") or os.path.isdir(os.path.join(root, e))
    }
    for name in list(sys.modules):
        top = name.partition(".")[0]
        if top in names and top not in sys.builtin_module_names:
            path = getattr(sys.modules[name], "__file__", None) or ""
            if not os.path.abspath(path).startswith(root + os.sep):
                del sys.modules[name]


def _load(root: str, target: str):
    """Import a target file under its dotted name (a fresh module unless that very file is already imported)."""
    name, path = module_name(target), os.path.abspath(os.path.join(root, target))
    old = sys.modules.get(name)
    if old is not None and os.path.abspath(getattr(old, "__file__", None) or "") == path:
        return name, old
    parent = name.rpartition(".")[0]
    if parent:
        importlib.import_module(parent)
    is_pkg = os.path.basename(path) == "__init__.py"
    spec = importlib.util.spec_from_file_location(
        name, path, submodule_search_locations=[os.path.dirname(path)] if is_pkg else None
    )
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import {target}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return name, module


def _no_args(fn: object) -> bool:
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return False
    return all(p.default is not p.empty or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) for p in params)


def _collect(module, name: str, target: str) -> dict[str, tuple]:
    """Test id -> (kind, object[, method]) of one loaded target."""
    if not _is_test_file(target):
        finder = doctest.DocTestFinder(recurse=True)
        last = name.rpartition(".")[2]
        extra = {} if hasattr(module, last) else {last: module}  # never shadow a function named like its module
        found = finder.find(module, name, extraglobs=extra)
        return {t.name: ("doctest", t) for t in found if t.examples}
    tests: dict[str, tuple] = {}
    for attr, obj in sorted(vars(module).items()):
        if getattr(obj, "__module__", None) != module.__name__:
            continue
        if attr.startswith("test_") and inspect.isfunction(obj) and _no_args(obj):
            tests[f"{target}::{attr}"] = ("function", obj)
        elif inspect.isclass(obj) and issubclass(obj, unittest.TestCase):
            for method in sorted(m for m in dir(obj) if m.startswith("test_") and callable(getattr(obj, m, None))):
                tests[f"{target}::{attr}::{method}"] = ("case", obj, method)
    return tests


def _case_status(result: unittest.TestResult) -> tuple[str, str]:
    if result.errors:
        return "error", "".join(text for _, text in result.errors)
    if result.failures or result.unexpectedSuccesses:
        return "fail", "".join(text for _, text in result.failures) or "unexpected success"
    if result.skipped or result.expectedFailures:
        return "skipped", ""
    return ("pass", "") if result.testsRun else ("skipped", "")


def _call(kind: str, test: tuple, runner: doctest.DocTestRunner, log: io.StringIO) -> str:
    """Run one test; its status (exceptions other than assertion failures propagate)."""
    if kind == "doctest":
        outcome = runner.run(test[1], out=log.write)
        return "fail" if outcome.failed else ("pass" if outcome.attempted else "skipped")
    if kind == "case":
        result = unittest.TestResult()
        unittest.TestSuite([test[1](test[2])]).run(result)
        status, text = _case_status(result)
        log.write(text)
        return status
    try:
        value = test[1]()
        if inspect.iscoroutine(value):
            import asyncio

            asyncio.run(value)
    except AssertionError:
        log.write(traceback.format_exc())
        return "fail"
    except unittest.SkipTest:
        return "skipped"
    return "pass"


def _run_one(kind: str, test: tuple, runner: doctest.DocTestRunner, timeout_s: float) -> tuple[str, str]:
    """Run one test under the CPU timer with its output captured; return its status and log."""
    log = io.StringIO()
    try:
        try:
            with _cpu_limit(timeout_s), contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
                status = _call(kind, test, runner, log)
        except BaseException as exc:  # noqa: BLE001 - SystemExit, KeyboardInterrupt and friends fail this test only
            status = "timeout" if _armed[1] else "error"
            log.write(f"{_describe(exc)}\n{traceback.format_exc()[-1500:]}")
    except TestTimeout:  # the re-firing timer hit while leaving the test
        status = "timeout"
    return status, log.getvalue()[-2000:]


def _owner(test_id: str, targets: list[str]) -> str | None:
    """The target a test id belongs to, by its prefix."""
    for target in targets:
        name = module_name(target)
        if test_id.startswith(target + "::"):
            return target
        if not _is_test_file(target) and (test_id == name or test_id.startswith(name + ".")):
            return target
    return None


def load(root: str, targets: list[str], timeout_s: float) -> tuple[dict[str, tuple], dict[str, str]]:
    """Put the workspace first on sys.path and import the targets: (test id -> test, target -> load error)."""
    sys.path.insert(0, root)
    _shadow(root)
    tests: dict[str, tuple] = {}
    load_errors: dict[str, str] = {}
    for target in targets:
        try:
            with _cpu_limit(timeout_s), contextlib.redirect_stdout(io.StringIO()):
                name, module = _load(root, target)
                tests.update(_collect(module, name, target))
        except BaseException as exc:  # noqa: BLE001 - any import failure is reported, not raised
            load_errors[target] = _describe(exc)
    return tests, load_errors


def run_loaded(tests: dict[str, tuple], load_errors: dict[str, str], ids: list[str], opts: dict) -> dict:
    """Run the requested tests (all when none) in order and return the results payload."""
    order = sorted(dict.fromkeys(ids)) if ids else sorted([*tests, *(f"{t}::{LOAD_ID}" for t in load_errors)])
    if opts["shuffle"] is not None:
        random.Random(opts["shuffle"]).shuffle(order)
    first = {t: None for t in opts.get("first", ()) if t in order}  # a mutant's likely killers first
    order = [*first, *(t for t in order if t not in first)]
    runner = doctest.DocTestRunner(verbose=False, optionflags=0)
    results: dict[str, str] = {}
    logs: dict[str, str] = {}
    for test_id in order:
        owner = _owner(test_id, list(load_errors))
        if test_id in tests:
            status, log = _run_one(tests[test_id][0], tests[test_id], runner, opts["timeout"])
        else:
            status, log = ("error", load_errors[owner]) if owner else ("missing", "")
        results[test_id] = status
        if status != "pass" and log:
            logs[test_id] = log
        if (opts["stop_on_fail"] and status != "pass") or (opts["stop_on_timeout"] and status == "timeout"):
            break
    return {"load_errors": load_errors, "results": results, "logs": logs}


def _functions(qualname: str, path: str) -> list[types.FunctionType]:
    """Every function object made from the code of the loaded def `qualname` of workspace file `path`."""
    obj = sys.modules[module_name(path)]
    for part in qualname.split("."):
        if not isinstance(obj, type | types.ModuleType):
            raise LookupError(f"{qualname}: {part} is not in a class or module")
        obj = vars(obj)[part]
    while not isinstance(obj, types.FunctionType):  # staticmethod, classmethod, property, functools wrappers
        obj = getattr(obj, "__func__", None) or getattr(obj, "fget", None) or getattr(obj, "__wrapped__", None)
        if obj is None:
            raise LookupError(f"{qualname} is not a plain function")
    old = obj.__code__
    if old.co_qualname != qualname:
        raise LookupError(f"{qualname} is bound to {old.co_qualname}")
    return [f for f in gc.get_referrers(old) if isinstance(f, types.FunctionType) and f.__code__ is old]


def _variant_code(old: types.CodeType, text: str, span: list | None) -> types.CodeType:
    """The code of the def that made `old`, compiled from `text`: only the def's lines when `span` says where."""
    sources = [text]
    if span:  # [first line, last line, line count of the reference, [[class, column], ...]]
        first, last, count, classes = span
        lines = io.StringIO(text, newline="").readlines()
        head = "".join(" " * col + f"class {name}:\n" for name, col in classes)
        sources.insert(
            0, "\n" * (first - 1 - len(classes)) + head + "".join(lines[first - 1 : last + len(lines) - count])
        )
    for source in sources:
        try:
            stack = [compile(source, old.co_filename, "exec", flags=old.co_flags & _FUTURE_FLAGS, dont_inherit=True)]
        except SyntaxError:
            continue
        found = []
        while stack:
            code = stack.pop()
            found += [code] if (code.co_qualname, code.co_firstlineno) == (old.co_qualname, old.co_firstlineno) else []
            stack.extend(c for c in code.co_consts if isinstance(c, types.CodeType))
        if len(found) == 1:
            return found[0]
    raise LookupError(f"{old.co_qualname} not found once in the variant")


def _variant_payload(copy: str, spec: dict, index: int, loaded: tuple, funcs: list, targets, ids, opts) -> dict:
    """In the forked child: results of the tests on variant `index` (swapped in place, else a fresh import)."""
    os.chdir(copy)
    if index == 0:  # the reference, already loaded, in the command's own order
        return run_loaded(*loaded, ids, opts)
    try:
        code = _variant_code(funcs[0].__code__, spec["texts"][index], spec.get("span"))
        for func in funcs:
            func.__code__ = code  # ValueError when the closure no longer fits
    except (LookupError, ValueError, TypeError):
        return run_loaded(*load(copy, targets, opts["timeout"]), ids, opts)  # fresh import of the copy
    return run_loaded(*loaded, ids, {**opts, "first": spec.get("first", ())})


MUTANT_TIME_FACTOR = 5.0
MUTANT_TIME_FLOOR = 0.05
CONFIRM_FACTOR, CONFIRM_FLOOR = 4.0, 0.5
"""A mutant timing out is re-run once with CONFIRM_FACTOR x its budget + CONFIRM_FLOOR s before it counts as looping."""
"""A mutant's tests may use 5x the reference's run time plus 0.05 s of CPU per test before counting as timed out."""


def variants(root: str, spec: dict, targets: list[str], ids: list[str], opts: dict) -> list[dict]:
    """Results of the tests with each text of `spec` as file `path`, each in a forked child (texts[0]: reference)."""
    loaded = load(root, targets, opts["timeout"])
    try:
        funcs = _functions(spec["function"], spec["path"])
    except (LookupError, KeyError, TypeError):
        funcs = []
    start = time.monotonic()
    results = [_in_child(root, spec, 0, loaded, funcs, targets, ids, opts)]
    # a mutant that loops would burn the whole per-test budget: allow it a generous multiple of the reference's time
    budget = min(float(opts["timeout"]), MUTANT_TIME_FACTOR * (time.monotonic() - start) + MUTANT_TIME_FLOOR)
    fast = {**opts, "timeout": budget}
    for i in range(1, len(spec["texts"])):
        out = _in_child(root, spec, i, loaded, funcs, targets, ids, fast)
        if budget < float(opts["timeout"]) and "timeout" in (out.get("results") or {}).values():
            # confirm with the full budget: on a loaded machine a slow scheduler tick is not a looping mutant,
            # and the verdict (so the task's mutation score) must not depend on the load
            patient = {**opts, "timeout": min(float(opts["timeout"]), CONFIRM_FACTOR * budget + CONFIRM_FLOOR)}
            out = _in_child(root, spec, i, loaded, funcs, targets, ids, patient)
        results.append(out)
    return results


def _in_child(root: str, spec: dict, index: int, loaded: tuple, funcs: list, targets, ids, opts) -> dict:
    copy = os.path.join(root, f".variant-{index}")
    shutil.copytree(root, copy, ignore=shutil.ignore_patterns(".variant-*"))
    with open(os.path.join(copy, spec["path"]), "w", encoding="utf-8") as f:
        f.write(spec["texts"][index])
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: run, send the payload, never return into the parent's loop
        os.close(read)
        try:
            payload = _variant_payload(copy, spec, index, loaded, funcs, targets, ids, opts)
            data = _dumps(payload).encode() + b"\n"
        except BaseException as exc:  # noqa: BLE001
            data = _dumps({"crashed": _describe(exc)}).encode() + b"\n"
        with contextlib.suppress(OSError):
            while data:
                data = data[os.write(write, data) :]
        os._exit(0)
    os.close(write)
    chunks, deadline, why = [], time.monotonic() + float(spec.get("wall_s", 10.0)), None
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            why = "wall_timeout"
            break
        if select.select([read], [], [], left)[0]:
            chunk = os.read(read, 1 << 16)
            chunks.append(chunk)
            if not chunk or chunk.endswith(b"\n"):  # a payload ends with its only newline
                break
    os.close(read)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    status = os.waitpid(pid, 0)[1]
    shutil.rmtree(copy, ignore_errors=True)
    try:
        return json.loads(b"".join(chunks)) if why is None else {"crashed": why}
    except ValueError:
        return {"crashed": f"no results (wait status {status})"}


def parse_args(argv: list[str]) -> tuple[list[str], list[str], dict]:
    """(targets, test ids, options) from the command line; ValueError on a bad one."""
    opts: dict = {"timeout": 2.0, "stop_on_timeout": False, "stop_on_fail": False, "shuffle": None, "variants": None}
    targets: list[str] = []
    ids: list[str] = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--":
            ids = argv[i + 1 :]
            break
        if arg in ("--stop-on-timeout", "--stop-on-fail"):
            opts[arg[2:].replace("-", "_")] = True
        elif arg in ("--timeout", "--shuffle", "--variants") and i + 1 < len(argv):
            convert = {"--timeout": float, "--shuffle": int, "--variants": str}[arg]
            opts[arg[2:]], i = convert(argv[i + 1]), i + 1
        elif arg.startswith("--"):
            raise ValueError(f"unknown option {arg}")
        else:
            targets.append(arg)
        i += 1
    if not targets:
        raise ValueError("no TARGET given")
    return targets, ids, opts


def main(argv: list[str]) -> int:
    """Run the tests the command line asks for and write the results line last."""
    try:
        targets, ids, opts = parse_args(argv)
    except ValueError as exc:
        print(f"run_tests.py: {exc}", file=sys.stderr)
        return 2
    _OUT_FD[0] = os.dup(1)
    root = os.path.dirname(os.path.abspath(__file__))
    if opts["variants"] is not None:
        with open(os.path.join(root, opts["variants"]), encoding="utf-8") as f:
            spec = json.load(f)
        payload = {"variants": variants(root, spec, targets, ids, opts)}
    else:
        payload = run_loaded(*load(root, targets, opts["timeout"]), ids, opts)
    with contextlib.suppress(BaseException):
        sys.stdout.flush()
    line = "\n" + MARKER + " " + _dumps(payload, sort_keys=True) + "\n"
    data = line.encode("utf-8", errors="replace")
    while data:
        data = data[os.write(_OUT_FD[0], data) :]
    return 0


if __name__ == "__main__":
    os._exit(main(sys.argv[1:]))  # do not wait for threads or atexit hooks the code under test left behind
