"""Deduplicate tasks and screen them against HumanEval / MBPP code: normalised-AST hash and token n-gram overlap.

Normalised-AST hash (`normalized_ast_hash`): the function's tree without docstrings, annotations (argument and
return annotations; `x: T = v` becomes `x = v`, a bare `x: T` is dropped) and comments (never in the tree), every
identifier that is not a builtin (function name, arguments, locals, globals it reads) renamed `v0, v1, ...` in
order of appearance; builtins that the function does not rebind, attribute names, keyword-argument names and
constants are kept. So two functions differing only in names, formatting, comments or docstrings hash the same.

N-gram overlap: the `tokenize` tokens of the code (names, operators, strings and numbers as written; comments,
newlines, indentation and docstrings dropped), taken `n` at a time. A function is contaminated when the share of
its distinct n-grams found in ONE eval item's n-grams exceeds `max_overlap`. A function shorter than `n` tokens is
only checked by its hash. Docstrings are left out because task functions carry long doctest docstrings that would
dilute the share of copied code (prose overlap is the curate decontamination filter's job).

Eval items (`EvalCodeIndex`): the reference code of each item (HumanEval prompt + canonical_solution, MBPP `code`,
MBPP+ prompt + canonical_solution); its top-level functions and the methods of its top-level classes are hashed
(unless their normalised body has fewer than MIN_HASH_NODES nodes), and the n-grams of the whole code are indexed.
"""

from __future__ import annotations

import ast
import builtins
import hashlib
import io
import textwrap
import threading
import tokenize
import warnings
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from automixer.io import stable_hash

if TYPE_CHECKING:
    from automixer.config import EvalSetConfig
    from synth.draft import Draft
    from synth.task import Task

_BUILTINS = frozenset(dir(builtins))
_FUNCS = (ast.FunctionDef, ast.AsyncFunctionDef)
MIN_HASH_NODES = 8
"""Eval functions whose normalised body has fewer AST nodes (`return x**2`, `return helper(x)`) are not hashed:
such one-liners are everywhere and identify nothing."""
_SKIP_TOKENS = frozenset(getattr(tokenize, t) for t in ("COMMENT", "NL", "NEWLINE", "INDENT", "DEDENT", "ENDMARKER"))


def _parsed(source: str) -> tuple[str, ast.Module] | None:
    """(text, tree) of `source`, dedented if it only parses that way; None if it does not parse."""
    for text in (source, textwrap.dedent(source)):
        try:
            return text, ast.parse(text)
        except (SyntaxError, ValueError):
            continue
    return None


def _first_function(source: str) -> ast.FunctionDef | ast.AsyncFunctionDef | None:
    parsed = _parsed(source)
    return next((n for n in parsed[1].body if isinstance(n, _FUNCS)), None) if parsed else None


def _without_docstring(body: list[ast.stmt]) -> list[ast.stmt]:
    first = body[0] if body else None
    if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str):
        return body[1:]
    return body


def _bound_names(func: ast.AST) -> set[str]:
    """Names a function binds itself (so a parameter called `list` is renamed although `list` is a builtin)."""
    out: set[str] = set()
    for node in ast.walk(func):
        if isinstance(node, ast.arg):
            out.add(node.arg)
        elif isinstance(node, ast.Name) and not isinstance(node.ctx, ast.Load):
            out.add(node.id)
        elif isinstance(node, (*_FUNCS, ast.ClassDef, ast.ExceptHandler, ast.MatchAs, ast.MatchStar)) and node.name:
            out.add(node.name)
        elif isinstance(node, ast.alias):
            out.add(node.asname or node.name.split(".")[0])
    return out


