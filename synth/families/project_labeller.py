"""Label a generated project in the sandbox: evaluate check expressions in each variant of the project.

Copied into the workspace and run as a script (stdlib only; written by automixer synth). Usage:
`python -s -P LABELLER SPEC_JSON`, in the reference project's root. The spec lists the variants (name, files to
overlay on the reference while it is evaluated, CPU budgets), the project's top-level names, the setup code
(the test files' imports), and the items to evaluate. Each item is run twice in a copy of the setup namespace;
the last stdout line is `MARK {variant: {"load_error": ..., "results": {id: {"value": repr} | {"raises": name}
| {"bad": why}}}}`. Variants not started before the spec's CPU deadline are reported as `"skipped": true`.
"""

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

MARK = "@@PROJECT_LABELS@@ "


class _Timeout(BaseException):
    pass


class _Sink(io.TextIOBase):
    def write(self, text):
        return len(text)


def _on_prof(signum, frame):
    raise _Timeout


def _literal(value, max_repr):
    """The repr of `value` if it is short literal data that reads back equal and with the same repr, else None."""
    text = repr(value)
    if len(text) > max_repr:
        return None
    try:
        back = ast.literal_eval(text)
    except Exception:
        return None
    return text if back == value and repr(back) == text else None


def _once(ns, item, cpu_s, max_repr, seed):
    local = dict(ns)
    random.seed(seed)  # two evaluations under two seeds: code that uses `random` shows up as unstable
    signal.setitimer(signal.ITIMER_PROF, cpu_s)
    try:
        exec(item["pre"], local)
        value = eval(item["expr"], local)
        text = _literal(value, max_repr)
    except _Timeout:
        return {"bad": "timeout"}
    except RecursionError:
        return {"bad": "recursion"}
    except (Exception, SystemExit) as exc:
        return {"raises": type(exc).__name__}
    finally:
        signal.setitimer(signal.ITIMER_PROF, 0)
    return {"value": text} if text is not None else {"bad": "unrepresentable"}


def _purge(tops):
    for name in list(sys.modules):
        if name.split(".")[0] in tops:
            del sys.modules[name]


def _overlay(files):
    """Write `files` (path -> text, None: remove) over the project; return what restores it."""
    saved = {}
    for path, text in files.items():
        saved[path] = None
        if os.path.exists(path):
            with open(path, encoding="utf-8") as f:
                saved[path] = f.read()
        _write(path, text)
    return saved


def _write(path, text):
    if text is None:
        if os.path.exists(path):
            os.remove(path)
        return
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)


def _variant(variant, spec):
    """Evaluate every item with the variant's files over the project."""
    _purge(spec["tops"])
    saved = _overlay(variant["files"])
    importlib.invalidate_caches()
    try:
        return _evaluate(spec, variant["budget_s"], variant["cpu_s"])
    finally:
        for path, text in saved.items():
            _write(path, text)


def _evaluate(spec, budget_s, cpu_s):
    ns = {"__name__": "__project_label__"}
    out = {"load_error": None, "results": {}}
    try:
        signal.setitimer(signal.ITIMER_PROF, budget_s)
        try:
            exec(spec["setup"], ns)
        finally:
            signal.setitimer(signal.ITIMER_PROF, 0)
    except (Exception, SystemExit, _Timeout) as exc:
        out["load_error"] = f"{type(exc).__name__}: {exc}"[:300]
        return out
    start = time.process_time()
    for item in spec["items"]:
        if time.process_time() - start > budget_s:
            out["results"][item["id"]] = {"bad": "skipped"}
            continue
        first = _once(ns, item, cpu_s, spec["max_repr"], 1)
        second = _once(ns, item, cpu_s, spec["max_repr"], 2) if "bad" not in first else first
        out["results"][item["id"]] = first if first == second else {"bad": "unstable"}
    return out


def main():
    with open(sys.argv[1], encoding="utf-8") as f:
        spec = json.load(f)
    signal.signal(signal.SIGPROF, _on_prof)
    sys.path.insert(0, os.getcwd())
    report = {}
    for variant in spec["variants"]:
        if time.process_time() > spec["deadline_s"]:
            report[variant["name"]] = {"load_error": None, "results": {}, "skipped": True}
            continue
        with contextlib.redirect_stdout(_Sink()), contextlib.redirect_stderr(_Sink()):
            report[variant["name"]] = _variant(variant, spec)
    print("\n" + MARK + json.dumps(report, sort_keys=True), flush=True)


if __name__ == "__main__":
    main()
