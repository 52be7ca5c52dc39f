"""Predictors on a synthetic data-mixing law, CV Spearman and selection."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

from automixer.predict import PREDICTORS, GPPredictor, LogLinearPredictor, cv_spearman, select_predictor

DOMAINS = ["code", "math", "web", "synthetic"]


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray]:
    """60 Dirichlet mixtures with y = 1 + 0.5 exp(-2 w_code + w_web) + noise."""
    rng = np.random.default_rng(0)
    X = rng.dirichlet(np.ones(len(DOMAINS)), size=60)
    y = 1.0 + 0.5 * np.exp(-2.0 * X[:, 0] + 1.0 * X[:, 2]) + rng.normal(0.0, 0.01, size=60)
    return X, y


def test_loglinear_recovers_the_law(data) -> None:
    X, y = data
    assert cv_spearman(LogLinearPredictor(), X, y, folds=5, seed=0) > 0.9
    model = LogLinearPredictor().fit(X, y)
    grid = np.random.default_rng(1).dirichlet(np.ones(4), size=200)
    truth = 1.0 + 0.5 * np.exp(-2.0 * grid[:, 0] + grid[:, 2])
    assert np.abs(model.predict(grid) - truth).max() < 0.05
    assert model.sign_ == 1.0  # loss grows with exp(.), as in the law


def test_gp_ranks_well(data) -> None:
    X, y = data
    assert cv_spearman(GPPredictor(), X, y, folds=5, seed=0) > 0.8
    mean, std = GPPredictor().fit(X, y).predict(X[:3], return_std=True)
    assert mean.shape == std.shape == (3,) and np.all(std > 0)


def test_auto_picks_the_best(data) -> None:
    X, y = data
    est, chosen, scores = select_predictor("auto", X, y, folds=5, seed=0)
    assert set(scores) == set(PREDICTORS)
    assert scores[chosen] == max(scores.values())
    assert isinstance(est, PREDICTORS[chosen]) and hasattr(est, "n_features_in_")
    est2, chosen2, scores2 = select_predictor("linear", X, y, folds=5, seed=0)
    assert chosen2 == "linear" and list(scores2) == ["linear"]
    with pytest.raises(ValueError, match="unknown predictor 'ridge'"):
        select_predictor("ridge", X, y)


@pytest.mark.parametrize("name", list(PREDICTORS))
def test_sklearn_conventions(data, name: str) -> None:
    X, y = data
    est = PREDICTORS[name]()
    params = est.get_params()
    clone_ = clone(est)
    assert clone_.get_params() == params and clone_ is not est
    assert est.fit(X[:30], y[:30]) is est
    assert est.predict(X[30:]).shape == (30,)
    assert not hasattr(clone(est), "n_features_in_")  # clones are unfitted
    assert all(not k.endswith("_") for k in params)
    with pytest.raises(ValueError, match="expecting 4 features"):
        est.predict(X[:, :3])
    with pytest.raises(NotFittedError):
        clone(est).predict(X)


def test_cv_spearman_is_deterministic_and_checks_size(data) -> None:
    X, y = data
    a = cv_spearman(PREDICTORS["linear"](), X, y, folds=5, seed=3)
    assert a == cv_spearman(PREDICTORS["linear"](), X, y, folds=5, seed=3)
    with pytest.raises(ValueError, match="at least 5 runs"):
        cv_spearman(PREDICTORS["linear"](), X[:4], y[:4], folds=5)
