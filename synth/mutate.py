"""AST mutation operators that inject one small bug into one function, editing only the mutated span."""

from __future__ import annotations

import ast
import copy
import functools
import io
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass

_CMP_NEGATE = {
    ast.Lt: ast.GtE, ast.GtE: ast.Lt, ast.Gt: ast.LtE, ast.LtE: ast.Gt, ast.Eq: ast.NotEq, ast.NotEq: ast.Eq,
    ast.Is: ast.IsNot, ast.IsNot: ast.Is, ast.In: ast.NotIn, ast.NotIn: ast.In,
}  # fmt: skip
_CMP_BOUNDARY = {ast.Lt: ast.LtE, ast.LtE: ast.Lt, ast.Gt: ast.GtE, ast.GtE: ast.Gt}
_ARITH = {
    ast.Add: ast.Sub, ast.Sub: ast.Add, ast.Mult: ast.Div, ast.Div: ast.Mult, ast.FloorDiv: ast.Div,
    ast.Mod: ast.FloorDiv, ast.Pow: ast.Mult, ast.LShift: ast.RShift, ast.RShift: ast.LShift,
    ast.BitAnd: ast.BitOr, ast.BitOr: ast.BitAnd, ast.BitXor: ast.BitOr,
}  # fmt: skip
_REMOVABLE = (ast.Assign, ast.AugAssign, ast.AnnAssign, ast.Expr, ast.Continue)


@dataclass(frozen=True)
class Mutation:
    """One injected bug: the mutated module source and where/what was changed."""

    source: str
    operator: str
    line: int
    description: str


class MutationError(ValueError):
    """A mutation could not be spliced back into the source as valid, equivalent-to-intended code."""


@functools.lru_cache(maxsize=64)
def _body_nodes(func: ast.AST) -> tuple[ast.AST, ...]:
    """Nodes inside a function body, skipping annotations, decorators and f-strings; in source order."""
    return tuple(_walk_body(func))


def _walk_body(func: ast.AST) -> Iterator[ast.AST]:
    stack = list(reversed(func.body))
    while stack:
        node = stack.pop()
        if isinstance(node, ast.JoinedStr):
            continue
        yield node
        children = []
        for field, value in ast.iter_fields(node):
            if field in ("annotation", "returns", "decorator_list", "type_comment"):
                continue
            items = value if isinstance(value, list) else [value]
            children.extend(v for v in items if isinstance(v, ast.AST))
        stack.extend(reversed(children))


def _is_docstring(node: ast.AST, func: ast.AST) -> bool:
    return node is func.body[0] and isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)


def _positioned(node: ast.AST) -> bool:
    return getattr(node, "end_lineno", None) is not None


def _sites_compare(func: ast.AST, table: dict) -> list[tuple[ast.AST, ast.AST, str]]:
    out = []
    for node in _body_nodes(func):
        if isinstance(node, ast.Compare):
            for i, op in enumerate(node.ops):
                if type(op) in table:
                    new = copy.copy(node)
                    new.ops = [*node.ops[:i], table[type(op)](), *node.ops[i + 1 :]]
                    out.append((node, new, f"`{_op_text(op)}` -> `{_op_text(new.ops[i])}`"))
    return out


def _op_text(op: ast.AST) -> str:
    probe = ast.Compare(ast.Name("a"), [op], [ast.Name("b")]) if isinstance(op, ast.cmpop) else None
    if probe is None:
        probe = ast.BinOp(ast.Name("a"), op, ast.Name("b"))
    return ast.unparse(probe)[2:-2]


def sites_compare_flip(func: ast.AST) -> list[tuple[ast.AST, ast.AST, str]]:
    """Negate one comparison operator (`<` -> `>=`, `==` -> `!=`, `in` -> `not in`)."""
    return _sites_compare(func, _CMP_NEGATE)


def sites_compare_boundary(func: ast.AST) -> list[tuple[ast.AST, ast.AST, str]]:
    """Move one comparison boundary (`<` <-> `<=`, `>` <-> `>=`)."""
    return _sites_compare(func, _CMP_BOUNDARY)


