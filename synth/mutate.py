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
_SIMPLE = (ast.Assign, ast.AugAssign, ast.AnnAssign, ast.Expr)


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


@dataclass(frozen=True)
class StatementEdit:
    """A whole-line edit standing in for a replacement node: lines `first`..`last` become `pieces`."""

    first: int
    last: int
    pieces: tuple[tuple[int, int, int], ...]
    """Original line ranges (first, last, columns to dedent) that make up the new lines, in order."""
    replacement: ast.AST | list[ast.stmt]
    """What the site node becomes in the tree (a list splices statements into its block)."""


def _blocks(func: ast.AST) -> Iterator[tuple[ast.AST, str, list[ast.stmt]]]:
    """(owner, field, statements) of every statement block of a function, its own body first."""
    for owner in (func, *_body_nodes(func)):
        for name in ("body", "orelse", "finalbody"):
            block = getattr(owner, name, None)
            if isinstance(block, list) and block and isinstance(block[0], ast.stmt) and _positioned(owner):
                yield owner, name, block


def sites_remove_condition(func: ast.AST) -> list[tuple[ast.AST, ast.AST, str]]:
    """Drop one `if` test (its body always runs) or drop one `elif`/`else` branch."""
    nodes = [n for n in _body_nodes(func) if isinstance(n, ast.If)]
    elifs = {  # an `elif` is a lone `If` in `orelse` starting in the same column as its parent
        id(n.orelse[0])
        for n in nodes
        if len(n.orelse) == 1 and isinstance(n.orelse[0], ast.If) and n.orelse[0].col_offset == n.col_offset
    }
    out = []
    for node in nodes:
        body = node.body
        if id(node) not in elifs and body[0].lineno > node.lineno:
            piece = (body[0].lineno, body[-1].end_lineno, body[0].col_offset - node.col_offset)
            edit = StatementEdit(node.lineno, node.end_lineno, (piece,), list(body))
            out.append((node, edit, "removed an `if` test (its body always runs)"))
        if node.orelse and node.orelse[0].lineno > body[-1].end_lineno:
            kept = copy.copy(node)
            kept.orelse = []
            edit = StatementEdit(node.lineno, node.end_lineno, ((node.lineno, body[-1].end_lineno, 0),), kept)
            kind = "elif" if id(node.orelse[0]) in elifs else "else"
            out.append((node, edit, f"removed an `{kind}` branch"))
    return out


def sites_remove_loop(func: ast.AST) -> list[tuple[ast.AST, ast.AST, str]]:
    """Delete one `for` or `while` loop statement (never the only statement of its block)."""
    out = []
    for _, _, block in _blocks(func):
        if len(block) > 1:
            for node in block:
                if isinstance(node, ast.For | ast.AsyncFor | ast.While):
                    out.append((node, StatementEdit(node.lineno, node.end_lineno, (), []), "removed a loop"))
    return out


def _names(stmt: ast.stmt) -> tuple[set[str], set[str]]:
    """(names a simple statement writes or mutates, names it reads)."""
    writes = {n.id for n in ast.walk(stmt) if isinstance(n, ast.Name) and not isinstance(n.ctx, ast.Load)}
    reads = {n.id for n in ast.walk(stmt) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
    targets = getattr(stmt, "targets", None) or [getattr(stmt, "target", None)]
    if isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Call):
        targets = [stmt.value.func]  # `xs.append(x)` mutates `xs`
    for target in targets:
        while isinstance(target, ast.Attribute | ast.Subscript):
            target = target.value
            if isinstance(target, ast.Name):
                writes.add(target.id)
    if isinstance(stmt, ast.AugAssign) and isinstance(stmt.target, ast.Name):
        reads.add(stmt.target.id)
    return writes, reads


def sites_shuffle_statements(func: ast.AST) -> list[tuple[ast.AST, ast.AST, str]]:
    """Swap two adjacent simple statements of one block when one uses or changes what the other changes."""
    out = []
    for owner, name, block in _blocks(func):
        for i in range(len(block) - 1):
            a, b = block[i], block[i + 1]
            if not (isinstance(a, _SIMPLE) and isinstance(b, _SIMPLE)) or _is_docstring(a, func):
                continue
            before = block[i - 1].end_lineno if i else owner.lineno
            after = block[i + 2].lineno if i + 2 < len(block) else b.end_lineno + 1
            (wa, ra), (wb, rb) = _names(a), _names(b)
            if before < a.lineno and a.end_lineno < b.lineno and b.end_lineno < after and (wa & (rb | wb) or wb & ra):
                new = copy.copy(owner)
                setattr(new, name, [*block[:i], b, a, *block[i + 2 :]])
                pieces = ((b.lineno, b.end_lineno, 0), (a.end_lineno + 1, b.lineno - 1, 0), (a.lineno, a.end_lineno, 0))
                out.append((owner, StatementEdit(a.lineno, b.end_lineno, pieces, new), "swapped two statements"))
    return out


