"""Bootstrap over runs: intervals on a proposal and the chance it beats the natural mixture."""

from __future__ import annotations

import time

import numpy as np
from sklearn.base import BaseEstimator, clone

from automixer.feasible import FeasibleSet
from automixer.optimize import minimize_mixture

BOOTSTRAP_CANDIDATES = 2000
"""Feasible candidates scored per bootstrap re-optimisation (one shared pool for every resample)."""
BOOTSTRAP_POLISH = 1
"""SLSQP polishes per bootstrap re-optimisation (the pool holds the full-data proposal as a warm start)."""


def refit(estimator: BaseEstimator, X: np.ndarray, y: np.ndarray) -> BaseEstimator:
    """A cheap refit on resampled runs: a GP keeps the fitted kernel hyper-parameters, others refit a clone."""
    import copy

    from sklearn.gaussian_process import GaussianProcessRegressor

    inner = getattr(estimator, "model_", None)
    if isinstance(inner, GaussianProcessRegressor):
        new = copy.copy(estimator)
        new.model_ = clone(inner).set_params(kernel=inner.kernel_, optimizer=None).fit(X, y)
        return new
    return clone(estimator).fit(X, y)


def _interval(x: np.ndarray, level: float) -> list[float]:
    """The central `level` percentile interval of x."""
    a = (1.0 - level) / 2.0
    return [float(v) for v in np.quantile(x, [a, 1.0 - a])]


def bootstrap_proposal(
    estimator: BaseEstimator,
    X: np.ndarray,
    y: np.ndarray,
    feasible: FeasibleSet,
    proposal: np.ndarray,
    natural: np.ndarray,
    n_resamples: int = 50,
    level: float = 0.9,
    seed: int = 0,
    top_k: int | None = None,
    kl_penalty: float = 0.0,
    noise_sd: float | None = None,
) -> dict:
    """Refit `estimator` (cheaply, see `refit`) on runs resampled with replacement; re-optimise under `feasible`.

    Returns percentile intervals (coverage `level`) on the predicted target at `proposal` and on each
    re-optimised weight, the same for the improvement over `natural`, and the share of resamples whose fit
    predicts the proposal below the natural mixture (`p_beats_natural`), and the same against the uniform
    mixture (`uniform_improvement_ci`, `p_beats_uniform`): the strongest simple baseline at scale is often
    uniform, not natural. Resamples whose fit fails are counted in `n_failed` and left out.

    `p_beats_natural` is about the mean over seeds (the bootstrap already carries the noise in the runs
    it refits). With `noise_sd`, the run-to-run noise of the target, `p_beats_natural_one_run` is the
    chance that one new run of the proposal beats one new run of the natural mixture: over resamples, the
    mean of Phi(predicted improvement / (sqrt(2) noise_sd)), each run adding independent seed noise.
    """
    t0 = time.perf_counter()
    X, y = np.asarray(X, dtype=float), np.asarray(y, dtype=float)
    rng = np.random.default_rng(seed)
    pool = np.vstack([proposal[None, :], feasible.sample(BOOTSTRAP_CANDIDATES, np.random.default_rng(seed + 1))])
    uniform = np.full(len(proposal), 1 / len(proposal))
    at_proposal, at_natural, at_uniform, weights, optima = [], [], [], [], []
    failed = 0
    for _ in range(n_resamples):
        idx = rng.integers(0, len(y), len(y))
        try:
            est = refit(estimator, X[idx], y[idx])
            w, f = minimize_mixture(
                est.predict, feasible, seed=seed, n_polish=BOOTSTRAP_POLISH, top_k=top_k,
                kl_penalty=kl_penalty, natural=natural, candidates=pool,
            )  # fmt: skip
            both = np.asarray(est.predict(np.vstack([proposal, natural, uniform])), dtype=float)
        except (ValueError, RuntimeError, np.linalg.LinAlgError):
            failed += 1
            continue
        if not np.isfinite(both).all():
            failed += 1
            continue
        at_proposal.append(both[0])
        at_natural.append(both[1])
        at_uniform.append(both[2])
        weights.append([w[d] for d in feasible.domains])
        optima.append(f)
    if not at_proposal:
        raise RuntimeError(f"every one of the {n_resamples} bootstrap refits failed")
    P, N, U = np.array(at_proposal), np.array(at_natural), np.array(at_uniform)
    return {
        "method": "bootstrap over runs",
        "n_resamples": n_resamples,
        "n_failed": failed,
        "level": level,
        "seed": seed,
        **_intervals(P, N, U, np.array(weights), np.array(optima), feasible.domains, natural, level),
        **_one_run(N - P, noise_sd),
        **_one_run(U - P, noise_sd, "uniform"),
        "seconds": round(time.perf_counter() - t0, 3),
    }


def _intervals(
    P: np.ndarray,
    N: np.ndarray,
    U: np.ndarray,
    W: np.ndarray,
    optima: np.ndarray,
    domains: list[str],
    natural: np.ndarray,
    level: float,
) -> dict:
    """Intervals and P(beats natural / uniform) from each resample's predictions at the proposal (P), natural (N)
    and uniform (U)."""
    return {
        "predicted_target_ci": _interval(P, level),
        "weights_ci": {d: _interval(W[:, j], level) for j, d in enumerate(domains)},
        "natural": {d: float(v) for d, v in zip(domains, natural, strict=True)},
        "natural_predicted_target_ci": _interval(N, level),
        "improvement_ci": _interval(N - P, level),
        "reoptimised_target_ci": _interval(optima, level),
        "p_beats_natural": float(np.mean(P < N)),
        "uniform_improvement_ci": _interval(U - P, level),
        "p_beats_uniform": float(np.mean(P < U)),
    }


def _one_run(improvement: np.ndarray, noise_sd: float | None, reference: str = "natural") -> dict:
    """`noise_sd` and the chance one run of the proposal beats one of `reference` (empty without noise)."""
    if noise_sd is None or not np.isfinite(noise_sd) or noise_sd <= 0:
        return {}
    from scipy.stats import norm

    p = norm.cdf(np.asarray(improvement, dtype=float) / (np.sqrt(2.0) * noise_sd))
    return {"noise_sd": float(noise_sd), f"p_beats_{reference}_one_run": float(np.mean(p))}
