"""Find Python functions that carry doctests, in the standard library or in folders/globs of .py files."""

from __future__ import annotations

import ast
import glob
import os
import sys
import sysconfig
from dataclasses import dataclass
from pathlib import Path

STDLIB_SKIP_DIRS = frozenset(
    {
        "test", "tests", "idlelib", "tkinter", "turtledemo", "ensurepip", "site-packages", "dist-packages",
        "lib2to3", "__pycache__", "lib-dynload", "pydoc_data", "distutils", "unittest", "asyncio",
        "concurrent", "multiprocessing", "urllib", "http", "xmlrpc", "wsgiref", "email", "sqlite3", "dbm",
        "curses", "venv", "__phello__", "encodings",
    }
)  # fmt: skip
"""Standard-library folders never scanned (tests, GUI, network, packaging, vendored code)."""

STDLIB_SKIP_MODULES = frozenset(
    {
        "antigravity", "this", "turtle", "webbrowser", "pydoc", "doctest", "pdb", "bdb", "code", "pty", "tty",
        "getpass", "ftplib", "smtplib", "smtpd", "imaplib", "poplib", "nntplib", "telnetlib", "socket",
        "socketserver", "ssl", "subprocess", "shutil", "tempfile", "os", "mailbox", "tarfile", "zipfile",
        "zipapp", "site", "sysconfig", "platform", "threading", "signal", "selectors", "asynchat", "asyncore",
        "cgi", "cgitb", "crypt", "uuid", "compileall", "py_compile", "trace", "tracemalloc", "profile",
        "cProfile", "timeit", "runpy", "pkgutil", "modulefinder", "filecmp", "fileinput", "glob", "netrc",
        "mailcap", "mimetypes", "shelve",
    }
)  # fmt: skip
"""Standard-library modules skipped: their doctests need the network, a GUI, the file system or a terminal."""

MAX_FILE_BYTES = 400_000
RESERVED_MODULE = "run_doctests"
"""The workspace's runner script; a module of that name would collide with it."""


@dataclass(frozen=True)
class SourceFile:
    """A module file usable as a single-file workspace, with the functions that carry doctests."""

    path: Path
    rel: str
    """Stable name: `<source label>/<path inside the source>`, e.g. `stdlib/statistics.py`."""
    module: str
    """Module name the workspace file is imported under (its file stem)."""
    text: str
    functions: tuple[str, ...]
    """Qualnames (`func`, `Class.method`) whose own docstring has doctest examples."""
    covered: tuple[str, ...]
    """The module's other functions: its doctests may still exercise them."""


def stdlib_root() -> Path:
    """The folder of Python's standard library."""
    return Path(sysconfig.get_paths()["stdlib"])


def _stdlib_files() -> list[tuple[str, Path]]:
    root = stdlib_root()
    out = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in STDLIB_SKIP_DIRS and not d.startswith("config-"))
        for name in sorted(files):
            if name.endswith(".py") and name[:-3] not in STDLIB_SKIP_MODULES:
                path = Path(folder, name)
                out.append((f"stdlib/{path.relative_to(root).as_posix()}", path))
    return out


def _glob_root(pattern: str) -> Path:
    parts = Path(pattern).parts
    for i, part in enumerate(parts):
        if glob.has_magic(part):
            return Path(*parts[:i]) if i else Path(".")
    return Path(pattern).parent


def _pattern_files(source: str) -> list[tuple[str, Path]]:
    path = Path(source)
    if path.is_dir():
        root, files = path, sorted(path.rglob("*.py"))
    elif path.is_file():
        root, files = path.parent, [path]
    else:
        root, files = _glob_root(source), sorted(Path(p) for p in glob.glob(source, recursive=True))
        if not files:
            raise FileNotFoundError(f"synth.sources: {source!r} is not 'stdlib', a folder, a .py file or a glob")
    label = root.resolve().name or "root"
    return [(f"{label}/{p.relative_to(root).as_posix()}", p) for p in files if p.suffix == ".py"]


def source_paths(sources: list[str]) -> list[tuple[str, Path]]:
    """(stable name, path) of every .py file named by `sources` (`stdlib`, folders, files or globs), sorted."""
    if not sources:
        raise ValueError("synth.sources is empty; use ['stdlib'] or folders/globs of .py files")
    seen: dict[str, Path] = {}
    for source in sources:
        for rel, path in _stdlib_files() if source == "stdlib" else _pattern_files(source):
            seen.setdefault(rel, path)
    return sorted(seen.items())


def _guarded(tree: ast.Module) -> set[int]:
    """ids of import nodes inside a `try` body (optional imports with a fallback)."""
    out: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Try):
            out.update(id(n) for stmt in node.body for n in ast.walk(stmt))
    return out


def _standalone(tree: ast.Module) -> bool:
    """True if every unguarded import is absolute and from the standard library."""
    guarded = _guarded(tree)
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                return False
            names = [node.module or ""]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        else:
            continue
        if id(node) not in guarded and any(n.split(".")[0] not in sys.stdlib_module_names for n in names):
            return False
    return True


def _has_examples(node: ast.AST) -> bool:
    return ">>>" in (ast.get_docstring(node, clean=False) or "")


def module_functions(tree: ast.Module) -> tuple[list[str], list[str]]:
    """Qualnames of top-level and class-level functions: (those with own `>>>` examples, the others)."""
    own: set[str] = set()
    other: set[str] = set()

    def visit(body: list[ast.stmt], prefix: str) -> None:
        for node in body:
            if isinstance(node, ast.ClassDef):
                visit(node.body, f"{prefix}{node.name}.")
            elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                doc = ast.get_docstring(node, clean=False)
                if len(node.body) > (1 if doc is not None else 0):
                    (own if _has_examples(node) else other).add(prefix + node.name)

    visit(tree.body, "")
    return sorted(own), sorted(other - own)


def _any_examples(tree: ast.Module) -> bool:
    kinds = (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)
    return any(isinstance(n, kinds) and _has_examples(n) for n in ast.walk(tree))


def load_source(rel: str, path: Path) -> SourceFile | None:
    """A SourceFile for `path`, or None if it cannot be a standalone workspace or has no doctest functions."""
    module = path.parent.name if path.name == "__init__.py" else path.stem
    if not module.isidentifier() or module == RESERVED_MODULE or path.stat().st_size > MAX_FILE_BYTES:
        return None
    try:
        text = path.read_text(encoding="utf-8")
        tree = ast.parse(text)
    except (SyntaxError, UnicodeDecodeError, ValueError):
        return None
    if not _standalone(tree):
        return None
    if not _any_examples(tree):
        return None
    own, other = module_functions(tree)
    return SourceFile(path, rel, module, text, tuple(own), tuple(other))


def discover(sources: list[str]) -> tuple[list[SourceFile], int]:
    """Usable source files with doctest functions, and how many .py files were scanned."""
    paths = source_paths(sources)
    files = [sf for rel, path in paths if (sf := load_source(rel, path)) is not None]
    return files, len(paths)
