"""Iterative sweeps: round sizes, expected improvement, batch choice and candidate pools."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import norm

from automixer.feasible import Constraint, FeasibleSet
from automixer.sweep.rounds import (
    candidate_pool,
    choose_batch,
    expected_improvement,
    next_round_items,
    plan_round,
    round_sizes,
)

DOMAINS = ["a", "b", "c"]
OPT = np.array([0.6, 0.3, 0.1])


def _truth(W: np.ndarray) -> np.ndarray:
    return ((np.atleast_2d(W) - OPT) ** 2).sum(axis=1)


def _draw(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).dirichlet(np.ones(3), size=n)


def test_round_sizes_split_the_budget():
    assert round_sizes(60, 3) == [20, 20, 20]
    assert round_sizes(61, 3) == [21, 20, 20]
    assert round_sizes(8, 1) == [8]
    with pytest.raises(ValueError, match="rounds"):
        round_sizes(5, 3)


def test_expected_improvement_matches_the_closed_form():
    ei = expected_improvement(np.array([1.0, 0.5, 2.0, 1.0]), np.array([1.0, 0.0, 0.0, 2.0]), best=1.0)
    assert ei[0] == pytest.approx(norm.pdf(0.0))  # mu == best: sd * phi(0)
    assert ei[1] == pytest.approx(0.5)  # certain improvement
    assert ei[2] == 0.0  # certain to be worse
    assert ei[3] == pytest.approx(2 * norm.pdf(0.0))  # more uncertainty, more expected improvement


def test_batch_goes_to_the_optimum_and_spreads_out():
    X = _draw(12, 0)
    y = _truth(X)
    C = np.vstack([_draw(300, 1), OPT])
    picks = choose_batch(X, y, C, 4, seed=0)
    assert len(set(picks)) == 4
    assert picks == choose_batch(X, y, C, 4, seed=0)  # deterministic
    assert np.abs(C[picks[0]] - OPT).sum() < 0.15  # the first pick lands near the true optimum
    assert _truth(C[picks[:2]]).mean() < np.median(_truth(C))  # better than a random candidate
    gaps = [np.abs(C[i] - C[j]).sum() for i in picks for j in picks if i < j]
    assert min(gaps) > 0.01  # the believer keeps the batch from piling onto one point


def test_candidate_pool_respects_constraints_and_avoids_done_runs():
    cap = Constraint("max_weight.a=0.3", np.array([1.0, 0.0, 0.0]), "<=", 0.3)
    feasible = FeasibleSet(DOMAINS, [cap])
    done = _draw(5, 3)
    pool = candidate_pool(_draw(400, 2), feasible, done, 200, seed=0)
    assert 20 <= len(pool) <= 200
    assert np.all(pool[:, 0] <= 0.3 + 1e-9)
    dist = np.abs(pool[:, None, :] - done[None, :, :]).sum(axis=2).min(axis=1)
    assert dist.min() >= 0.02


def test_plan_round_continues_the_numbering_and_is_deterministic():
    X = _draw(10, 4)
    args = (X, _truth(X), DOMAINS, _draw, None, 2, 5, 10, 20, 0)
    items = plan_round(*args, n_candidates=300)
    assert [it["run_id"] for it in items] == [f"run-{i:03d}" for i in range(10, 15)]
    assert all(it["round"] == 2 and abs(sum(it["weights"].values()) - 1) < 1e-9 for it in items)
    assert items == plan_round(*args, n_candidates=300)


def test_next_round_items_normalise_weights():
    items = next_round_items(np.array([[0.2, 0.2, 0.6000001], [-1e-12, 0.5, 0.5]]), DOMAINS, 98, 120, 3)
    assert [it["run_id"] for it in items] == ["run-098", "run-099"]
    assert all(min(it["weights"].values()) >= 0 and abs(sum(it["weights"].values()) - 1) < 1e-12 for it in items)
