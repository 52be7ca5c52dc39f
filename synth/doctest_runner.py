"""Run the doctests of one module file, each object's doctest as its own test id; print results as JSON.

Copied into every task workspace as `run_doctests.py`; it uses the standard library only. Usage:
    python -s -P run_doctests.py [--timeout CPU_SECONDS] [--stop-on-timeout] MODULE.py [TEST_ID ...]
The module is also bound to its own name in every test's globals (`textwrap.shorten(...)` works).
A test id is `<module>.<qualname>` (e.g. `statistics.mean`); with none given, every doctest runs.
Statuses: pass, fail, error, timeout, skipped (every example skipped), missing (no such doctest).
The last line of stdout is `@@DOCTEST_RESULTS@@ {"results": {id: status}, ...}`.
"""

from __future__ import annotations

import contextlib
import doctest
import importlib.util
import io
import json
import os
import signal
import sys

MARKER = "@@DOCTEST_RESULTS@@"


class TestTimeout(KeyboardInterrupt):
    """Raised by the CPU timer; a KeyboardInterrupt so doctest does not swallow it as an example error."""


def _on_timer(signum: int, frame: object) -> None:
    raise TestTimeout


def _emit(payload: dict) -> None:
    sys.stdout.flush()
    sys.stdout.write("\n" + MARKER + " " + json.dumps(payload, sort_keys=True) + "\n")
    sys.stdout.flush()


def _load(path: str):
    """Import a module from a file path under its file stem, registered in sys.modules."""
    name = os.path.splitext(os.path.basename(path))[0]
    spec = importlib.util.spec_from_file_location(name, os.path.abspath(path))
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    with contextlib.redirect_stdout(io.StringIO()):
        spec.loader.exec_module(module)
    return name, module


def _run_one(runner: doctest.DocTestRunner, test: doctest.DocTest, timeout_s: float) -> tuple[str, str]:
    """Run one doctest under a CPU-time alarm; return its status and its failure report."""
    log = io.StringIO()
    signal.setitimer(signal.ITIMER_PROF, timeout_s)
    try:
        result = runner.run(test, out=log.write)
        status = "fail" if result.failed else ("pass" if result.attempted else "skipped")
    except TestTimeout:
        status = "timeout"
    except BaseException as exc:  # noqa: BLE001 - SystemExit and friends count as an error of this test
        status, _ = "error", log.write(f"{type(exc).__name__}: {exc}\n")
    finally:
        signal.setitimer(signal.ITIMER_PROF, 0)
    return status, log.getvalue()[-2000:]


def main(argv: list[str]) -> int:
    """Run the requested doctests and print the results line."""
    timeout_s, stop_on_timeout = 2.0, False
    while argv[:1] in (["--timeout"], ["--stop-on-timeout"]):
        if argv[0] == "--timeout":
            timeout_s, argv = float(argv[1]), argv[2:]
        else:
            stop_on_timeout, argv = True, argv[1:]
    if not argv:
        print("usage: run_doctests.py [--timeout S] [--stop-on-timeout] MODULE.py [TEST_ID ...]", file=sys.stderr)
        return 2
    signal.signal(signal.SIGPROF, _on_timer)
    try:
        name, module = _load(argv[0])
    except BaseException as exc:  # noqa: BLE001 - any import failure is reported, not raised
        _emit({"load_error": f"{type(exc).__name__}: {exc}"[:500], "results": {}, "logs": {}})
        return 0
    tests = {
        t.name: t
        for t in doctest.DocTestFinder(recurse=True).find(module, name, extraglobs={name: module})
        if t.examples
    }
    runner = doctest.DocTestRunner(verbose=False, optionflags=0)
    results: dict[str, str] = {}
    logs: dict[str, str] = {}
    for test_id in argv[1:] or sorted(tests):
        if test_id not in tests:
            results[test_id] = "missing"
            continue
        results[test_id], log = _run_one(runner, tests[test_id], timeout_s)
        if results[test_id] != "pass":
            logs[test_id] = log
        if results[test_id] == "timeout" and stop_on_timeout:
            break
    _emit({"load_error": None, "results": results, "logs": logs})
    return 0


if __name__ == "__main__":
    code = main(sys.argv[1:])
    sys.stdout.flush()
    os._exit(code)  # do not wait for threads the module under test may have left running
