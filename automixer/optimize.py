"""Minimise any predictor over the simplex with per-domain bounds."""

from __future__ import annotations

import warnings
from collections.abc import Callable

import numpy as np

BOUND_TOL = 1e-12


def check_bounds(domains: list[str], lower: dict[str, float], upper: dict[str, float]) -> tuple[np.ndarray, np.ndarray]:
    """Bound arrays in domain order (missing: 0 and 1); a ValueError naming any conflict."""
    for name, bounds in (("min_weight", lower), ("max_weight", upper)):
        unknown = sorted(set(bounds) - set(domains))
        if unknown:
            raise ValueError(f"{name} names unknown domain(s) {unknown}; domains are {domains}")
    lo = np.array([float(lower.get(d, 0.0)) for d in domains])
    hi = np.array([float(upper.get(d, 1.0)) for d in domains])
    for d, a, b in zip(domains, lo, hi, strict=True):
        if not 0.0 <= a <= b <= 1.0:
            raise ValueError(f"bounds of {d} must satisfy 0 <= min_weight <= max_weight <= 1, got [{a}, {b}]")
    if lo.sum() > 1.0 + BOUND_TOL:
        parts = ", ".join(f"{d}={lower[d]:g}" for d in domains if lower.get(d, 0.0) > 0)
        raise ValueError(f"min_weight sums to {lo.sum():.6g} > 1: {parts}")
    if hi.sum() < 1.0 - BOUND_TOL:
        parts = ", ".join(f"{d}={b:g}" for d, b in zip(domains, hi, strict=True))
        raise ValueError(f"max_weight sums to {hi.sum():.6g} < 1: {parts}")
    return lo, hi


def project(V: np.ndarray, lo: np.ndarray, hi: np.ndarray, iters: int = 100) -> np.ndarray:
    """Euclidean projection of each row onto {lo <= w <= hi, sum w = 1}, made exactly feasible."""
    V = np.atleast_2d(np.asarray(V, dtype=float))
    a = (V - hi).min(axis=1)  # tau here puts every coordinate at hi: sum >= 1
    b = (V - lo).max(axis=1)  # tau here puts every coordinate at lo: sum <= 1
    for _ in range(iters):
        mid = 0.5 * (a + b)
        over = np.clip(V - mid[:, None], lo, hi).sum(axis=1) > 1.0
        a = np.where(over, mid, a)
        b = np.where(over, b, mid)
    W = np.clip(V - (0.5 * (a + b))[:, None], lo, hi)
    return np.array([_fix_sum(w, lo, hi) for w in W])


def _fix_sum(w: np.ndarray, lo: np.ndarray, hi: np.ndarray, snap: float = 1e-9) -> np.ndarray:
    """Snap values within `snap` of a bound onto it, then put the sum's residual on free coordinates."""
    w = np.where(np.abs(w - lo) <= snap, lo, np.where(np.abs(w - hi) <= snap, hi, w))
    for _ in range(len(w)):
        r = 1.0 - w.sum()
        if r == 0.0:
            break
        room = (hi - w) if r > 0 else (w - lo)
        free = (w > lo) & (w < hi)
        i = int(np.argmax(np.where(free, room, -1.0))) if (free & (room > 0)).any() else int(np.argmax(room))
        w[i] = np.clip(w[i] + r, lo[i], hi[i])
    return w


def _candidates(lo: np.ndarray, hi: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """Feasible candidates: flat and corner-seeking Dirichlet draws scaled above lo, projected into bounds."""
    k = len(lo)
    free = 1.0 - lo.sum()
    flat = rng.dirichlet(np.ones(k), size=n - n // 3)
    corner = rng.dirichlet(np.full(k, 0.2), size=n // 3)
    raw = np.vstack([np.full((1, k), 1.0 / k), flat, corner])
    return project(lo + free * raw, lo, hi)


def _safe(predict: Callable[[np.ndarray], np.ndarray], W: np.ndarray) -> np.ndarray:
    out = np.asarray(predict(W), dtype=float).reshape(len(W))
    return np.where(np.isfinite(out), out, np.inf)


def minimize_mixture(
    predict: Callable[[np.ndarray], np.ndarray],
    domains: list[str],
    lower: dict[str, float],
    upper: dict[str, float],
    seed: int = 0,
    n_candidates: int = 20000,
    n_polish: int = 5,
) -> tuple[dict[str, float], float]:
    """The feasible mixture with the lowest predicted value, and that value.

    Works for any vectorised predictor (rows of weights -> values): it scores `n_candidates` random
    feasible mixtures, polishes the best `n_polish` distinct ones with SLSQP (bounds plus the sum-to-one
    constraint), projects the results back so they are exactly feasible, and keeps the best.
    """
    from scipy.optimize import minimize

    lo, hi = check_bounds(domains, lower, upper)
    rng = np.random.default_rng(seed)
    C = _candidates(lo, hi, max(n_candidates, 10), rng)
    scores = np.concatenate([_safe(predict, C[i : i + 4096]) for i in range(0, len(C), 4096)])
    if not np.isfinite(scores).any():
        raise ValueError("the predictor returned no finite value on any feasible mixture")
    starts: list[np.ndarray] = []
    for i in np.argsort(scores, kind="stable"):
        if all(np.abs(C[i] - s).sum() > 1e-3 for s in starts):
            starts.append(C[i])
        if len(starts) >= n_polish:
            break
    best_w, best_f = C[int(np.argmin(scores))], float(scores.min())
    bounds = list(zip(lo, hi, strict=True))
    cons = [{"type": "eq", "fun": lambda w: w.sum() - 1.0, "jac": lambda w: np.ones_like(w)}]
    for s in starts:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            res = minimize(
                lambda w: float(_safe(predict, w[None, :])[0]),
                s,
                method="SLSQP",
                bounds=bounds,
                constraints=cons,
                options={"maxiter": 200, "ftol": 1e-12},
            )
        w = project(res.x[None, :], lo, hi)[0]
        f = float(_safe(predict, w[None, :])[0])
        if f < best_f:
            best_w, best_f = w, f
    return {d: float(x) for d, x in zip(domains, best_w, strict=True)}, best_f
