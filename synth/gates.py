"""The policy of verification: which tests are stable across runs, and how strong the kept tests are.

The verifier (`synth.verify.Verifier`) runs the sandbox; this module decides from the outcomes: a test is stable
when its status is the same in every shuffled, re-seeded run, and the test-strength gate scores the kept tests by
the share of fresh mutants of the reference function they kill.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from synth.mutate import OPERATORS, Mutation, MutationError, count_sites, mutate_at


@dataclass(frozen=True)
class GateConfig:
    """How hard the verifier checks a draft."""

    runs: int = 3
    """Runs of each state (fixed, broken); run i uses `--shuffle i+1` and PYTHONHASHSEED i+1."""
    min_score: float = 0.8
    """Test-strength gate: the kept tests must kill at least this share of the fresh mutants."""
    mutants: int = 10
    """Fresh mutants of the reference function per gate (fewer when the function has fewer sites)."""
    seed: int = 0
    """Seed of the gate's mutant choice (combined with the function's name)."""

    def __post_init__(self) -> None:
        if self.runs < 1 or self.mutants < 1 or not 0.0 <= self.min_score <= 1.0:
            raise ValueError(f"invalid gate config: {self}")


@dataclass(frozen=True)
class Outcomes:
    """Tests split by how they behaved over several runs."""

    passed: tuple[str, ...]
    """Passed in every run."""
    failed: tuple[str, ...]
    """Did not pass in any run."""
    flaky: tuple[str, ...]
    """Passed in some runs only."""


@dataclass(frozen=True)
class GateResult:
    """Outcome of the test-strength gate."""

    score: float
    """killed / total."""
    total: int
    killed: int
    reference_passes: bool = True
    """Whether the unmutated reference passes the kept tests under the task's exact (unshuffled) command."""


def split_outcomes(runs: list[Mapping[str, str]], ids: Iterable[str]) -> Outcomes:
    """Split `ids` by their statuses over `runs` (a status absent from a run counts as not passing)."""
    passed, failed, flaky = [], [], []
    for test_id in sorted(set(ids)):
        hits = sum(run.get(test_id) == "pass" for run in runs)
        (passed if hits == len(runs) else failed if hits == 0 else flaky).append(test_id)
    return Outcomes(tuple(passed), tuple(failed), tuple(flaky))


def gate_seed(seed: int, function: str) -> int:
    """The seed of one function's gate mutants."""
    return int.from_bytes(hashlib.sha256(f"gate\0{seed}\0{function}".encode()).digest()[:8], "big")


def gate_mutants(source: str, function: str, count: int, seed: int) -> list[Mutation]:
    """Up to `count` distinct valid mutants of `function`, spread over every operator in a seeded order."""
    rng = random.Random(gate_seed(seed, function))
    sites: dict[str, list[int]] = {}
    for op in sorted(OPERATORS):
        indices = list(range(count_sites(source, function, op)))
        rng.shuffle(indices)
        sites[op] = indices
    order = sorted(sites)
    rng.shuffle(order)
    out: list[Mutation] = []
    seen = {source}
    while len(out) < count and any(sites.values()):
        for op in order:  # one site per operator per round, so no single operator dominates the gate
            if not sites[op] or len(out) >= count:
                continue
            try:
                mutation = mutate_at(source, function, op, sites[op].pop())
            except MutationError:
                continue
            if mutation.source not in seen:
                seen.add(mutation.source)
                out.append(mutation)
    return out


def score(killed: list[bool], reference_passes: bool = True) -> GateResult:
    """The gate result from which mutants the tests killed."""
    n = sum(killed)
    return GateResult(n / len(killed) if killed else 0.0, len(killed), n, reference_passes)