class _Canonical(ast.NodeTransformer):
    """Strip docstrings and annotations; rename identifiers `v0, v1, ...` in order of appearance."""

    def __init__(self, bound: set[str]) -> None:
        self.bound, self.names = bound, {}

    def rename(self, name: str) -> str:
        if name in _BUILTINS and name not in self.bound:
            return name
        return self.names.setdefault(name, f"v{len(self.names)}")

    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> ast.AST:
        node.name = self.rename(node.name)
        node.returns, node.type_comment = None, None
        node.body = _without_docstring(node.body)
        return self.generic_visit(node)

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_ClassDef(self, node: ast.ClassDef) -> ast.AST:
        node.name = self.rename(node.name)
        node.body = _without_docstring(node.body)
        return self.generic_visit(node)

    def visit_arg(self, node: ast.arg) -> ast.AST:
        node.arg = self.rename(node.arg)
        node.annotation, node.type_comment = None, None
        return node

    def visit_Name(self, node: ast.Name) -> ast.AST:
        node.id = self.rename(node.id)
        return node

    def visit_AnnAssign(self, node: ast.AnnAssign) -> ast.AST | None:
        if node.value is None:
            return None
        return self.visit(ast.Assign(targets=[node.target], value=node.value))

    def visit_ExceptHandler(self, node: ast.ExceptHandler) -> ast.AST:
        node.name = self.rename(node.name) if node.name else None
        return self.generic_visit(node)

    def visit_Global(self, node: ast.Global | ast.Nonlocal) -> ast.AST:
        node.names = [self.rename(n) for n in node.names]
        return node

    visit_Nonlocal = visit_Global

    def visit_alias(self, node: ast.alias) -> ast.AST:
        node.asname = self.rename(node.asname) if node.asname else None
        return node

    def visit_MatchAs(self, node: ast.MatchAs | ast.MatchStar) -> ast.AST:
        node.name = self.rename(node.name) if node.name else None
        return self.generic_visit(node)

    visit_MatchStar = visit_MatchAs


def _node_hash(func: ast.FunctionDef | ast.AsyncFunctionDef) -> tuple[str, int]:
    """(normalised hash, body size in nodes) of a def node; the node is rewritten in place."""
    canon = _Canonical(_bound_names(func)).visit(func)
    size = sum(not isinstance(n, ast.expr_context) for stmt in canon.body for n in ast.walk(stmt))
    return hashlib.sha256(ast.dump(canon, include_attributes=False).encode()).hexdigest()[:16], size


def normalized_ast_hash(source: str) -> str | None:
    """Hash of the first function in `source`, blind to names, formatting, comments, docstrings and annotations."""
    func = _first_function(source)
    return _node_hash(func)[0] if func is not None else None


def _docstring_lines(tree: ast.Module) -> set[int]:
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, *_FUNCS)) and node.body:
            first = node.body[0]
            if _without_docstring(node.body) is not node.body:
                lines.update(range(first.lineno, (first.end_lineno or first.lineno) + 1))
    return lines


def code_tokens(source: str) -> list[str]:
    """The tokens n-grams are made of: names, operators, strings and numbers, without comments and docstrings."""
    parsed = _parsed(source)
    text, skip = (parsed[0], _docstring_lines(parsed[1])) if parsed else (source, set())
    out: list[str] = []
    try:
        for tok in tokenize.generate_tokens(io.StringIO(text).readline):
            if tok.type not in _SKIP_TOKENS and not (tok.type == tokenize.STRING and tok.start[0] in skip):
                out.append(tok.string)
    except (tokenize.TokenError, SyntaxError):
        pass
    return out


def ngrams(tokens: list[str], n: int) -> set[tuple[str, ...]]:
    """Distinct runs of `n` consecutive tokens."""
    return {tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)}


def item_functions(tree: ast.Module) -> list[ast.FunctionDef | ast.AsyncFunctionDef]:
    """Top-level functions and methods of top-level classes."""
    out = [n for n in tree.body if isinstance(n, _FUNCS)]
    for cls in (n for n in tree.body if isinstance(n, ast.ClassDef)):
        out += [n for n in cls.body if isinstance(n, _FUNCS)]
    return out


@dataclass(frozen=True)
class Match:
    """Why a function counts as contaminated: the eval item it matches and how."""

    eval_set: str
    eval_id: str
    kind: Literal["ast_hash", "ngram"]
    overlap: float
    """1.0 for an AST-hash match; else the share of the function's n-grams found in the item."""


