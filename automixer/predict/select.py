"""Cross-validated Spearman and predictor selection."""

from __future__ import annotations

import math

import numpy as np
from sklearn.base import BaseEstimator, clone

from automixer.predict.models import GPPredictor, LinearPredictor, LogLinearPredictor

PREDICTORS: dict[str, type[BaseEstimator]] = {
    "linear": LinearPredictor,
    "loglinear": LogLinearPredictor,
    "gp": GPPredictor,
}
"""Predictor name (as in `propose.predictor`) -> estimator class."""


def oof_predict(estimator: BaseEstimator, X: np.ndarray, y: np.ndarray, folds: int = 5, seed: int = 0) -> np.ndarray:
    """Out-of-fold predictions: each run predicted by a clone fitted without it (shuffled K-fold)."""
    from sklearn.model_selection import KFold

    X, y = np.asarray(X, dtype=float), np.asarray(y, dtype=float)
    if folds < 2 or len(y) < max(folds, 3):
        raise ValueError(f"cross-validation with {folds} folds needs at least {max(folds, 3)} runs, got {len(y)}")
    oof = np.empty_like(y)
    for train, test in KFold(n_splits=folds, shuffle=True, random_state=seed).split(X):
        oof[test] = clone(estimator).fit(X[train], y[train]).predict(X[test])
    return oof


def cv_spearman(estimator: BaseEstimator, X: np.ndarray, y: np.ndarray, folds: int = 5, seed: int = 0) -> float:
    """Spearman correlation of pooled out-of-fold predictions with the truth (shuffled K-fold).

    Pooled rather than averaged per fold: with ~60 runs a fold holds ~12, so per-fold rank correlations
    are noisy and depend on the fold size, while the question that matters is whether the predictor
    ranks *all* mixtures correctly. Pooling gives one rank correlation over every run, each predicted
    by a model that never saw it. Returns NaN when the predictions are constant (ranking undefined).
    """
    from scipy.stats import spearmanr

    oof = oof_predict(estimator, X, y, folds, seed)
    if np.ptp(oof) == 0 or not np.all(np.isfinite(oof)):
        return math.nan
    return float(spearmanr(oof, np.asarray(y, dtype=float)).statistic)


def select_predictor(
    name: str, X: np.ndarray, y: np.ndarray, folds: int = 5, seed: int = 0
) -> tuple[BaseEstimator, str, dict[str, float]]:
    """Score the named predictor (or all of them for `auto`) by CV Spearman; fit the best on all data."""
    if name != "auto" and name not in PREDICTORS:
        raise ValueError(f"unknown predictor {name!r}; choose one of {['auto', *PREDICTORS]}")
    names = list(PREDICTORS) if name == "auto" else [name]
    scores = {n: cv_spearman(PREDICTORS[n](), X, y, folds=folds, seed=seed) for n in names}
    chosen = max(names, key=lambda n: -math.inf if math.isnan(scores[n]) else scores[n])
    return PREDICTORS[chosen]().fit(X, y), chosen, scores
