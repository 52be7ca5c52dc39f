"""EvalPlus-style test amplification: literal call inputs from doctest examples and type-aware mutations of them.

Pure functions only: nothing here runs the code under test (labelling happens in the sandbox).
"""

from __future__ import annotations

import ast
import doctest
import math
import random
import string
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

MAX_DEPTH = 6
"""Deepest container nesting an input may have."""

_SCALARS = (type(None), bool, int, float, complex, str, bytes)
_CONTAINERS = (list, tuple, dict, set)


@dataclass(frozen=True)
class CallInput:
    """The literal arguments of one call: positional values and (name, value) keyword pairs."""

    args: tuple[Any, ...]
    kwargs: tuple[tuple[str, Any], ...] = ()

    def call_source(self, function: str) -> str:
        """The call as Python source, e.g. `fn(1, [2, 3], key='a')`."""
        parts = [literal_source(a) for a in self.args] + [f"{k}={literal_source(v)}" for k, v in self.kwargs]
        return f"{function}({', '.join(parts)})"

    def key(self) -> str:
        """A canonical text that tells apart inputs differing in value or type (`1`, `1.0`, `True`)."""
        return self.call_source("")

    def data_source(self) -> str:
        """One-line literal `(args_tuple, kwargs_dict)` that `ast.literal_eval` turns back into the input."""
        return literal_source((tuple(self.args), dict(self.kwargs)))


@dataclass(frozen=True)
class Caps:
    """Size limits for mutated inputs, so that reference runs stay fast and tests stay readable."""

    max_int: int = 1000
    max_str: int = 32
    max_len: int = 16
    max_chars: int = 400


def literal_source(value: Any) -> str:
    """Deterministic Python literal source of plain data (set elements sorted by their own source)."""
    if isinstance(value, list):
        return "[" + ", ".join(literal_source(v) for v in value) + "]"
    if isinstance(value, tuple):
        inner = ", ".join(literal_source(v) for v in value)
        return f"({inner},)" if len(value) == 1 else f"({inner})"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{literal_source(k)}: {literal_source(v)}" for k, v in value.items()) + "}"
    if isinstance(value, set):
        return "{" + ", ".join(sorted(literal_source(v) for v in value)) + "}" if value else "set()"
    return repr(value)


def is_plain(value: Any, depth: int = 0) -> bool:
    """True for literal data: None, bool, int, finite float, complex, str, bytes and list/tuple/dict/set of it."""
    if depth > MAX_DEPTH:
        return False
    if type(value) is float:
        return math.isfinite(value)
    if type(value) in _SCALARS:
        return True
    if type(value) is dict:
        return all(is_plain(k, depth + 1) and is_plain(v, depth + 1) for k, v in value.items())
    if type(value) in (list, tuple, set):
        return all(is_plain(v, depth + 1) for v in value)
    return False


def _literal(node: ast.expr, env: dict[str, Any]) -> tuple[bool, Any]:
    """(True, value) if `node` is a literal or a name bound to one by an earlier example; else (False, None)."""
    if isinstance(node, ast.Name) and node.id in env:
        return True, env[node.id]
    try:
        value = ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return False, None
    return is_plain(value), value


def _call_input(node: ast.Call, env: dict[str, Any]) -> CallInput | None:
    args, kwargs = [], []
    for arg in node.args:
        ok, value = _literal(arg, env)
        if not ok or isinstance(arg, ast.Starred):
            return None
        args.append(value)
    for kw in node.keywords:
        ok, value = _literal(kw.value, env)
        if kw.arg is None or not ok:
            return None
        kwargs.append((kw.arg, value))
    return CallInput(tuple(args), tuple(kwargs))


def _calls_target(node: ast.Call, module: str, function: str) -> bool:
    func = node.func
    if isinstance(func, ast.Name):
        return func.id == function
    return (
        isinstance(func, ast.Attribute)
        and func.attr == function
        and isinstance(func.value, ast.Name)
        and func.value.id == module
    )


def doctest_calls(docstrings: Iterable[str], module: str, function: str) -> list[CallInput]:
    """Distinct literal-argument calls of `function` (or `module.function`) in doctest examples, in order.

    `>>> name = <literal>` examples bind names that later calls may use as arguments."""
    out: dict[str, CallInput] = {}
    parser = doctest.DocTestParser()
    for doc in docstrings:
        env: dict[str, Any] = {}
        try:
            examples = parser.get_examples(doc)
        except ValueError:
            continue
        for example in examples:
            try:
                tree = ast.parse(example.source)
            except SyntaxError:
                continue
            for node in ast.walk(tree):
                if isinstance(node, ast.Call) and _calls_target(node, module, function):
                    call = _call_input(node, env)
                    if call is not None:
                        out.setdefault(call.key(), call)
            for stmt in tree.body:
                if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name):
                    ok, value = _literal(stmt.value, env)
                    if ok:
                        env[stmt.targets[0].id] = value
    return list(out.values())