class EvalCodeIndex:
    """AST hashes and code tokens of the reference code of HumanEval / MBPP items; n-gram indexes per `n`."""

    def __init__(self, sets: list[tuple[str, list[tuple[str, str]]]]) -> None:
        names = [name for name, _ in sets]
        if len(set(names)) != len(names):
            raise ValueError(f"eval set names must be unique, got {names}")
        self.refs: list[tuple[str, str]] = []
        """(eval set, item id) of each item, in file order."""
        self.hashes: dict[str, int] = {}
        """Normalised-AST hash -> index into `refs` of the first item defining such a function."""
        self.tokens: list[list[str]] = []
        self._grams: dict[int, dict[tuple[str, ...], list[int]]] = {}
        self._lock = threading.Lock()
        with warnings.catch_warnings():  # benchmark code has invalid escapes (`"\w"`): not our warnings to show
            warnings.simplefilter("ignore", (SyntaxWarning, DeprecationWarning))
            for name, items in sets:
                for item_id, code in items:
                    self._add(name, item_id, code)

    def _add(self, name: str, item_id: str, code: str) -> None:
        ref = len(self.refs)
        self.refs.append((name, item_id))
        parsed = _parsed(code)
        for func in item_functions(parsed[1]) if parsed else []:
            digest, size = _node_hash(func)
            if size >= MIN_HASH_NODES:
                self.hashes.setdefault(digest, ref)
        self.tokens.append(code_tokens(code))

    @classmethod
    def from_configs(cls, eval_sets: list[EvalSetConfig]) -> EvalCodeIndex:
        """Index the code eval sets named in the config (an empty list gives an empty index)."""
        from automixer.curate.decontam import load_eval_code

        loaded = [load_eval_code(e.path, None if e.format == "auto" else e.format, e.name) for e in eval_sets]
        return cls([(es.name, es.items) for es in loaded])

    def __len__(self) -> int:
        return len(self.refs)

    def grams(self, n: int) -> dict[tuple[str, ...], list[int]]:
        """n-gram -> indexes into `refs` of the items containing it (built once per `n`, thread-safe)."""
        with self._lock:
            if n not in self._grams:
                index: dict[tuple[str, ...], list[int]] = {}
                for ref, tokens in enumerate(self.tokens):
                    for gram in ngrams(tokens, n):
                        index.setdefault(gram, []).append(ref)
                self._grams[n] = index
            return self._grams[n]


@dataclass
class ScreenReport:
    """What screening found: functions checked, contaminated per eval set and kind, duplicates dropped."""

    functions_checked: int = 0
    contaminated: dict[str, dict[str, list[tuple[str, str]]]] = field(default_factory=dict)
    """eval set -> kind -> (task source, eval id) pairs."""
    duplicates: list[tuple[str, str]] = field(default_factory=list)
    """(dropped task, kept task it duplicates) pairs."""
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add_check(self, source: str, match: Match | None) -> None:
        """Count one checked function and its match, if any."""
        with self._lock:
            self.functions_checked += 1
            if match is not None:
                self.contaminated.setdefault(match.eval_set, {}).setdefault(match.kind, []).append(
                    (source, match.eval_id)
                )

    def add_duplicate(self, dropped: str, kept: str) -> None:
        """Count one dropped duplicate."""
        with self._lock:
            self.duplicates.append((dropped, kept))

    def to_dict(self) -> dict:
        """JSON-able summary with sorted pairs (stable for a fixed set of checks)."""
        with self._lock:
            per_set = {
                name: {kind: {"count": len(p), "pairs": [list(x) for x in sorted(p)]} for kind, p in sorted(k.items())}
                for name, k in sorted(self.contaminated.items())
            }
            return {
                "functions_checked": self.functions_checked,
                "contaminated_total": sum(len(p) for k in self.contaminated.values() for p in k.values()),
                "contaminated": per_set,
                "duplicates_dropped": len(self.duplicates),
                "duplicates": [list(x) for x in sorted(self.duplicates)],
            }


def _label(source: str, function_source: str) -> str:
    func = _first_function(function_source)
    return f"{source}::{func.name}" if func is not None else source