def sites_arith_swap(func: ast.AST) -> list[tuple[ast.AST, ast.AST, str]]:
    """Swap one arithmetic or bitwise operator (`+` <-> `-`, `*` <-> `/`, ...), including augmented ones."""
    out = []
    for node in _body_nodes(func):
        if isinstance(node, ast.BinOp | ast.AugAssign) and type(node.op) in _ARITH:
            new = copy.copy(node)
            new.op = _ARITH[type(node.op)]()
            out.append((node, new, f"`{_op_text(node.op)}` -> `{_op_text(new.op)}`"))
    return out


def sites_off_by_one(func: ast.AST) -> list[tuple[ast.AST, ast.AST, str]]:
    """Shift one integer literal by one (`n` -> `n + 1` or `n - 1`, chosen from the site's position)."""
    out = []
    for node in _body_nodes(func):
        if isinstance(node, ast.Constant) and type(node.value) is int:
            delta = 1 if (node.lineno + node.col_offset) % 2 == 0 or node.value == 0 else -1
            new = ast.Constant(node.value + delta)
            out.append((node, new, f"`{node.value}` -> `{new.value}`"))
    return out


def sites_bool_swap(func: ast.AST) -> list[tuple[ast.AST, ast.AST, str]]:
    """Swap one boolean operator (`and` <-> `or`)."""
    out = []
    for node in _body_nodes(func):
        if isinstance(node, ast.BoolOp):
            new = copy.copy(node)
            new.op = ast.Or() if isinstance(node.op, ast.And) else ast.And()
            out.append((node, new, "`and` -> `or`" if isinstance(node.op, ast.And) else "`or` -> `and`"))
    return out


def sites_negate_condition(func: ast.AST) -> list[tuple[ast.AST, ast.AST, str]]:
    """Negate the condition of one `if`/`elif` statement or conditional expression."""
    out = []
    for node in _body_nodes(func):
        if isinstance(node, ast.If | ast.IfExp):
            test = node.test
            if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
                new = test.operand
            else:
                new = ast.UnaryOp(ast.Not(), test)
            out.append((test, new, "negated condition"))
    return out


def sites_remove_statement(func: ast.AST) -> list[tuple[ast.AST, ast.AST, str]]:
    """Replace one assignment, expression statement or `continue` with `pass`."""
    out = []
    for node in _body_nodes(func):
        if isinstance(node, _REMOVABLE) and not _is_docstring(node, func):
            out.append((node, ast.Pass(), "removed statement"))
    return out


def sites_swap_args(func: ast.AST) -> list[tuple[ast.AST, ast.AST, str]]:
    """Swap the first two positional arguments of one call."""
    out = []
    for node in _body_nodes(func):
        if isinstance(node, ast.Call) and len(node.args) >= 2:
            a, b = node.args[0], node.args[1]
            if any(isinstance(x, ast.Starred) for x in (a, b)) or ast.dump(a) == ast.dump(b):
                continue
            new = copy.copy(node)
            new.args = [b, a, *node.args[2:]]
            out.append((node, new, "swapped call arguments"))
    return out


OPERATORS: dict[str, Callable[[ast.AST], list[tuple[ast.AST, ast.AST, str]]]] = {
    "compare_flip": sites_compare_flip,
    "compare_boundary": sites_compare_boundary,
    "arith_swap": sites_arith_swap,
    "off_by_one": sites_off_by_one,
    "bool_swap": sites_bool_swap,
    "negate_condition": sites_negate_condition,
    "remove_statement": sites_remove_statement,
    "swap_args": sites_swap_args,
}
"""Operator name -> function listing (site node, replacement node, description) in a function."""


def find_function(tree: ast.Module, qualname: str) -> ast.FunctionDef | ast.AsyncFunctionDef:
    """The def of `qualname` (`func`, `Class.method`) among top-level and class-level definitions."""
    scope: list[ast.stmt] = tree.body
    parts = qualname.split(".")
    for i, part in enumerate(parts):
        kinds = (ast.FunctionDef, ast.AsyncFunctionDef) if i == len(parts) - 1 else (ast.ClassDef,)
        found = [n for n in scope if isinstance(n, kinds) and n.name == part]
        if not found:
            raise KeyError(f"no function {qualname!r} in the module")
        node = found[-1]  # the last definition wins at import time
        scope = node.body
    return node


