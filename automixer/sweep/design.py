"""The sweep design: mixtures sampled from a Dirichlet around the natural token distribution.

Samples respect per-domain caps (the proposal's max weights and repetition caps) exactly, may come from a
scrambled Sobol sequence instead of independent draws (better coverage for the same number of runs), and a
few anchor mixtures are repeated with other proxy seeds to measure run-to-run noise.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from automixer.io import read_structured, write_text_atomic

MAX_REJECTS_IN_A_ROW = 5000
SAMPLERS = ("dirichlet", "sobol")
"""`dirichlet`: independent draws; `sobol`: scrambled Sobol points through the Dirichlet's inverse CDF."""
REPLICATE_SEED_STRIDE = 1000
"""Replicate k of an anchor trains with seed `anchor seed + k * REPLICATE_SEED_STRIDE`: far from the
`seed + 1` a diverged retry reseeds to, so a replicate never repeats its anchor's run."""
_SOBOL_BLOCK = 64


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


def cap_bounds(domains: list[str], caps: dict[str, float] | None, min_weight: float) -> np.ndarray:
    """Upper bound per domain (1 where uncapped); a ValueError naming the domains when no mixture fits."""
    caps = caps or {}
    unknown = sorted(set(caps) - set(domains))
    if unknown:
        raise ValueError(f"caps name unknown domain(s) {unknown}; domains are {domains}")
    hi = np.array([min(1.0, float(caps.get(d, 1.0))) for d in domains])
    low = {d: float(h) for d, h in zip(domains, hi, strict=True) if h < min_weight}
    if low:
        raise ValueError(f"caps {low} are below the sweep's min_weight={min_weight:g}: lower min_weight or the caps")
    if hi.sum() < 1.0 - 1e-12:
        named = {d: float(h) for d, h in zip(domains, hi, strict=True)}
        raise ValueError(f"caps {named} allow at most {hi.sum():.4g} < 1 of the total weight: raise the caps")
    return hi


def project_to_caps(w: np.ndarray, hi: np.ndarray, min_weight: float = 0.0) -> np.ndarray:
    """`w` (summing to 1, every weight >= min_weight) moved under the caps `hi`, deterministically.

    Weights above their cap are clipped and the excess goes to the domains below their cap in proportion
    to their weight above `min_weight` (so the free domains keep their relative shape); repeated until no
    weight is over its cap, at most once per domain. Needs `hi.sum() >= 1` (see `cap_bounds`).
    """
    w = np.asarray(w, dtype=float).copy()
    for _ in range(len(w)):
        over = w > hi
        if not over.any():
            break
        excess = float((w[over] - hi[over]).sum())
        w[over] = hi[over]
        free = w < hi
        share = np.where(free, w - min_weight, 0.0)
        if share.sum() <= 0:
            share = free * (hi - w)
        w += excess * share / share.sum()
    return np.minimum(w, hi)


def _sobol_points(d: int, seed: int) -> Iterator[np.ndarray]:
    """Endless points of a scrambled Sobol sequence in [0, 1)^d, in blocks of a power of two."""
    from scipy.stats import qmc

    engine = qmc.Sobol(d, scramble=True, seed=np.random.default_rng(seed))
    while True:
        yield from engine.random(_SOBOL_BLOCK)


def _draws(sampler: str, base: np.ndarray, concentration: float, spread: float, seed: int) -> Iterator[np.ndarray]:
    """Endless raw Dirichlet draws around `base`, each with its own log-uniform concentration."""
    k, log_s = len(base), math.log(spread)
    if sampler == "dirichlet":
        rng = np.random.default_rng(seed)
        while True:
            c = concentration * math.exp(rng.uniform(-log_s, log_s))
            yield rng.dirichlet(np.maximum(c * k * base, 1e-3))
    from scipy.stats import gamma

    for u in _sobol_points(k + 1, seed):  # u[0]: the concentration; u[1:]: one gamma per domain
        c = concentration * math.exp((2.0 * u[0] - 1.0) * log_s)
        g = gamma.ppf(u[1:], np.maximum(c * k * base, 1e-3))
        yield g / g.sum() if g.sum() > 0 else np.full(k, np.nan)


