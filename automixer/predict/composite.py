"""Ensembles of predictors (the mean of their predictions), and fitting with per-component targets."""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin, clone
from sklearn.utils.validation import check_X_y

from automixer.predict.models import check_predict_input


class EnsemblePredictor(RegressorMixin, BaseEstimator):
    """The weighted mean prediction of several predictors (equal weights by default), each fitted on all data."""

    def __init__(self, estimators: tuple[BaseEstimator, ...] = (), weights: tuple[float, ...] | None = None) -> None:
        self.estimators = estimators
        self.weights = weights

    def fit(self, X: np.ndarray, y: np.ndarray, components: np.ndarray | None = None) -> EnsemblePredictor:
        """Fit a clone of every member (members that take `components` get them)."""
        if not self.estimators:
            raise ValueError("an ensemble needs at least one estimator")
        w = np.ones(len(self.estimators)) if self.weights is None else np.asarray(self.weights, dtype=float)
        if w.shape != (len(self.estimators),) or np.any(w < 0) or w.sum() <= 0:
            raise ValueError(f"weights must be {len(self.estimators)} non-negative numbers, not all 0: {self.weights}")
        self.weights_ = w / w.sum()
        X, y = check_X_y(X, y, y_numeric=True)
        self.n_features_in_ = X.shape[1]
        self.estimators_ = [fit_estimator(clone(e), X, y, components) for e in self.estimators]
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Weighted mean of the members' predictions for each row of weights."""
        X = check_predict_input(self, X, "estimators_")
        return self.weights_ @ np.array([e.predict(X) for e in self.estimators_])


def fit_estimator(
    est: BaseEstimator, X: np.ndarray, y: np.ndarray, components: np.ndarray | None = None
) -> BaseEstimator:
    """`est.fit(X, y)`, passing `components` to estimators whose fit accepts them; BLAS single-threaded.

    The matrices here are tiny (tens of runs), where multi-threaded BLAS only adds overhead, and on a
    machine whose cores are busy (a sweep running beside) it slows fits down several times.
    """
    import inspect

    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"):
        if components is not None and "components" in inspect.signature(est.fit).parameters:
            return est.fit(X, y, components=components)
        return est.fit(X, y)