class Screen:
    """Decides whether a function copies an eval item (AST hash first, then n-gram overlap); keeps a report."""

    def __init__(self, index: EvalCodeIndex, ngram: int = 10, max_overlap: float = 0.5) -> None:
        if ngram < 1 or not 0 < max_overlap <= 1:
            raise ValueError(f"need ngram >= 1 and 0 < max_overlap <= 1, got {ngram}, {max_overlap}")
        self.index, self.n, self.max_overlap = index, ngram, max_overlap
        self.findings = ScreenReport()
        """Checks and matches so far (pass it to `Deduper` to count duplicates in the same report)."""

    def report(self) -> dict:
        """JSON-able summary of the findings (`ScreenReport.to_dict`)."""
        return self.findings.to_dict()

    def match(self, function_source: str) -> Match | None:
        """The eval item `function_source` copies, or None (pure: records nothing)."""
        if not len(self.index):
            return None
        digest = normalized_ast_hash(function_source)
        if digest is not None and digest in self.index.hashes:
            return Match(*self.index.refs[self.index.hashes[digest]], "ast_hash", 1.0)
        grams, index = ngrams(code_tokens(function_source), self.n), self.index.grams(self.n)
        counts: Counter[int] = Counter()
        for gram in grams:
            counts.update(index.get(gram, ()))
        if not counts:
            return None
        ref, shared = min(counts.items(), key=lambda kv: (-kv[1], kv[0]))
        overlap = shared / len(grams)
        return Match(*self.index.refs[ref], "ngram", round(overlap, 4)) if overlap > self.max_overlap else None

    def check(self, function_source: str, task_source: str = "") -> Match | None:
        """Like `match`, and count the check (and any match, as `task_source::function`) in `self.findings`."""
        found = self.match(function_source)
        self.findings.add_check(_label(task_source, function_source), found)
        return found


def scope_file(files: dict[str, str], module: str, function: str) -> str:
    """The workspace file defining `module`'s `function`."""
    from synth.mutate import find_function

    stem = module.replace(".", "/")
    for name in (f"{stem}.py", f"{stem}/__init__.py", f"{module}.py"):
        if name in files:
            return name
    for name in sorted(files):
        parsed = _parsed(files[name]) if name.endswith(".py") else None
        try:
            if parsed is not None and find_function(parsed[1], function):
                return name
        except KeyError:
            continue
    raise KeyError(f"no workspace file defines {module}.{function}")


def task_function_source(task: Task, fixed: bool = True) -> str:
    """Source of the task's function in the fixed (reference) workspace, or in the broken one."""
    from synth.render import function_source
    from synth.task import apply_patch

    files = task.files
    if fixed and task.gold_patch:
        files = apply_patch(files, task.gold_patch)
    return function_source(files[scope_file(files, task.module, task.function)], task.function)


def normalized_diff(patch: str) -> str:
    """The changed lines of a unified diff, whitespace-collapsed, without file names, line numbers or context."""
    lines = (line for line in patch.splitlines() if line[:1] in "+-" and not line.startswith(("+++ ", "--- ")))
    return "\n".join(line[0] + " ".join(line[1:].split()) for line in lines if line)


class Deduper:
    """Remembers task keys (reference function's normalised-AST hash + normalised gold diff); thread-safe."""

    def __init__(self, report: ScreenReport | None = None) -> None:
        self.report = report if report is not None else ScreenReport()
        self._first: dict[str, str] = {}
        self._labels: dict[str, deque[str]] = {}
        """Labels of items whose key was computed but not yet passed to `seen`, oldest first."""
        self._lock = threading.Lock()

    @staticmethod
    def key_of(function_source: str, gold_patch: str) -> str:
        """Key of a (reference function, gold diff) pair."""
        digest = normalized_ast_hash(function_source) or stable_hash("text", function_source)
        return stable_hash(digest, normalized_diff(gold_patch))

    def key(self, item: Task | Draft) -> str:
        """Key of a verified task or of a draft (its diff is computed broken -> fixed)."""
        from synth.render import function_source
        from synth.task import make_patch

        is_task = hasattr(item, "gold_patch")
        patch = item.gold_patch if is_task else make_patch(item.broken, item.fixed)
        try:
            ref = task_function_source(item) if is_task else function_source(item.fixed[item.scope_file], item.function)
        except (KeyError, ValueError, SyntaxError):  # no reference function to hash: the diff alone decides
            ref = ""
        key = self.key_of(ref, patch)
        with self._lock:
            self._labels.setdefault(key, deque()).append(f"{item.source_path}::{item.function}")
        return key

    def seen(self, key: str) -> bool:
        """True if `key` was seen before (the item is a duplicate, counted in the report); else remember it."""
        with self._lock:
            pending = self._labels.get(key)
            label = pending.popleft() if pending else key
            if pending is not None and not pending:
                del self._labels[key]
            if key not in self._first:
                self._first[key] = label
                return False
            kept = self._first[key]
        self.report.add_duplicate(label, kept)
        return True