def sample_mixtures(
    natural: dict[str, float],
    n: int,
    concentration: float,
    min_weight: float,
    seed: int,
    floor: float = 0.05,
    spread: float = 3.0,
    min_distance: float = 0.02,
    caps: dict[str, float] | None = None,
    sampler: str = "dirichlet",
) -> list[dict]:
    """Sample `n` mixtures (the natural one first) from a Dirichlet around the natural distribution.

    Each sample draws its own concentration log-uniformly in [concentration/spread, concentration*spread]
    (RegMix-style: some samples stay near natural, some go to the corners); the Dirichlet parameter is
    that concentration times the number of domains times the base measure, which is the natural
    distribution with every domain raised to at least `floor` and renormalised, so a domain with a tiny
    share of tokens (e.g. synthetic) still gets explored. The mean of the samples is the base measure.
    Weights are mapped affinely onto `min_weight + (1 - K*min_weight) * w`, so every weight is at least
    `min_weight` and sums stay 1 (the natural mixture goes through the same map), then projected under
    `caps` ({domain: max weight}, see `project_to_caps`; the natural mixture stays as it is, the
    reference). A sample within L1 distance `min_distance` of an accepted one is rejected. `sampler`
    `sobol` takes scrambled Sobol points through the inverse CDFs (one dimension for the concentration,
    one gamma per domain) instead of independent draws. Deterministic for `seed`.
    """
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    if concentration <= 0 or spread < 1:
        raise ValueError(f"concentration must be > 0 and spread >= 1, got {concentration}, {spread}")
    if sampler not in SAMPLERS:
        raise ValueError(f"sampler must be one of {SAMPLERS}, got {sampler!r}")
    domains, p, base = _base_distribution(natural, floor)
    k = len(domains)
    if min_weight < 0 or k * min_weight >= 1:
        raise ValueError(f"min_weight={min_weight} is infeasible for {k} domains (need 0 <= min_weight < 1/{k})")
    hi = cap_bounds(domains, caps, min_weight)
    first = min_weight + (1.0 - k * min_weight) * p
    draws = _draws(sampler, base, concentration, spread, seed)
    accepted = _accept(first, draws, n, min_distance, hi, min_weight)
    ones = np.ones(k)
    return [
        {"run_id": _run_id(i, n), "weights": _as_weights(domains, w, min_weight, ones if i == 0 else hi)}
        for i, w in enumerate(accepted)
    ]


def _accept(
    first: np.ndarray, draws: Iterator[np.ndarray], n: int, min_distance: float, hi: np.ndarray, min_weight: float
) -> np.ndarray:
    """`first` and then draws mapped above `min_weight`, under the caps, each at least `min_distance` from the rest."""
    free = 1.0 - len(first) * min_weight
    accepted = np.empty((n, len(first)))
    accepted[0] = first
    count, rejects = 1, 0
    while count < n:
        if rejects > MAX_REJECTS_IN_A_ROW:
            raise ValueError(
                f"could only sample {count} of {n} distinct mixtures (min_distance={min_distance}); "
                "lower n or min_distance, or raise the spread"
            )
        w = next(draws)
        if not np.all(np.isfinite(w)) or abs(w.sum() - 1.0) > 1e-6:
            rejects += 1
            continue
        w = project_to_caps(min_weight + free * (w / w.sum()), hi, min_weight)
        if np.abs(accepted[:count] - w).sum(axis=1).min() < min_distance:
            rejects += 1
            continue
        accepted[count] = w
        count, rejects = count + 1, 0
    return accepted


def _as_weights(domains: list[str], w: np.ndarray, min_weight: float, hi: np.ndarray) -> dict[str, float]:
    """A weight dict whose values lie in [min_weight, hi] and sum to 1 up to float rounding."""
    w = np.clip(w, min_weight, hi)
    resid = 1.0 - w.sum()
    i = int(np.argmax(w))
    if not min_weight <= w[i] + resid <= hi[i]:  # the largest weight is at its cap: use the one with most room
        i = int(np.argmax(hi - w if resid > 0 else w - min_weight))
    w[i] = min(w[i] + resid, hi[i])
    return {d: float(x) for d, x in zip(domains, w, strict=True)}


def replicate_seed(seed: int, k: int) -> int:
    """The proxy seed of replicate `k` (1-based) of an anchor whose own seed is `seed`."""
    return seed + k * REPLICATE_SEED_STRIDE


def add_anchor_replicates(design: list[dict], anchors: int, anchor_seeds: int, seed: int) -> list[dict]:
    """The design plus `anchor_seeds - 1` replicates of each of its first `anchors` runs (natural first).

    Replicate k of run `<id>` is `<id>-s<k>`: the same weights, `seed` = `replicate_seed(anchor seed, k)`
    (an item's seed defaults to the sweep's `seed`) and `replicate_of` = `<id>`; they are appended after
    every other item. Replicates already in the design are kept, not added twice.
    """
    if anchors < 0 or anchor_seeds < 1:
        raise ValueError(f"anchors must be >= 0 and anchor_seeds >= 1, got {anchors}, {anchor_seeds}")
    originals = [item for item in design if "replicate_of" not in item]
    if anchors > len(originals):
        raise ValueError(f"anchors ({anchors}) exceeds the {len(originals)} runs of the design")
    have = {item["run_id"] for item in design}
    extra = []
    for item in originals[:anchors]:
        for k in range(1, anchor_seeds):
            rep = {
                "run_id": f"{item['run_id']}-s{k}",
                "weights": dict(item["weights"]),
                "seed": replicate_seed(int(item.get("seed", seed)), k),
                "replicate_of": item["run_id"],
            }
            if "round" in item:
                rep["round"] = item["round"]
            if rep["run_id"] not in have:
                extra.append(rep)
    return [*design, *extra]


def write_design(design: list[dict], path: str | Path) -> Path:
    """Write a design (list of `{"run_id", "weights"}` plus optional keys) as JSON, atomically, keeping order."""
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
        for key in ("seed", "round"):
            if key in run and (not isinstance(run[key], int) or isinstance(run[key], bool)):
                raise ValueError(f"{where}: `{key}` of {run['run_id']} must be an integer, got {run[key]!r}")
    ids = {run["run_id"] for run in design}
    orphans = sorted(r["run_id"] for r in design if "replicate_of" in r and r["replicate_of"] not in ids)
    if orphans:
        raise ValueError(f"{where}: the run(s) that {orphans} replicate (`replicate_of`) are not in the design")
