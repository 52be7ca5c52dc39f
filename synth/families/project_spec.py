"""The real function a generated project is built around: its parameters, literal inputs and safe local names.

Pure analysis (AST and literal data only): nothing here runs the code of a source file.
"""

from __future__ import annotations

import ast
import builtins
import functools
import keyword
import random
from dataclasses import dataclass
from typing import TYPE_CHECKING

from automixer.io import stable_hash
from synth.amplify import CallInput, amplify, doctest_calls, literal_source

if TYPE_CHECKING:
    from synth.discover import SourceFile

MAX_INPUTS = 24
"""Inputs labelled per project: the documented ones first, then amplified ones (labelling picks the tested ones)."""
MAX_ARG_CHARS = 120
"""Longest literal source of one input's arguments kept in a generated test."""
MAX_MODULE_CHARS = 60_000
"""Longest real module copied into a project (larger ones make unwieldy workspaces)."""
PROJECT_TOPS = frozenset({"lib", "app", "tests", "vendor", "cli", "pins", "run_tests", "_label"})
"""Top-level names a generated project uses itself."""
APP_NAMES = frozenset(
    {
        "outcome", "table", "summary", "stamped", "collect", "distinct", "main", "cases", "case", "status", "value",
        "exc", "ok", "errors", "distinct_values", "name", "argv", "arg", "into", "seen", "result", "out", "clock",
        "datetime", "time", "ast", "sys", "annotations", "close",
    }
)  # fmt: skip
"""Names the generated app and test code defines or imports (a real name equal to one gets renamed locally)."""


@dataclass(frozen=True)
class FunctionSpec:
    """A real top-level function usable as the core of a project, with the inputs its tests will use."""

    sf: SourceFile
    name: str
    """The function's name in its module."""
    params: tuple[str, ...]
    """Names of the leading positional parameters the generated code passes (the function's own names)."""
    local: tuple[str, ...]
    """Names the generated code uses for those arguments (the real ones unless they clash)."""
    cases: tuple[tuple[str, ...], ...]
    """Inputs: per case, the literal source of each argument; documented inputs first."""
    seed: int
    """Per-function seed (from the family seed, the source and the function)."""

    @property
    def module(self) -> str:
        """The real module's name."""
        return self.sf.module


def args_text(case: tuple[str, ...]) -> str:
    """The arguments of one case as call arguments, e.g. `12, 18`."""
    return ", ".join(case)


def tuple_text(case: tuple[str, ...]) -> str:
    """One case as a tuple literal, e.g. `(12, 18)` or `(5,)`."""
    return f"({case[0]},)" if len(case) == 1 else f"({args_text(case)})"


def unpack_target(names: tuple[str, ...]) -> str:
    """An assignment target that unpacks one case into `names`, e.g. `[a, b]`."""
    return "[" + ", ".join(names) + "]"


def derived_seed(*parts: str) -> int:
    """A 31-bit seed derived from strings."""
    return int(stable_hash(*parts), 16) % 2**31


def _taken(tree: ast.Module) -> set[str]:
    """Every identifier a module binds or reads."""
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            out.add(node.id)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            out.add(node.name)
        elif isinstance(node, ast.arg):
            out.add(node.arg)
        elif isinstance(node, ast.alias):
            out.add((node.asname or node.name).split(".")[0])
    return out


def free_name(base: str, taken: set[str] | frozenset[str]) -> str:
    """`base`, or `base_2`, `base_3`... : the first that is not taken, not a keyword and not a builtin."""
    name, k = base, 1
    while name in taken or keyword.iskeyword(name) or hasattr(builtins, name):
        k += 1
        name = f"{base}_{k}"
    return name


def _local_names(params: tuple[str, ...], avoid: set[str]) -> tuple[str, ...]:
    out: list[str] = []
    for p in params:
        name = p if p not in avoid and not hasattr(builtins, p) else free_name(f"{p}_arg", avoid)
        avoid = avoid | {name}
        out.append(name)
    return tuple(out)


def _plain_signature(func: ast.FunctionDef) -> bool:
    """True if callers can pass the leading parameters positionally: no `/`, no `*args`, keyword-only ones defaulted."""
    a = func.args
    return not a.posonlyargs and a.vararg is None and all(d is not None for d in a.kw_defaults) and bool(a.args)