def _char_col(line: str, byte_col: int) -> int:
    return len(line.encode("utf-8")[:byte_col].decode("utf-8", errors="replace"))


def source_lines(source: str) -> list[str]:
    """Lines with their endings, split exactly where Python's tokenizer counts lines."""
    return io.StringIO(source, newline="").readlines()


class _Replace(ast.NodeTransformer):
    def __init__(self, key: tuple, new: ast.AST) -> None:
        self.key = key
        self.new = new

    def visit(self, node: ast.AST) -> ast.AST:
        if _positioned(node) and _key(node) == self.key:
            return self.new
        return self.generic_visit(node)


def _key(node: ast.AST) -> tuple:
    return (type(node), node.lineno, node.col_offset, node.end_lineno, node.end_col_offset)


def _parse_def(segment: str, indented: bool) -> ast.AST:
    """Parse the source of one def on its own; an indented def is wrapped in `if True:`."""
    tree = ast.parse("if True:\n" + segment if indented else segment)
    return tree.body[0].body[0] if indented else tree.body[0]


def _undecorated_dump(func: ast.AST) -> str:
    func = copy.copy(func)
    func.decorator_list = []
    return ast.dump(func)


def apply_site(lines: list[str], func: ast.AST, node: ast.AST, new: ast.AST) -> str:
    """Splice `new` in place of `node` inside `func`; check the def parses to exactly the intended tree."""
    indented = func.col_offset > 0
    shift = func.lineno - (2 if indented else 1)  # line numbers of the def parsed on its own
    original = _parse_def("".join(lines[func.lineno - 1 : func.end_lineno]), indented)
    kind, lineno, col, end_lineno, end_col = _key(node)
    expected = _undecorated_dump(
        _Replace((kind, lineno - shift, col, end_lineno - shift, end_col), new).visit(original)
    )
    first, last = node.lineno - 1, node.end_lineno - 1
    start = _char_col(lines[first], node.col_offset)
    end = _char_col(lines[last], node.end_col_offset)
    text = "pass" if isinstance(new, ast.Pass) else ast.unparse(new)
    for candidate in (text, f"({text})"):
        mutated = [*lines[:first], lines[first][:start] + candidate + lines[last][end:], *lines[last + 1 :]]
        segment = "".join(mutated[func.lineno - 1 : func.end_lineno - (last - first)])
        try:
            if _undecorated_dump(_parse_def(segment, indented)) == expected:
                return "".join(mutated)
        except SyntaxError:
            continue
    raise MutationError(f"cannot splice {text!r} at line {node.lineno} as valid code")


def count_sites(source: str, qualname: str, operator: str) -> int:
    """How many places `operator` can mutate in function `qualname`."""
    return len(OPERATORS[operator](find_function(_parsed(source)[0], qualname)))


@functools.lru_cache(maxsize=16)
def _parsed(source: str) -> tuple[ast.Module, list[str]]:
    """The module tree and lines of a source (cached; never modified by callers)."""
    return ast.parse(source), source_lines(source)


def mutate(source: str, qualname: str, operator: str, seed: int) -> Mutation | None:
    """Inject one bug with `operator` into function `qualname` of a module; None when it has no site.

    Raises MutationError when the change cannot be written back as valid code parsing to the intended tree.
    """
    if operator not in OPERATORS:
        raise ValueError(f"unknown mutation operator {operator!r}; known: {sorted(OPERATORS)}")
    tree, lines = _parsed(source)
    func = find_function(tree, qualname)
    sites = [s for s in OPERATORS[operator](func) if _positioned(s[0])]
    if not sites:
        return None
    node, new, description = sites[random.Random(seed).randrange(len(sites))]
    mutated = apply_site(lines, func, node, new)
    return Mutation(mutated, operator, node.lineno, f"{description} on line {node.lineno}")