def _alphabet(text: str) -> str:
    """Characters that fit the string's own character classes (digits stay digits, lowercase stays lowercase)."""
    if text and text.isdigit():
        return string.digits
    if text and text.isalpha() and text.islower():
        return string.ascii_lowercase
    if text and text.isalpha():
        return string.ascii_letters
    return string.ascii_letters + string.digits + " "


def _mutate_str(s: str, rng: random.Random) -> str:
    chars = list(s) if s and rng.random() < 0.5 else list(_alphabet(s))
    ch = rng.choice(chars)
    i = rng.randrange(len(s) + 1)
    ops = ["insert", "empty", "case"]
    if s:
        ops += ["delete", "replace", "duplicate", "reverse"]
    op = rng.choice(ops)
    if op == "insert":
        return s[:i] + ch + s[i:]
    if op == "empty":
        return ""
    if op == "case":
        return rng.choice([s.swapcase(), s.upper(), s.lower(), s.capitalize()])
    j = rng.randrange(len(s))
    if op == "delete":
        return s[:j] + s[j + 1 :]
    if op == "replace":
        return s[:j] + ch + s[j + 1 :]
    if op == "duplicate":
        return s[: j + 1] + s[j:]
    return s[::-1]


def _mutate_bytes(b: bytes, rng: random.Random) -> bytes:
    return _mutate_str(b.decode("latin-1"), rng).encode("latin-1", errors="replace")