def sites_break_call_chain(func: ast.AST) -> list[tuple[ast.AST, ast.AST, str]]:
    """Drop one link of a chained call (`s.strip().lower()` -> `s.strip()` or `s.lower()`) or unwrap `f(g(x))`."""
    out = []
    for node in _body_nodes(func):
        if not isinstance(node, ast.Call):
            continue
        f = node.func
        if isinstance(f, ast.Attribute) and isinstance(f.value, ast.Call):
            out.append((node, f.value, f"dropped `.{f.attr}(...)` from a call chain"))
            inner = f.value.func
            if isinstance(inner, ast.Attribute):
                new = copy.copy(node)
                new.func = ast.Attribute(inner.value, f.attr, ast.Load())
                out.append((node, new, f"dropped `.{inner.attr}(...)` from a call chain"))
        elif (
            isinstance(f, ast.Name) and len(node.args) == 1 and not node.keywords and isinstance(node.args[0], ast.Call)
        ):
            out.append((node, node.args[0], f"dropped the `{f.id}(...)` around a call"))
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
    "remove_condition": sites_remove_condition,
    "remove_loop": sites_remove_loop,
    "shuffle_statements": sites_shuffle_statements,
    "break_call_chain": sites_break_call_chain,
}
"""Operator name -> function listing (site node, replacement node or StatementEdit, description) in a function."""


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


def function_span(source: str, qualname: str) -> tuple[int, int, int, list[tuple[str, int]]]:
    """(first line with decorators, last line, the source's line count, enclosing (class, column)s) of a def."""
    tree, lines = _parsed(source)
    func, scope, classes = find_function(tree, qualname), tree.body, []
    for part in qualname.split(".")[:-1]:
        node = [n for n in scope if isinstance(n, ast.ClassDef) and n.name == part][-1]
        classes.append((node.name, node.col_offset))
        scope = node.body
    return min([func.lineno, *(d.lineno for d in func.decorator_list)]), func.end_lineno, len(lines), classes


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


def _expected(lines: list[str], func: ast.AST, node: ast.AST, new: ast.AST | list) -> tuple[str, bool]:
    """Dump of the def (parsed on its own) with `node` replaced by `new`, and whether the def is indented."""
    indented = func.col_offset > 0
    shift = func.lineno - (2 if indented else 1)  # line numbers of the def parsed on its own
    original = _parse_def("".join(lines[func.lineno - 1 : func.end_lineno]), indented)
    kind, lineno, col, end_lineno, end_col = _key(node)
    return _undecorated_dump(
        _Replace((kind, lineno - shift, col, end_lineno - shift, end_col), new).visit(original)
    ), indented


def _apply_lines(lines: list[str], func: ast.AST, node: ast.AST, edit: StatementEdit) -> str:
    """Rewrite whole lines as `edit` says; check the def parses to exactly the intended tree."""
    expected, indented = _expected(lines, func, node, edit.replacement)
    text = []
    for first, last, dedent in edit.pieces:
        for line in lines[first - 1 : last]:
            text.append(line[dedent:] if dedent and line.strip() and not line[:dedent].strip() else line)
    mutated = [*lines[: edit.first - 1], *text, *lines[edit.last :]]
    end = func.end_lineno + len(text) - (edit.last - edit.first + 1)
    try:
        if _undecorated_dump(_parse_def("".join(mutated[func.lineno - 1 : end]), indented)) == expected:
            return "".join(mutated)
    except SyntaxError:
        pass
    raise MutationError(f"cannot rewrite lines {edit.first}-{edit.last} as valid code")


def apply_site(lines: list[str], func: ast.AST, node: ast.AST, new: ast.AST | StatementEdit) -> str:
    """Splice `new` in place of `node` inside `func`; check the def parses to exactly the intended tree."""
    if isinstance(new, StatementEdit):
        return _apply_lines(lines, func, node, new)
    expected, indented = _expected(lines, func, node, new)
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
    return len(_sites(source, qualname, operator)[2])


@functools.lru_cache(maxsize=16)
def _parsed(source: str) -> tuple[ast.Module, list[str]]:
    """The module tree and lines of a source (cached; never modified by callers)."""
    return ast.parse(source), source_lines(source)


def _sites(source: str, qualname: str, operator: str) -> tuple[list[str], ast.AST, list]:
    if operator not in OPERATORS:
        raise ValueError(f"unknown mutation operator {operator!r}; known: {sorted(OPERATORS)}")
    tree, lines = _parsed(source)
    func = find_function(tree, qualname)
    return lines, func, [s for s in OPERATORS[operator](func) if _positioned(s[0])]


def mutate_at(source: str, qualname: str, operator: str, index: int) -> Mutation:
    """Inject the bug of site `index` (of `count_sites`) of `operator` into function `qualname`.

    Raises IndexError for a site that does not exist, MutationError when it cannot be written back as valid code.
    """
    lines, func, sites = _sites(source, qualname, operator)
    node, new, description = sites[index]
    line = new.first if isinstance(new, StatementEdit) else node.lineno
    return Mutation(apply_site(lines, func, node, new), operator, line, f"{description} on line {line}")


def mutate(source: str, qualname: str, operator: str, seed: int) -> Mutation | None:
    """Inject one bug with `operator` into function `qualname` of a module; None when it has no site.

    Raises MutationError when the change cannot be written back as valid code parsing to the intended tree.
    """
    n = len(_sites(source, qualname, operator)[2])
    return mutate_at(source, qualname, operator, random.Random(seed).randrange(n)) if n else None
