"""Code templates of the generated projects: app modules around a real function, a CLI, and their checks.

Every template takes the call of the real function as text (`call`, e.g. `gcd(a, b)`), so that a family can
write the same module against an old and a new API.
"""

from __future__ import annotations

from synth.families.project_label import Check
from synth.families.project_spec import APP_NAMES, FunctionSpec, args_text, free_name, tuple_text, unpack_target

PACKAGE_DOC = '"""{what}"""\n'


def package_init(what: str) -> str:
    """An `__init__.py` holding only a docstring."""
    return PACKAGE_DOC.format(what=what)


def call_text(callee: str, spec: FunctionSpec) -> str:
    """The plain call of the real function on the local argument names, e.g. `gcd(a, b)`."""
    return f"{callee}({', '.join(spec.local)})"


def import_line(module: str, name: str, alias: str) -> str:
    """`from module import name` (with `as alias` when the local name differs)."""
    return f"from {module} import {name}" + (f" as {alias}" if alias != name else "")


def outcome_def(spec: FunctionSpec, call: str, shown: str = "") -> str:
    """`outcome(...)`: the result of one call as ("ok", value), or ("error", exception name)."""
    params = ", ".join(spec.local)
    return (
        f"def outcome({params}):\n"
        f'    """The result of `{shown or spec.name}` for one input as ("ok", value), or ("error", exception name)."""\n'
        f"    try:\n"
        f'        return ("ok", {call})\n'
        f"    except Exception as exc:  # a report records failures instead of stopping\n"
        f'        return ("error", type(exc).__name__)\n'
    )


TABLE_DEF = '''def table(cases):
    """(input, outcome) pairs for a list of argument tuples."""
    return [(case, outcome(*case)) for case in cases]
'''

SUMMARY_DEF = '''def summary(cases):
    """How many inputs succeeded, the errors by name, and the distinct results in first-seen order."""
    ok, errors, distinct_values = 0, {}, []
    for case in cases:
        status, value = outcome(*case)
        if status == "ok":
            ok += 1
            if value not in distinct_values:
                distinct_values.append(value)
        else:
            errors[value] = errors.get(value, 0) + 1
    return {"ok": ok, "errors": errors, "distinct": distinct_values}
'''


def module(doc: str, imports: list[str], defs: list[str]) -> str:
    """A module: docstring, `from __future__ import annotations`, imports, then the definitions."""
    head = f'"""{doc}"""\n\nfrom __future__ import annotations\n\n' + "".join(f"{i}\n" for i in imports)
    return head + "".join(f"\n\n{d}" for d in defs)


def report_module(
    spec: FunctionSpec, imports: list[str], call: str, extra: tuple[str, ...] = (), shown: str = ""
) -> str:
    """`app/report.py`: outcome, table and summary over the real function (called `shown`), plus extra definitions."""
    doc = f"Batch reports over `{spec.module}.{shown or spec.name}`: one outcome per input, a table and a summary."
    return module(doc, imports, [outcome_def(spec, call, shown), TABLE_DEF, SUMMARY_DEF, *extra])


def stats_module(spec: FunctionSpec, imports: list[str], call: str, shown: str = "") -> str:
    """`app/stats.py`: a summary that calls the real function directly (a second call site)."""
    shown = shown or spec.name
    body = (
        "def tally(cases):\n"
        f'    """Successes, errors by name and distinct results of `{shown}` over argument tuples."""\n'
        "    ok, errors, distinct_values = 0, {}, []\n"
        f"    for {unpack_target(spec.local)} in cases:\n"
        "        try:\n"
        f"            value = {call}\n"
        "        except Exception as exc:\n"
        "            errors[type(exc).__name__] = errors.get(type(exc).__name__, 0) + 1\n"
        "            continue\n"
        "        ok += 1\n"
        "        if value not in distinct_values:\n"
        "            distinct_values.append(value)\n"
        '    return {"ok": ok, "errors": errors, "distinct": distinct_values}\n'
    )
    return module(f"Statistics over many inputs of `{shown}`.", imports, [body])


def cli_module(spec: FunctionSpec, imports: list[str], call: str, shown: str = "") -> str:
    """`cli.py`: `python cli.py ARG...` prints the function's result on Python-literal arguments."""
    shown = shown or spec.name
    main = (
        "def main(argv):\n"
        f'    """The repr of `{shown}` on the literal arguments in argv, or `error: <exception name>`."""\n'
        f"    {unpack_target(spec.local)} = [ast.literal_eval(arg) for arg in argv]\n"
        "    try:\n"
        f"        return repr({call})\n"
        "    except Exception as exc:\n"
        '        return f"error: {type(exc).__name__}"\n'
    )
    guard = 'if __name__ == "__main__":\n    print(main(sys.argv[1:]))\n'
    doc = f"Command line: `python cli.py ARG...` prints `{shown}` of the Python-literal arguments."
    return module(doc, ["import ast", "import sys", "", *imports], [main, guard])


def outcome_check(file: str, i: int, case: tuple[str, ...]) -> Check:
    """`assert outcome(<case>) == <labelled>`."""
    return Check(file, f"test_outcome_{i}", f"outcome({args_text(case)})", case=i)


def cli_check(file: str, i: int, case: tuple[str, ...]) -> Check:
    """`assert main([<arg reprs>]) == <labelled>`."""
    argv = "[" + ", ".join(repr(a) for a in case) + "]"
    return Check(file, f"test_main_{i}", f"main({argv})", case=i)


def cases_text(cases: list[tuple[str, ...]]) -> str:
    """A list literal of argument tuples."""
    return "[" + ", ".join(tuple_text(c) for c in cases) + "]"


def aggregate_checks(
    file: str, cases: list[tuple[str, ...]], names: tuple[str, ...] = ("table", "summary")
) -> list[Check]:
    """`assert <name>([...all good cases...]) == <labelled>` for each aggregate function name."""
    return [Check(file, f"test_{name}", f"{name}({cases_text(cases)})") for name in names]


def local_callee(spec: FunctionSpec, name: str) -> str:
    """The name generated code imports `name` under: itself unless it clashes with a generated name."""
    taken = APP_NAMES | set(spec.local)
    return name if name not in taken else free_name(f"lib_{name}", taken)


def failing_list(ids: list[str], limit: int = 8) -> str:
    """A markdown list of test ids (at most `limit`, then a count)."""
    text = "".join(f"- `{t}`\n" for t in ids[:limit])
    return text + (f"- ... and {len(ids) - limit} more\n" if len(ids) > limit else "")


def result_text(result: dict[str, str]) -> str:
    """What a check's expression did, in words: `returns X`, `raises E`, `does not finish`."""
    if "value" in result:
        return f"returns `{result['value']}`"
    if "raises" in result:
        return f"raises `{result['raises']}`"
    return "does not finish" if result.get("bad") == "timeout" else "gives a different result"


def run_command(targets: tuple[str, ...] | list[str]) -> str:
    """The command that runs the project's tests."""
    return "python -s -P run_tests.py " + " ".join(targets)
