"""Minimise any predictor over a feasible set of mixtures (bounds, pins, groups, caps, trust region)."""

from __future__ import annotations

import warnings
from collections.abc import Callable

import numpy as np

from automixer.feasible import FeasibleSet, kl_divergence

Predict = Callable[[np.ndarray], np.ndarray]


def _safe(predict: Predict, W: np.ndarray) -> np.ndarray:
    out = np.asarray(predict(W), dtype=float).reshape(len(W))
    return np.where(np.isfinite(out), out, np.inf)


def score(predict: Predict, W: np.ndarray, chunk: int = 4096) -> np.ndarray:
    """The predictor's value on each row of W, in chunks; non-finite values become +inf."""
    W = np.atleast_2d(W)
    return np.concatenate([_safe(predict, W[i : i + chunk]) for i in range(0, len(W), chunk)])


def penalised(predict: Predict, natural: np.ndarray | None, kl_penalty: float) -> Predict:
    """`predict` plus kl_penalty * KL(w || natural) (the predictor itself when the penalty is 0)."""
    if not kl_penalty:
        return predict
    if natural is None:
        raise ValueError("trust_region.kl_penalty needs the natural mixture (from the sweep, or given)")
    return lambda W: np.asarray(predict(W), dtype=float).reshape(-1) + kl_penalty * kl_divergence(W, natural)


def _starts(C: np.ndarray, scores: np.ndarray, n: int) -> list[np.ndarray]:
    """The `n` best candidates that differ from each other by more than 1e-3 in L1."""
    starts: list[np.ndarray] = []
    for i in np.argsort(scores, kind="stable"):
        if len(starts) >= n or not np.isfinite(scores[i]):
            break
        if all(np.abs(C[i] - s).sum() > 1e-3 for s in starts):
            starts.append(C[i])
    return starts


def _value_and_grad(objective: Predict, w: np.ndarray, h: float = 1e-6) -> tuple[float, np.ndarray]:
    """The objective and its central-difference gradient at w, from one batched predictor call."""
    k = len(w)
    steps = h * np.eye(k)
    f = _safe(objective, np.vstack([w[None, :], w + steps, w - steps]))
    if not np.isfinite(f).all():
        return float(f[0]), np.zeros(k)
    return float(f[0]), (f[1 : k + 1] - f[k + 1 :]) / (2 * h)


def _polish(objective: Predict, start: np.ndarray, feasible: FeasibleSet) -> np.ndarray:
    """SLSQP from `start` under every constraint, made exactly feasible afterwards."""
    from scipy.optimize import minimize

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        res = minimize(
            lambda w: _value_and_grad(objective, w),
            start,
            jac=True,
            method="SLSQP",
            bounds=list(zip(feasible.lo, feasible.hi, strict=True)),
            constraints=feasible.scipy_constraints(),
            options={"maxiter": 200, "ftol": 1e-12},
        )
    return feasible.repair(res.x[None, :])[0]


def minimize_mixture(
    predict: Predict,
    feasible: FeasibleSet,
    seed: int = 0,
    n_candidates: int = 20000,
    n_polish: int = 5,
    top_k: int | None = None,
    kl_penalty: float = 0.0,
    natural: np.ndarray | None = None,
    candidates: np.ndarray | None = None,
) -> tuple[dict[str, float], float]:
    """The feasible mixture with the lowest predicted value, and the predictor's value there.

    Works for any vectorised predictor (rows of weights -> values). It scores `n_candidates` feasible
    mixtures (or the given `candidates`), then either averages the `top_k` best (RegMix) or polishes the
    best `n_polish` distinct ones with SLSQP under every constraint; results are repaired to be exactly
    feasible. With `kl_penalty`, kl_penalty * KL(w || natural) is added to the predictor while choosing.
    """
    feasible.check()
    objective = penalised(predict, natural, kl_penalty)
    C = feasible.sample(max(n_candidates, 10), np.random.default_rng(seed)) if candidates is None else candidates
    scores = score(objective, C)
    if not np.isfinite(scores).any():
        raise ValueError("the predictor returned no finite value on any feasible mixture")
    if top_k is not None:
        order = np.argsort(scores, kind="stable")[: min(top_k, int(np.isfinite(scores).sum()))]
        best_w = feasible.repair(C[order].mean(axis=0)[None, :])[0]
    else:
        best_w, best_f = C[int(np.argmin(scores))], float(scores.min())
        for s in _starts(C, scores, n_polish):
            w = _polish(objective, s, feasible)
            f = float(_safe(objective, w[None, :])[0])
            if f < best_f:
                best_w, best_f = w, f
    value = float(_safe(predict, best_w[None, :])[0])
    return {d: float(x) for d, x in zip(feasible.domains, best_w, strict=True)}, value


def pareto_front(
    predict_a: Predict,
    predict_b: Predict,
    feasible: FeasibleSet,
    n_points: int = 11,
    seed: int = 0,
    n_candidates: int = 20000,
) -> list[tuple[dict[str, float], float, float]]:
    """Mixtures on the predicted Pareto front of two objectives, with both values, sorted by the first.

    Minimises (1 - a) f_a / s_a + a f_b / s_b for `n_points` values of a in [0, 1] (s: each objective's
    spread over the feasible candidates), then keeps the distinct non-dominated results. A weighted sum
    finds the convex part of the front.
    """
    feasible.check()
    pool = feasible.sample(max(n_candidates, 10), np.random.default_rng(seed))
    fa, fb = score(predict_a, pool), score(predict_b, pool)
    sa = float(np.ptp(fa[np.isfinite(fa)])) or 1.0
    sb = float(np.ptp(fb[np.isfinite(fb)])) or 1.0
    points = []
    for a in np.linspace(0.0, 1.0, n_points):

        def blend(W: np.ndarray, a: float = a) -> np.ndarray:
            return (1 - a) * np.asarray(predict_a(W)) / sa + a * np.asarray(predict_b(W)) / sb

        w, _ = minimize_mixture(blend, feasible, seed=seed, n_polish=2, candidates=pool)
        x = np.array([list(w.values())])
        points.append((w, float(score(predict_a, x)[0]), float(score(predict_b, x)[0])))
    front = []
    for w, va, vb in sorted(points, key=lambda p: (p[1], p[2])):
        dominated = any((oa <= va and ob <= vb) and (oa < va or ob < vb) for _, oa, ob in points)
        if not dominated and all(abs(va - fa_) > 1e-9 or abs(vb - fb_) > 1e-9 for _, fa_, fb_ in front):
            front.append((w, va, vb))
    return front
