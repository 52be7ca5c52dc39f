"""Find Python functions that carry doctests, in the standard library or in folders/globs of .py files."""

from __future__ import annotations

import ast
import glob
import gzip
import json
import os
import platform
import sys
import sysconfig
from collections.abc import Iterator
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
RESERVED_MODULES = frozenset({"run_tests", "run_doctests", "label", "conftest"})
"""Names of scripts synth writes into workspaces; a module of that name would collide with them."""


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
    repo: str = ""
    """Repository the file comes from (`stdlib` for the standard library; `` for a local folder)."""
    commit: str = ""
    """Commit of that repository (the Python version for `stdlib`; `` when unknown)."""


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


def _is_corpus(source: str) -> bool:
    return source.endswith((".jsonl", ".jsonl.gz"))


def source_paths(sources: list[str]) -> list[tuple[str, Path]]:
    """(stable name, path) of every .py file named by `sources` (`stdlib`, folders, files or globs), sorted.

    JSONL corpora are listed as one entry each, under their own file name."""
    if not sources:
        raise ValueError("synth.sources is empty; use ['stdlib'], folders/globs of .py files or JSONL corpora")
    seen: dict[str, Path] = {}
    for source in sources:
        if _is_corpus(source):
            path = Path(source)
            if not path.is_file():
                raise FileNotFoundError(f"synth.sources: corpus {source!r} does not exist")
            seen.setdefault(f"corpus:{path.name}", path)
            continue
        for rel, path in _stdlib_files() if source == "stdlib" else _pattern_files(source):
            seen.setdefault(rel, path)
    return sorted(seen.items())


def _corpus_records(path: Path) -> Iterator[tuple[str, str, str, str]]:
    """(rel, repo, commit, text) of the Python files in a JSONL(.gz) corpus of `{repo, path, commit, text}`."""
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
                rel_path, text = rec["path"], rec["text"]
            except (json.JSONDecodeError, KeyError, TypeError) as exc:
                raise ValueError(f"{path}:{n}: not a `{{repo, path, commit, text}}` record ({exc})") from exc
            if rel_path.endswith(".py") and isinstance(text, str):
                repo = str(rec.get("repo") or path.name)
                yield f"{repo}/{rel_path}", repo, str(rec.get("commit") or ""), text


def source_texts(sources: list[str]) -> list[tuple[str, str, str, str, Path]]:
    """(rel, repo, commit, text, origin path) of every Python source named by `sources`, sorted by rel."""
    out: dict[str, tuple[str, str, str, str, Path]] = {}
    python = platform.python_version()
    for rel, path in source_paths(sources):
        if rel.startswith("corpus:"):
            for crel, repo, commit, text in _corpus_records(path):
                out.setdefault(crel, (crel, repo, commit, text, path))
            continue
        if path.stat().st_size > MAX_FILE_BYTES:
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue
        repo, commit = ("stdlib", python) if rel.startswith("stdlib/") else ("", "")
        out.setdefault(rel, (rel, repo, commit, text, path))
    return [out[k] for k in sorted(out)]


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
    if path.stat().st_size > MAX_FILE_BYTES:
        return None
    try:
        text = path.read_text(encoding="utf-8")
    except (UnicodeDecodeError, OSError):
        return None
    return source_from_text(rel, text, path)


def source_from_text(rel: str, text: str, path: Path, repo: str = "", commit: str = "") -> SourceFile | None:
    """A SourceFile for one module's text, or None if it cannot be a standalone workspace or has no doctests."""
    name = rel.rsplit("/", 1)[-1]
    module = rel.rsplit("/", 2)[-2] if name == "__init__.py" and "/" in rel else name.removesuffix(".py")
    if not module.isidentifier() or module in RESERVED_MODULES:
        return None
    if repo != "stdlib" and module in sys.stdlib_module_names:
        return None  # would shadow the standard-library module of that name inside the workspace
    if len(text.encode("utf-8", errors="replace")) > MAX_FILE_BYTES:
        return None
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError):
        return None
    if not _standalone(tree):
        return None
    if not _any_examples(tree):
        return None
    own, other = module_functions(tree)
    return SourceFile(path, rel, module, text, tuple(own), tuple(other), repo, commit)


def discover(sources: list[str]) -> tuple[list[SourceFile], int]:
    """Usable source files with doctest functions, and how many .py files were scanned."""
    texts = source_texts(sources)
    files = [sf for rel, repo, commit, text, path in texts if (sf := source_from_text(rel, text, path, repo, commit))]
    return files, len(texts)
