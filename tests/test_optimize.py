"""Constrained minimisation over the simplex."""

from __future__ import annotations

import numpy as np
import pytest

from automixer.optimize import minimize_mixture, project

DOMAINS = ["code", "math", "web", "synthetic"]
TARGET = np.array([0.4, 0.1, 0.35, 0.15])


def bowl(W: np.ndarray) -> np.ndarray:
    """A quadratic bowl with its minimum at TARGET (inside the simplex)."""
    return ((np.atleast_2d(W) - TARGET) ** 2).sum(axis=1) + 1.0


def _assert_feasible(w: dict, lower: dict, upper: dict) -> None:
    assert abs(sum(w.values()) - 1.0) <= 1e-9
    for d, x in w.items():
        assert lower.get(d, 0.0) <= x <= upper.get(d, 1.0)


def test_finds_interior_optimum() -> None:
    w, f = minimize_mixture(bowl, DOMAINS, {}, {}, seed=0, n_candidates=5000)
    np.testing.assert_allclose([w[d] for d in DOMAINS], TARGET, atol=1e-3)
    assert abs(f - 1.0) < 1e-6
    assert list(w) == DOMAINS
    _assert_feasible(w, {}, {})


def test_active_bounds_are_exact() -> None:
    lower, upper = {"synthetic": 0.3}, {"code": 0.2}
    w, f = minimize_mixture(bowl, DOMAINS, lower, upper, seed=0, n_candidates=5000)
    _assert_feasible(w, lower, upper)
    assert w["code"] == 0.2 and w["synthetic"] == 0.3
    # the other 0.5 goes to math and web: their targets (0.1, 0.35) each shifted up by 0.025
    assert w["math"] == pytest.approx(0.125, abs=1e-4) and w["web"] == pytest.approx(0.375, abs=1e-4)
    assert f == pytest.approx(bowl(np.array([0.2, 0.125, 0.375, 0.3]))[0], abs=1e-6)


def test_deterministic() -> None:
    a = minimize_mixture(bowl, DOMAINS, {"web": 0.5}, {}, seed=1, n_candidates=2000)
    b = minimize_mixture(bowl, DOMAINS, {"web": 0.5}, {}, seed=1, n_candidates=2000)
    assert a == b


def test_nonsmooth_predictor() -> None:
    def rank_only(W: np.ndarray) -> np.ndarray:  # piecewise constant: only the random search can help
        return np.floor(np.abs(W - TARGET).sum(axis=1) * 10)

    w, f = minimize_mixture(rank_only, DOMAINS, {}, {"web": 0.3}, seed=0, n_candidates=3000)
    _assert_feasible(w, {}, {"web": 0.3})
    assert f == 0.0


def test_infeasible_constraints_name_domains() -> None:
    with pytest.raises(ValueError, match=r"min_weight sums to 1.2 > 1: code=0.7, math=0.5"):
        minimize_mixture(bowl, DOMAINS, {"code": 0.7, "math": 0.5}, {})
    with pytest.raises(ValueError, match=r"max_weight sums to 0.6 < 1: code=0.1, math=0.1, web=0.2, synthetic=0.2"):
        minimize_mixture(bowl, DOMAINS, {}, {"code": 0.1, "math": 0.1, "web": 0.2, "synthetic": 0.2})
    with pytest.raises(ValueError, match=r"unknown domain\(s\) \['books'\]"):
        minimize_mixture(bowl, DOMAINS, {"books": 0.1}, {})
    with pytest.raises(ValueError, match="bounds of code"):
        minimize_mixture(bowl, DOMAINS, {"code": 0.5}, {"code": 0.4})


def test_projection_is_exactly_feasible() -> None:
    rng = np.random.default_rng(0)
    lo, hi = np.array([0.1, 0.0, 0.2, 0.0]), np.array([0.5, 0.3, 1.0, 0.05])
    W = project(rng.normal(0.3, 0.5, size=(500, 4)), lo, hi)
    assert np.all(W >= lo) and np.all(W <= hi)
    assert np.abs(W.sum(axis=1) - 1.0).max() <= 1e-12
    inside = np.array([[0.3, 0.2, 0.45, 0.05]])
    np.testing.assert_allclose(project(inside, lo, hi), inside, atol=1e-12)


def test_predictor_without_finite_values_errors() -> None:
    with pytest.raises(ValueError, match="no finite value"):
        minimize_mixture(lambda W: np.full(len(W), np.nan), DOMAINS, {}, {}, n_candidates=100)
