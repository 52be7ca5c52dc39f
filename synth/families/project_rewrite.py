"""Carry an API change of one top-level function through a module: rename it, change its signature, fix calls.

Edits are made on the source text at AST positions, so everything else (comments, layout) stays as it was.
Doctest examples that call the function are rewritten the same way.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass

from synth.mutate import source_lines

CHANGES = ("none", "kwonly", "swap")
"""`none`: rename only; `kwonly`: the parameters after the first (all of them for one) become keyword-only;
`swap`: the first two parameters trade places."""


class RewriteError(ValueError):
    """The change cannot be carried through the module safely."""


@dataclass(frozen=True)
class ApiChange:
    """A new name and signature for a function whose positional parameters are `params`."""

    old: str
    new: str
    change: str
    params: tuple[str, ...]
    first_keyword: int = 1
    """`kwonly`: index of the first parameter that becomes keyword-only (at most `len(params) - 1`)."""

    def call(self, callee: str, args: list[str], keywords: tuple[str, ...] = ()) -> str:
        """A call written for the new signature, from an old call's positional argument and keyword texts."""
        if len(args) > len(self.params):
            raise RewriteError(f"a call of {self.old} passes more positional arguments than it has parameters")
        if self.change == "kwonly":
            k = self.first_keyword
            parts = [*args[:k], *(f"{self.params[i]}={a}" for i, a in enumerate(args) if i >= k)]
        elif self.change == "swap" and len(args) >= 2:
            parts = [args[1], args[0], *args[2:]]
        elif self.change == "swap":
            parts = [f"{self.params[i]}={a}" for i, a in enumerate(args)]
        else:
            parts = list(args)
        return f"{callee}({', '.join([*parts, *keywords])})"

    def describe(self) -> str:
        """The change in words, e.g. `gcd(a, b)` -> `compute_gcd(a, *, b)`."""
        return f"`{self.old}({', '.join(self.params)})` -> `{self.new}({', '.join(self.new_params())})`"

    def new_params(self) -> list[str]:
        """The parameter list of the new signature."""
        p = list(self.params)
        if self.change == "kwonly":
            k = self.first_keyword
            return [*p[:k], "*", *p[k:]]
        if self.change == "swap":
            return [p[1], p[0], *p[2:]]
        return p


def supports(func: ast.FunctionDef, change: str, first_keyword: int = 1) -> bool:
    """True if `change` can be applied to the def's signature."""
    a = func.args
    if change == "none":
        return True
    if a.posonlyargs or a.vararg is not None or a.kwonlyargs or not a.args:
        return False
    if change == "swap":
        n_plain = len(a.args) - len(a.defaults)
        return len(a.args) >= 2 and (n_plain >= 2 or n_plain == 0)
    return change == "kwonly" and first_keyword < len(a.args)


class _Text:
    """A module's UTF-8 bytes with AST-position helpers."""

    def __init__(self, source: str) -> None:
        self.data = source.encode("utf-8")
        self.starts = [0]
        for line in source_lines(source):
            self.starts.append(self.starts[-1] + len(line.encode("utf-8")))

    def span(self, node: ast.AST) -> tuple[int, int]:
        """Byte offsets (start, end) of a node in the module."""
        return (
            self.starts[node.lineno - 1] + node.col_offset,
            self.starts[node.end_lineno - 1] + node.end_col_offset,
        )


class _Rewriter:
    """Renders spans of a module with every use of the old name rewritten for the new API."""

    def __init__(self, source: str, api: ApiChange) -> None:
        self.text = _Text(source)
        self.tree = ast.parse(source)
        self.api = api

    def is_target(self, node: ast.AST) -> bool:
        """True for a call of the old name (`old(...)`) and for the bare name."""
        if isinstance(node, ast.Call):
            return isinstance(node.func, ast.Name) and node.func.id == self.api.old
        return isinstance(node, ast.Name) and node.id == self.api.old

    def targets(self, node: ast.AST) -> list[ast.AST]:
        """Outermost calls of the old name and other uses of it below `node`, in source order."""
        out: list[ast.AST] = []
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.Call) and isinstance(child.func, ast.Name) and child.func.id == self.api.old:
                out.append(child)
            elif isinstance(child, ast.Name) and child.id == self.api.old:
                if self.api.change != "none" and not (isinstance(node, ast.Attribute) and node.value is child):
                    raise RewriteError(f"{self.api.old} is used as a value at line {child.lineno}")
                out.append(child)
            else:
                out.extend(self.targets(child))
        return out

    def render(self, node: ast.AST) -> bytes:
        """The source of `node` with the uses of the old name in it rewritten."""
        if self.is_target(node):
            return self.replace(node)
        start, end = self.text.span(node)
        return self.splice(start, end, [(*self.text.span(t), self.replace(t)) for t in self.targets(node)])

    def splice(self, start: int, end: int, edits: list[tuple[int, int, bytes]]) -> bytes:
        """Bytes start..end of the module with non-overlapping edits (absolute spans) applied."""
        out, pos = [], start
        for s, e, text in sorted(edits):
            if s < pos:
                raise RewriteError("overlapping edits")
            out += [self.text.data[pos:s], text]
            pos = e
        return b"".join([*out, self.text.data[pos:end]])

    def replace(self, node: ast.AST) -> bytes:
        """The new source of one use of the old name (a call is rewritten for the new signature)."""
        if isinstance(node, ast.Name):
            return self.api.new.encode()
        assert isinstance(node, ast.Call)
        starred = any(isinstance(a, ast.Starred) for a in node.args) or any(k.arg is None for k in node.keywords)
        if starred and self.api.change != "none":
            raise RewriteError(f"a call of {self.api.old} unpacks its arguments at line {node.lineno}")
        args = [self.render(a).decode() for a in node.args]
        keywords = tuple(self.render(k).decode() for k in node.keywords)
        return self.api.call(self.api.new, args, keywords).encode()


