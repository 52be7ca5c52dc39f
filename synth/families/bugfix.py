"""The bug-fix family: one AST mutation of a real function that its module's doctests catch."""

from __future__ import annotations

import ast
import random
from collections.abc import Iterator
from typing import TYPE_CHECKING

from automixer.io import stable_hash
from synth.draft import Candidate, Draft
from synth.mutate import OPERATORS, MutationError, find_function, mutate

if TYPE_CHECKING:
    from automixer.config import SynthConfig
    from synth.discover import SourceFile

FAMILY = "bugfix"


def statement_count(source: str, qualname: str) -> int:
    """Statements in a function's body (nested ones included, the docstring not): the complexity gate's measure."""
    func = find_function(ast.parse(source), qualname)
    body = func.body[1:] if ast.get_docstring(func, clean=False) is not None else func.body
    return sum(isinstance(n, ast.stmt) for stmt in body for n in ast.walk(stmt))


def _draft(sf: SourceFile, qualname: str, op: str, seed: int, mutated: str, description: str) -> Draft:
    name = f"{sf.module}.py"
    return Draft(
        family=FAMILY, source_path=sf.rel, repo=sf.repo, commit=sf.commit, module=sf.module, function=qualname,
        operators=(op,), seed=seed, description=description, broken={name: mutated}, fixed={name: sf.text},
        targets=(name,), scope_file=name,
    )  # fmt: skip


def _function_candidates(sf: SourceFile, qualname: str, seed: int, cfg: SynthConfig) -> Iterator[Candidate]:
    """Up to `cfg.mutants_per_function` distinct mutants of one function, trying operators in a seeded order."""
    base = f"{sf.rel}::{qualname}"
    if statement_count(sf.text, qualname) < cfg.min_statements:
        yield Candidate(FAMILY, f"{base}::gate", "complexity_gate", lambda: "too_simple")
        return
    rng = random.Random(int(stable_hash(str(seed), sf.rel, qualname), 16))
    ops = list(OPERATORS)
    rng.shuffle(ops)
    seen: set[str] = set()
    made = 0
    for attempt in range(2 * len(ops)):
        if made >= cfg.mutants_per_function:
            return
        op, mseed = ops[attempt % len(ops)], rng.randrange(2**31)
        key = f"{base}::{op}::{mseed}"
        try:
            mutation = mutate(sf.text, qualname, op, mseed)
        except MutationError:
            yield Candidate(FAMILY, key, op, lambda: "syntax_error")
            continue
        if mutation is None or mutation.source in seen:
            continue
        seen.add(mutation.source)
        made += 1
        draft = _draft(sf, qualname, op, mseed, mutation.source, mutation.description)
        yield Candidate(FAMILY, key, op, lambda d=draft: d)


def candidates(files: list[SourceFile], cfg: SynthConfig, seed: int) -> Iterator[Candidate]:
    """Bug-fix candidates in a seeded order: functions with their own doctests first, then those they exercise."""
    for tier, attr in ((0, "functions"), (1, "covered")):
        units = [(sf, q) for sf in files for q in getattr(sf, attr)]
        random.Random(int(stable_hash(str(seed), f"tier{tier}"), 16)).shuffle(units)
        for sf, qualname in units:
            yield from _function_candidates(sf, qualname, seed, cfg)


FAMILIES = {FAMILY: candidates}
