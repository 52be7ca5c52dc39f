"""`synth.astsafe.install` serialises `ast.parse` (and so `ast.literal_eval`) across the synth thread pool."""

from __future__ import annotations

import ast
from concurrent.futures import ThreadPoolExecutor

from synth import astsafe


def test_install_routes_parse_through_one_lock_and_keeps_results() -> None:
    source = "def f(x):\n    return [x, {'a': (1, 2)}]\n"
    before = ast.dump(ast.parse(source))
    astsafe.install()
    astsafe.install()  # idempotent
    assert ast.parse is astsafe._locked_parse
    assert ast.dump(ast.parse(source)) == before
    assert ast.literal_eval("[1, {'a': (2, 3)}]") == [1, {"a": (2, 3)}]
    inside: list[bool] = []
    original = astsafe._ORIGINAL

    def spy(*args, **kwargs):
        inside.append(astsafe._LOCK.locked())
        return original(*args, **kwargs)

    astsafe._ORIGINAL = spy
    try:
        with ThreadPoolExecutor(4) as pool:
            list(pool.map(lambda _: ast.literal_eval("(1, 2)"), range(20)))
    finally:
        astsafe._ORIGINAL = original
    assert len(inside) == 20 and all(inside)