def _mutate_int(v: int, rng: random.Random) -> int:
    return rng.choice([v + 1, v - 1, v * 2, -v, 0, 1, -1, 2, v // 2, v + rng.randint(-10, 10)])


def _mutate_float(v: float, rng: random.Random) -> float:
    out = rng.choice([v + 1.0, v - 1.0, v * 2, -v, 0.0, v / 2, 0.5, round(v + rng.uniform(-1, 1), 3)])
    return out if math.isfinite(out) else v


def _homogeneous(items: list[Any]) -> bool:
    return len({type(v) for v in items}) <= 1


def _mutate_seq(items: list[Any], rng: random.Random, depth: int) -> list[Any]:
    """Mutate a list's items: grow/shrink/reorder when homogeneous, else only mutate one element in place."""
    if not items:
        return items
    j = rng.randrange(len(items))
    if not _homogeneous(items):
        return [*items[:j], mutate_value(items[j], rng, depth + 1), *items[j + 1 :]]
    op = rng.choice(["append", "insert", "drop", "shuffle", "duplicate", "empty", "element", "element", "sort"])
    if op == "append":
        return [*items, mutate_value(rng.choice(items), rng, depth + 1)]
    if op == "insert":
        return [*items[:j], mutate_value(rng.choice(items), rng, depth + 1), *items[j:]]
    if op == "drop":
        return items[:j] + items[j + 1 :]
    if op == "shuffle":
        return rng.sample(items, len(items))
    if op == "duplicate":
        return [*items[: j + 1], items[j], *items[j + 1 :]]
    if op == "empty":
        return []
    if op == "sort":
        try:
            return sorted(items, reverse=rng.random() < 0.5)
        except TypeError:
            return items
    return [*items[:j], mutate_value(items[j], rng, depth + 1), *items[j + 1 :]]


def _mutate_dict(d: dict[Any, Any], rng: random.Random, depth: int) -> dict[Any, Any]:
    if not d:
        return d
    keys = list(d)
    k = rng.choice(keys)
    op = rng.choice(["value", "value", "drop", "add", "key", "empty"])
    if op == "value":
        return {**d, k: mutate_value(d[k], rng, depth + 1)}
    if op == "drop":
        return {key: v for key, v in d.items() if key != k}
    if op == "empty":
        return {}
    new_key = mutate_value(k, rng, depth + 1)
    if new_key in d:
        return d
    if op == "add":
        return {**d, new_key: mutate_value(d[k], rng, depth + 1)}
    return {(new_key if key == k else key): v for key, v in d.items()}


def _mutate_set(s: set[Any], rng: random.Random, depth: int) -> set[Any]:
    if not s:
        return s
    items = sorted(s, key=literal_source)
    e = rng.choice(items)
    op = rng.choice(["add", "drop", "element", "empty"])
    if op == "add":
        return s | {mutate_value(e, rng, depth + 1)}
    if op == "drop":
        return s - {e}
    if op == "empty":
        return set()
    return (s - {e}) | {mutate_value(e, rng, depth + 1)}


def mutate_value(value: Any, rng: random.Random, depth: int = 0) -> Any:
    """One type-preserving random mutation of a literal value (containers recurse into their elements)."""
    if depth > MAX_DEPTH:
        return value
    kind = type(value)
    if kind is bool:
        return not value
    if kind is int:
        return _mutate_int(value, rng)
    if kind is float:
        return _mutate_float(value, rng)
    if kind is str:
        return _mutate_str(value, rng)
    if kind is bytes:
        return _mutate_bytes(value, rng)
    if kind is list:
        return _mutate_seq(value, rng, depth)
    if kind is tuple:
        return tuple(_mutate_seq(list(value), rng, depth))
    if kind is dict:
        return _mutate_dict(value, rng, depth)
    if kind is set:
        return _mutate_set(value, rng, depth)
    return value  # None, complex: kept as they are


def _sizes(value: Any) -> tuple[int, int, int]:
    """(largest |int|, longest str/bytes, longest container) inside a value."""
    if type(value) is int:
        return abs(value), 0, 0
    if type(value) in (str, bytes):
        return 0, len(value), 0
    if type(value) in _CONTAINERS:
        parts = list(value.items()) if type(value) is dict else list(value)
        inner = [_sizes(p) for p in parts]
        return (
            max((s[0] for s in inner), default=0),
            max((s[1] for s in inner), default=0),
            max([len(value), *(s[2] for s in inner)]),
        )
    return 0, 0, 0


def caps_for(seeds: list[CallInput]) -> Caps:
    """Size limits for mutations of `seeds`: the defaults, or twice what the documented inputs already use."""
    sizes = [_sizes((c.args, c.kwargs)) for c in seeds]
    big_int = max((s[0] for s in sizes), default=0)
    long_str = max((s[1] for s in sizes), default=0)
    long_seq = max((s[2] for s in sizes), default=0)
    chars = max((len(c.key()) for c in seeds), default=0)
    base = Caps()
    return Caps(
        max(base.max_int, 2 * big_int),
        max(base.max_str, 2 * long_str),
        max(base.max_len, 2 * long_seq),
        max(base.max_chars, 2 * chars),
    )


def fits(call: CallInput, caps: Caps) -> bool:
    """True if the input is plain data within the size limits."""
    values = (call.args, tuple(v for _, v in call.kwargs))
    if not is_plain(values):
        return False
    big_int, long_str, long_seq = _sizes(values)
    return (
        big_int <= caps.max_int
        and long_str <= caps.max_str
        and long_seq <= caps.max_len
        and len(call.key()) <= caps.max_chars
    )


def mutate_call(call: CallInput, rng: random.Random) -> CallInput | None:
    """The call with one (sometimes two) of its arguments mutated; None if it has no arguments."""
    n_args = len(call.args) + len(call.kwargs)
    if not n_args:
        return None
    picks = {rng.randrange(n_args) for _ in range(2 if rng.random() < 0.3 else 1)}
    args = [mutate_value(v, rng) if i in picks else v for i, v in enumerate(call.args)]
    off = len(call.args)
    kwargs = [(k, mutate_value(v, rng) if off + i in picks else v) for i, (k, v) in enumerate(call.kwargs)]
    return CallInput(tuple(args), tuple(kwargs))


def amplify(seeds: list[CallInput], seed: str | int, n: int, caps: Caps | None = None) -> list[CallInput]:
    """Up to `n` new distinct inputs grown from `seeds` by repeated type-aware mutation (seeded, deterministic).

    Mutants join the pool, so later ones may be several mutations away from a documented input; none equals a
    seed or another mutant, and all fit `caps` (default: `caps_for(seeds)`)."""
    caps = caps or caps_for(seeds)
    rng = random.Random(f"amplify:{seed}")
    pool = [c for c in seeds if c.args or c.kwargs]
    seen = {c.key() for c in seeds}
    out: list[CallInput] = []
    attempts = 0
    while pool and len(out) < n and attempts < 30 * n:
        attempts += 1
        new = mutate_call(rng.choice(pool), rng)
        if new is None or not fits(new, caps):
            continue
        key = new.key()
        if key not in seen:
            seen.add(key)
            out.append(new)
            pool.append(new)
    return out
