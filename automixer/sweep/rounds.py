"""Iterative sweeps: the first round is sampled, each later round chosen by batch expected improvement.

After a round finishes, a Gaussian process is fitted to every finished run (mixture -> target). Candidate
mixtures are drawn from the sweep's own sampler (around the natural mixture) and from the proposal's
feasible set; the next batch is picked greedily by expected improvement (EI) over the best posterior mean
seen so far, each pick added to the GP as if it had returned its predicted mean (the "kriging believer"),
so one batch spreads out instead of piling onto one point. EI is large where the GP predicts a low target
*and* is unsure, which is where another run most helps the proposal: near the predicted optimum.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from automixer.feasible import FeasibleSet


def round_sizes(n_runs: int, rounds: int) -> list[int]:
    """How many new mixtures each round trains: equal shares, the first round taking the remainder."""
    if rounds < 1 or n_runs < 2 * rounds:
        raise ValueError(f"cannot split {n_runs} runs into {rounds} rounds of at least 2")
    share = n_runs // rounds
    return [n_runs - share * (rounds - 1)] + [share] * (rounds - 1)


def expected_improvement(mu: np.ndarray, sd: np.ndarray, best: float, xi: float = 0.0) -> np.ndarray:
    """E[max(best - xi - Y, 0)] for Y ~ N(mu, sd^2) (minimisation); 0 where sd is 0 and mu >= best - xi."""
    from scipy.stats import norm

    mu, sd = np.asarray(mu, dtype=float), np.asarray(sd, dtype=float)
    gain = best - xi - mu
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(sd > 0, gain / sd, 0.0)
    ei = gain * norm.cdf(z) + sd * norm.pdf(z)
    return np.where(sd > 0, ei, np.maximum(gain, 0.0))


def choose_batch(
    X: np.ndarray,
    y: np.ndarray,
    candidates: np.ndarray,
    k: int,
    noise_sd: float | None = None,
    xi: float = 0.01,
    seed: int = 0,
) -> list[int]:
    """Indices of `k` distinct candidate rows chosen greedily by expected improvement (kriging believer).

    `xi` is the improvement margin in units of y's standard deviation; `noise_sd` (run-to-run noise of y,
    when measured) is the floor of the GP's noise, so replicate noise is not mistaken for signal.
    """
    from sklearn.gaussian_process import GaussianProcessRegressor

    from automixer.predict import GPPredictor

    X, y, C = np.asarray(X, float), np.asarray(y, float), np.asarray(candidates, float)
    if len(X) < 2 or C.ndim != 2 or C.shape[1] != X.shape[1]:
        raise ValueError(f"need >= 2 finished runs and candidates of {X.shape[1]} columns")
    k = min(k, len(C))
    gp = GPPredictor(noise_sd=noise_sd, random_state=seed).fit(X, y)
    kernel = gp.model_.kernel_
    best = float(gp.predict(X).min())  # best posterior mean: robust to one lucky noisy run
    margin = xi * float(y.std() or 1.0)
    X_aug, y_aug = X, y
    chosen: list[int] = []
    for _ in range(k):
        model = GaussianProcessRegressor(kernel, optimizer=None, normalize_y=True).fit(X_aug, y_aug)
        mu, sd = model.predict(C, return_std=True)
        ei = expected_improvement(mu, sd, best, margin)
        ei[chosen] = -np.inf
        i = int(np.argmax(ei))
        chosen.append(i)
        X_aug, y_aug = np.vstack([X_aug, C[i]]), np.append(y_aug, mu[i])
    return chosen


def candidate_pool(
    sample: np.ndarray,
    feasible: FeasibleSet | None,
    done: np.ndarray,
    n: int,
    seed: int,
    min_distance: float = 0.02,
) -> np.ndarray:
    """Candidates for a round: sampler draws plus feasible-set draws, kept if feasible and not near a done run.

    `sample` holds draws from the sweep's sampler (around the natural mixture). Where the proposal has
    constraints, half the pool comes from the feasible set itself and sampler draws outside it are dropped,
    so the round spends its runs where the proposal can land. Falls back to the unfiltered draws when
    fewer than `n // 10` remain.
    """
    pool = np.asarray(sample, float)
    if feasible is not None and (feasible.constraints or feasible.trust is not None):
        inside = pool[feasible.contains(pool)]
        extra = feasible.sample(max(n // 2, 1), np.random.default_rng(seed))
        filtered = np.vstack([inside, extra])
        pool = filtered if len(filtered) >= max(1, n // 10) else pool
    if len(done):
        dist = np.abs(pool[:, None, :] - np.asarray(done, float)[None, :, :]).sum(axis=2).min(axis=1)
        far = pool[dist >= min_distance]
        pool = far if len(far) else pool
    return pool[:n]


def next_round_items(
    weights: np.ndarray,
    domains: list[str],
    start: int,
    total: int,
    round_no: int,
) -> list[dict]:
    """Design items (run ids continuing the sweep's numbering) for the chosen mixtures of one round."""
    width = max(3, len(str(total - 1)))
    items = []
    for j, w in enumerate(np.asarray(weights, float)):
        w = np.clip(w, 0.0, None)
        w = w / w.sum()
        items.append(
            {
                "run_id": f"run-{start + j:0{width}d}",
                "weights": {d: float(x) for d, x in zip(domains, w, strict=True)},
                "round": round_no,
            }
        )
    return items


def summarise_round(y_before: np.ndarray, y_round: np.ndarray) -> dict:
    """Best target before and within a round, and how many of the round's runs beat the previous best."""
    before = float(np.min(y_before)) if len(y_before) else math.inf
    return {
        "best_before": before,
        "best_in_round": float(np.min(y_round)) if len(y_round) else math.inf,
        "beat_previous_best": int(np.sum(np.asarray(y_round) < before)),
        "runs": len(y_round),
    }


def plan_round(
    X: np.ndarray,
    y: np.ndarray,
    domains: list[str],
    draw: Callable[[int, int], np.ndarray],
    feasible: FeasibleSet | None,
    round_no: int,
    size: int,
    start: int,
    total: int,
    seed: int,
    n_candidates: int = 2000,
    noise_sd: float | None = None,
) -> list[dict]:
    """The design items of round `round_no`: `size` mixtures chosen by batch EI among fresh candidates.

    `X`, `y` are the finished runs' weights and target; `draw(n, seed)` returns `n` mixtures from the
    sweep's sampler. Deterministic for `seed` and the same finished runs.
    """
    round_seed = seed + 7919 * round_no
    pool = candidate_pool(draw(n_candidates, round_seed), feasible, X, n_candidates, round_seed)
    picks = choose_batch(X, y, pool, size, noise_sd=noise_sd, seed=round_seed)
    return next_round_items(pool[picks], domains, start, total, round_no)