def _signature_edits(rw: _Rewriter, func: ast.FunctionDef) -> list[tuple[int, int, bytes]]:
    """Edits of the def line: its name, and its parameters for the signature change."""
    start, _ = rw.text.span(func)
    match = re.compile(rb"def\s+" + re.escape(rw.api.old.encode())).match(rw.text.data, start)
    if match is None:
        raise RewriteError("cannot find the def's name")
    edits = [(match.end() - len(rw.api.old.encode()), match.end(), rw.api.new.encode())]
    a = func.args
    spans = [rw.text.span(arg) for arg in a.args]
    defaults = [None] * (len(a.args) - len(a.defaults)) + list(a.defaults)
    spans = [(s, rw.text.span(d)[1] if d is not None else e) for (s, e), d in zip(spans, defaults, strict=True)]
    if rw.api.change == "kwonly":
        s = spans[rw.api.first_keyword][0]
        edits.append((s, s, b"*, "))
    elif rw.api.change == "swap":
        (s0, e0), (s1, e1) = spans[0], spans[1]
        edits += [(s0, e0, rw.text.data[s1:e1]), (s1, e1, rw.text.data[s0:e0])]
    return edits


_PROMPT = re.compile(r"^(?P<indent>[ \t]*)>>> ?(?P<src>.*?)(?P<end>\r?\n)?$")
_MORE = re.compile(r"^(?P<indent>[ \t]*)\.\.\.(?: (?P<src>.*?))?(?P<end>\r?\n)?$")


def _rewrite_snippet(source: str, api: ApiChange) -> str:
    """A doctest example's source with its calls of the old name rewritten."""
    rw = _Rewriter(source, api)
    edits = [(*rw.text.span(t), rw.replace(t)) for t in rw.targets(rw.tree)]
    return rw.splice(0, len(rw.text.data), edits).decode()


def rewrite_examples(text: str, api: ApiChange) -> str:
    """Rewrite the doctest examples in `text` that use the old name (examples that do not parse stay)."""
    lines = source_lines(text)
    out: list[str] = []
    i = 0
    while i < len(lines):
        m = _PROMPT.match(lines[i])
        if m is None:
            out.append(lines[i])
            i += 1
            continue
        j, parts = i + 1, [m["src"]]
        while j < len(lines) and (c := _MORE.match(lines[j])) and c["indent"] == m["indent"]:
            parts.append(c["src"] or "")
            j += 1
        source = "\n".join(parts)
        try:
            new = _rewrite_snippet(source, api) if re.search(rf"\b{re.escape(api.old)}\b", source) else source
        except (SyntaxError, RewriteError, ValueError):
            new = source
        if new == source:
            out += lines[i:j]
        else:
            end = m["end"] or ""
            new_lines = new.split("\n")
            out += [f"{m['indent']}>>> {new_lines[0]}{end}", *(f"{m['indent']}... {x}{end}" for x in new_lines[1:])]
        i = j
    return "".join(out)


def _check_bindings(tree: ast.Module, api: ApiChange) -> None:
    """Refuse modules that bind the old name other than by its one top-level def, or already use the new name."""
    for node in ast.walk(tree):
        binds = (
            (isinstance(node, ast.Name) and node.id == api.old and not isinstance(node.ctx, ast.Load))
            or (isinstance(node, ast.arg) and node.arg == api.old)
            or (isinstance(node, ast.alias) and (node.asname or node.name) == api.old)
            or (isinstance(node, ast.Global | ast.Nonlocal) and api.old in node.names)
            or (isinstance(node, ast.ClassDef | ast.AsyncFunctionDef) and node.name == api.old)
            or (isinstance(node, ast.FunctionDef) and node.name == api.old and node not in tree.body)
        )
        if binds:
            raise RewriteError(f"{api.old} is bound again at line {getattr(node, 'lineno', '?')}")
        if api.new != api.old and isinstance(node, ast.Name | ast.FunctionDef | ast.ClassDef | ast.arg):
            if getattr(node, "id", None) == api.new or getattr(node, "name", None) == api.new:
                raise RewriteError(f"{api.new} is already used in the module")
            if getattr(node, "arg", None) == api.new:
                raise RewriteError(f"{api.new} is already used in the module")


def rewrite_module(source: str, api: ApiChange) -> str:
    """The module with function `api.old` renamed, its signature changed, and every call (code and doctests) fixed.

    Raises RewriteError when the change cannot be carried through safely (the function is used as a value,
    called with unpacked arguments, or its signature does not allow the change)."""
    rw = _Rewriter(source, api)
    funcs = [n for n in rw.tree.body if isinstance(n, ast.FunctionDef) and n.name == api.old]
    if len(funcs) != 1 or not supports(funcs[0], api.change, api.first_keyword):
        raise RewriteError(f"{api.old} is not one top-level def whose signature allows {api.change!r}")
    _check_bindings(rw.tree, api)
    edits = _signature_edits(rw, funcs[0]) + [(*rw.text.span(t), rw.replace(t)) for t in rw.targets(rw.tree)]
    text = rewrite_examples(rw.splice(0, len(rw.text.data), edits).decode(), api)
    try:
        tree = ast.parse(text)
    except SyntaxError as exc:
        raise RewriteError(f"the rewritten module does not parse: {exc}") from exc
    if not any(isinstance(n, ast.FunctionDef) and n.name == api.new for n in tree.body):
        raise RewriteError("the rewritten module lacks the new def")
    return text