def _is_generator(func: ast.FunctionDef) -> bool:
    stack = list(func.body)
    while stack:
        node = stack.pop()
        if isinstance(node, ast.Yield | ast.YieldFrom):
            return True
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda | ast.ClassDef):
            stack.extend(ast.iter_child_nodes(node))
    return False


def _docstrings(tree: ast.Module, func: ast.FunctionDef) -> list[str]:
    """The function's docstring first, then the module's."""
    return [d for d in (ast.get_docstring(func, clean=False), ast.get_docstring(tree, clean=False)) if d]


def _cases(seeds: list[CallInput], arity: int, seed: int) -> tuple[tuple[str, ...], ...]:
    """Up to MAX_INPUTS distinct short inputs: documented ones first, then amplified ones."""
    calls = [*seeds, *amplify(seeds, seed, 2 * MAX_INPUTS)]
    out: dict[str, tuple[str, ...]] = {}
    for call in calls:
        if call.kwargs or len(call.args) != arity:
            continue
        case = tuple(literal_source(a) for a in call.args)
        if len(args_text(case)) <= MAX_ARG_CHARS:
            out.setdefault(args_text(case), case)
    return tuple(out.values())[:MAX_INPUTS]


def function_spec(sf: SourceFile, name: str, seed: int) -> FunctionSpec | None:
    """The spec of top-level function `name`, or None if it cannot anchor a project (see `usable_functions`)."""
    if len(sf.text) > MAX_MODULE_CHARS or sf.module in PROJECT_TOPS:
        return None
    if name.startswith(("_", "test")) or sf.module.startswith("test"):
        return None
    tree = ast.parse(sf.text)
    funcs = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == name]
    if not funcs or not _plain_signature(funcs[-1]) or _is_generator(funcs[-1]):
        return None
    func = funcs[-1]
    seeds = [c for c in doctest_calls(_docstrings(tree, func), sf.module, name) if not c.kwargs]
    seeds = [c for c in seeds if 1 <= len(c.args) <= len(func.args.args)]
    if not seeds:
        return None
    counts: dict[int, int] = {}
    for c in seeds:
        counts[len(c.args)] = counts.get(len(c.args), 0) + 1
    arity = max(sorted(counts), key=lambda n: counts[n])
    fseed = derived_seed(str(seed), sf.rel, name)
    cases = _cases([c for c in seeds if len(c.args) == arity], arity, fseed)
    if len(cases) < 2:
        return None
    params = tuple(a.arg for a in func.args.args[:arity])
    avoid = set(APP_NAMES) | PROJECT_TOPS | {name, sf.module}
    return FunctionSpec(sf, name, params, _local_names(params, avoid), cases, fseed)


@functools.lru_cache(maxsize=4096)
def _module_specs(sf: SourceFile, seed: int) -> tuple[FunctionSpec, ...]:
    try:
        ast.parse(sf.text)
    except (SyntaxError, ValueError):
        return ()
    specs = (function_spec(sf, q, seed) for q in sorted(sf.functions) if "." not in q)
    return tuple(s for s in specs if s is not None)


def usable_functions(files: list[SourceFile], seed: int, family: str) -> list[FunctionSpec]:
    """Specs of every usable function, in a seeded order that depends on the family.

    Usable: a top-level, public, non-generator function of a module of at most MAX_MODULE_CHARS whose name does
    not clash with the project layout, that callers can pass positional arguments,
    and whose doctests call it with literal arguments (at least 2 distinct inputs after amplification)."""
    specs = [s for sf in sorted(files, key=lambda f: f.rel) for s in _module_specs(sf, seed)]
    random.Random(derived_seed(str(seed), family)).shuffle(specs)
    return specs


def module_names(source: str) -> set[str]:
    """Every identifier a module's source binds or reads."""
    return _taken(ast.parse(source))


def pick(options: list[str] | tuple[str, ...], seed: int, *salt: str) -> str:
    """A seeded choice among `options`."""
    return options[derived_seed(str(seed), *salt) % len(options)]
