"""Thread-safe `ast.parse` for CPython versions whose AST conversion is not (the synth thread pool parses in parallel).

CPython 3.11 keeps one recursion-depth counter per interpreter while it converts a parsed tree into Python
objects; two threads parsing at once can trip `SystemError: AST constructor recursion depth mismatch`
(python/cpython#106905). `install()` wraps `ast.parse` (which `ast.literal_eval` also uses) in one lock.
"""

from __future__ import annotations

import ast
import threading

_LOCK = threading.Lock()
_ORIGINAL = ast.parse


def _locked_parse(*args, **kwargs):  # noqa: ANN002, ANN003 - same signature as ast.parse
    with _LOCK:
        return _ORIGINAL(*args, **kwargs)


def install() -> None:
    """Make `ast.parse` (and `ast.literal_eval`) safe to call from several threads; idempotent."""
    if ast.parse is not _locked_parse:
        _locked_parse.__doc__ = _ORIGINAL.__doc__
        ast.parse = _locked_parse
