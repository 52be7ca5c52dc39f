"""The sweep design: mixtures sampled from a Dirichlet around the natural token distribution."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from automixer.io import read_structured, write_text_atomic

MAX_REJECTS_IN_A_ROW = 5000


def _base_distribution(natural: dict[str, float], floor: float) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Domains, the normalised natural distribution, and the floored Dirichlet base measure."""
    if len(natural) < 2:
        raise ValueError(f"a mixture needs at least two domains, got {list(natural)}")
    domains = list(natural)
    p = np.array([float(natural[d]) for d in domains])
    if not np.all(np.isfinite(p)) or np.any(p < 0) or p.sum() <= 0:
        raise ValueError(f"natural token counts must be finite, non-negative and not all zero: {natural}")
    p = p / p.sum()
    base = np.maximum(p, floor)
    return domains, p, base / base.sum()


def _run_id(i: int, n: int) -> str:
    return f"run-{i:0{max(3, len(str(n - 1)))}d}"


def sample_mixtures(
    natural: dict[str, float],
    n: int,
    concentration: float,
    min_weight: float,
    seed: int,
    floor: float = 0.05,
    spread: float = 3.0,
    min_distance: float = 0.02,
) -> list[dict]:
    """Sample `n` mixtures (the natural one first) from a Dirichlet around the natural distribution.

    Each sample draws its own concentration log-uniformly in [concentration/spread, concentration*spread]
    (RegMix-style: some samples stay near natural, some go to the corners); the Dirichlet parameter is
    that concentration times the number of domains times the base measure, which is the natural
    distribution with every domain raised to at least `floor` and renormalised, so a domain with a tiny
    share of tokens (e.g. synthetic) still gets explored. The mean of the samples is the base measure.
    Weights are mapped affinely onto `min_weight + (1 - K*min_weight) * w`, so every weight is at least
    `min_weight` and sums stay 1 (the natural mixture goes through the same map). A sample within
    L1 distance `min_distance` of an accepted one is rejected. Deterministic for `seed`.
    """
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    if concentration <= 0 or spread < 1:
        raise ValueError(f"concentration must be > 0 and spread >= 1, got {concentration}, {spread}")
    domains, p, base = _base_distribution(natural, floor)
    k = len(domains)
    if min_weight < 0 or k * min_weight >= 1:
        raise ValueError(f"min_weight={min_weight} is infeasible for {k} domains (need 0 <= min_weight < 1/{k})")
    free = 1.0 - k * min_weight
    rng = np.random.default_rng(seed)
    accepted = np.empty((n, k))
    accepted[0] = min_weight + free * p
    count, rejects = 1, 0
    while count < n:
        if rejects > MAX_REJECTS_IN_A_ROW:
            raise ValueError(
                f"could only sample {count} of {n} distinct mixtures (min_distance={min_distance}); "
                "lower n or min_distance, or raise the spread"
            )
        c = concentration * math.exp(rng.uniform(-math.log(spread), math.log(spread)))
        w = rng.dirichlet(np.maximum(c * k * base, 1e-3))
        if not np.all(np.isfinite(w)) or abs(w.sum() - 1.0) > 1e-6:
            rejects += 1
            continue
        w = min_weight + free * (w / w.sum())
        if np.abs(accepted[:count] - w).sum(axis=1).min() < min_distance:
            rejects += 1
            continue
        accepted[count] = w
        count, rejects = count + 1, 0
    return [{"run_id": _run_id(i, n), "weights": _as_weights(domains, w, min_weight)} for i, w in enumerate(accepted)]


def _as_weights(domains: list[str], w: np.ndarray, min_weight: float) -> dict[str, float]:
    """A weight dict whose values are >= min_weight and sum to 1 up to float rounding."""
    w = np.maximum(w, min_weight)
    i = int(np.argmax(w))
    w[i] += 1.0 - w.sum()
    return {d: float(x) for d, x in zip(domains, w, strict=True)}


def write_design(design: list[dict], path: str | Path) -> Path:
    """Write a design (list of `{"run_id", "weights"}`) as JSON, atomically, keeping domain order."""
    _check_design(design, str(path))
    return write_text_atomic(path, json.dumps(design, indent=2) + "\n")


def read_design(path: str | Path) -> list[dict]:
    """Read a design written by `write_design`, checking its shape."""
    path = Path(path)
    design = read_structured(path, "sweep design", "run `automixer sweep` to create it")
    _check_design(design, str(path))
    return design


def _check_design(design: object, where: str) -> None:
    if not isinstance(design, list) or not design:
        raise ValueError(f"{where}: a design must be a non-empty list of runs")
    seen: set[str] = set()
    for i, run in enumerate(design):
        if not isinstance(run, dict) or not isinstance(run.get("weights"), dict) or "run_id" not in run:
            raise ValueError(f"{where}: run {i} must be an object with `run_id` and `weights`")
        if run["run_id"] in seen:
            raise ValueError(f"{where}: duplicate run_id {run['run_id']!r}")
        seen.add(run["run_id"])
        total = sum(run["weights"].values())
        if abs(total - 1.0) > 1e-6 or min(run["weights"].values()) < 0:
            raise ValueError(f"{where}: weights of {run['run_id']} must be >= 0 and sum to 1, got sum {total}")
