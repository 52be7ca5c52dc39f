"""Regressions from mixture weights (rows of the simplex) to a metric such as bpb: ridge, the data-mixing
law (single- and multi-target), a Gaussian process and LightGBM, as scikit-learn estimators."""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.utils.validation import check_array, check_is_fitted, check_X_y

_EXP_CLIP = 50.0


def check_predict_input(est: BaseEstimator, X: np.ndarray, attr: str) -> np.ndarray:
    """X validated at predict time: fitted estimator, 2-D finite array, as many features as in fit."""
    check_is_fitted(est, attr)
    X = check_array(X)
    if X.shape[1] != est.n_features_in_:
        raise ValueError(
            f"X has {X.shape[1]} features, but {type(est).__name__} is expecting {est.n_features_in_} "
            "features as input (one weight per domain, in the order used for fit)"
        )
    return X


class LinearPredictor(RegressorMixin, BaseEstimator):
    """Ridge regression on the weights, optionally with log(w + eps) features (diminishing returns)."""

    def __init__(self, alpha: float = 1e-3, log_features: bool = True, eps: float = 1e-3) -> None:
        self.alpha = alpha
        self.log_features = log_features
        self.eps = eps

    def _features(self, X: np.ndarray) -> np.ndarray:
        if not self.log_features:
            return X
        return np.hstack([X, np.log(np.clip(X, 0.0, None) + self.eps)])

    def fit(self, X: np.ndarray, y: np.ndarray) -> LinearPredictor:
        """Fit the ridge on (standardised) features."""
        from sklearn.linear_model import Ridge
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        X, y = check_X_y(X, y, y_numeric=True)
        self.n_features_in_ = X.shape[1]
        self.model_ = make_pipeline(StandardScaler(), Ridge(alpha=self.alpha)).fit(self._features(X), y)
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Predicted metric for each row of weights."""
        X = check_predict_input(self, X, "model_")
        return self.model_.predict(self._features(X))


class LogLinearPredictor(RegressorMixin, BaseEstimator):
    """The data-mixing-law form y = c + k * exp(sum_i t_i w_i), fitted by variable projection.

    For a given t the model is linear in (c, k), so those are solved in closed form and only t is
    optimised (Levenberg-Marquardt on the projected residual, Kaufman's Jacobian). On the simplex the
    scale of k and a constant shift of t are confounded, so a small ridge `l2` on t makes the fit well
    posed. Starts: for a guess of the asymptote c0 beyond the range of y (above or below), log|y - c0| is
    linear in the weights, solved in closed form; the `n_starts` starts with the lowest projected cost
    are refined and the best fit kept. Fitted `sign_` is the sign of k and `b_` is log|k|.
    """

    def __init__(
        self,
        l2: float = 1e-4,
        c_offsets: tuple[float, ...] = (0.02, 0.1, 0.5, 2.0),
        n_starts: int = 2,
        max_nfev: int = 200,
    ) -> None:
        self.l2 = l2
        self.c_offsets = c_offsets
        self.n_starts = n_starts
        self.max_nfev = max_nfev

    @staticmethod
    def _linear_part(e: np.ndarray, y: np.ndarray) -> tuple[float, float]:
        """Least-squares (c, k) of y ~ c + k e."""
        ec = e - e.mean()
        v = float(ec @ ec)
        k = float(ec @ y) / v if v > 1e-300 else 0.0
        return float(y.mean()) - k * float(e.mean()), k

    def _starts(self, X: np.ndarray, y: np.ndarray, resid) -> list[np.ndarray]:
        """Initial t from the closed-form log-linear fit for each asymptote guess, best first."""
        A = np.hstack([np.ones((len(X), 1)), X])
        reg = np.diag([0.0] + [1e-6] * X.shape[1])
        scale = float(np.ptp(y)) or 1.0
        starts = []
        for sign, edge in ((1.0, y.min()), (-1.0, y.max())):
            for off in self.c_offsets:
                z = np.log(np.maximum(sign * (y - (edge - sign * off * scale)), 1e-12))
                t0 = np.linalg.solve(A.T @ A + reg, A.T @ z)[1:]
                r = resid(t0)
                starts.append((float(r @ r), t0))
        starts.sort(key=lambda s: s[0])
        return [t0 for _, t0 in starts[: max(1, self.n_starts)]]

    def fit(self, X: np.ndarray, y: np.ndarray) -> LogLinearPredictor:
        """Fit t by projected nonlinear least squares from the best starts; c and k in closed form."""
        from scipy.optimize import least_squares

        X, y = check_X_y(X, y, y_numeric=True)
        self.n_features_in_ = X.shape[1]
        n, m = X.shape
        lam = np.sqrt(self.l2 * n) * (float(np.ptp(y)) or 1.0)

        def expo(t: np.ndarray) -> np.ndarray:
            return np.exp(np.clip(X @ t, -_EXP_CLIP, _EXP_CLIP))

        def resid(t: np.ndarray) -> np.ndarray:
            e = expo(t)
            c, k = self._linear_part(e, y)
            return np.concatenate([c + k * e - y, lam * t])

        def jac(t: np.ndarray) -> np.ndarray:
            e = expo(t)
            k = self._linear_part(e, y)[1]
            ec, D = e - e.mean(), e[:, None] * X
            D = D - D.mean(axis=0)
            v = float(ec @ ec)
            if v > 1e-300:
                D = D - np.outer(ec, ec @ D) / v
            return np.vstack([k * D, lam * np.eye(m)])

        best = None
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            for t0 in self._starts(X, y, resid):
                sol = least_squares(resid, t0, jac=jac, method="lm", x_scale="jac", max_nfev=self.max_nfev)
                if np.isfinite(sol.cost) and (best is None or sol.cost < best.cost):
                    best = sol
        if best is None:
            raise RuntimeError("log-linear fit failed from every initialisation")
        self.t_ = best.x.copy()
        self.c_, k = self._linear_part(expo(self.t_), y)
        self.sign_ = 1.0 if k >= 0 else -1.0
        self.b_ = float(np.log(max(abs(k), 1e-300)))
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Predicted metric for each row of weights."""
        X = check_predict_input(self, X, "t_")
        return self.c_ + self.sign_ * np.exp(np.clip(self.b_ + X @ self.t_, -_EXP_CLIP, _EXP_CLIP))


class GPPredictor(RegressorMixin, BaseEstimator):
    """A Gaussian process with a Matern kernel (one length scale per domain) plus white noise.

    Length scales are kept above `min_length_scale` (a tenth of the simplex): tens of runs in 4-5
    domains lie ~0.2 apart, so shorter scales are not supported by the data and only let the marginal
    likelihood settle on interpolating the noise (measured in bench/predictors.py: at high noise this
    bound lifts the GP's held-out Spearman by 0.1-0.2 and changes nothing at low noise).

    `noise_sd`, the run-to-run standard deviation of the target measured on replicate runs, makes that
    noise variance (in the GP's normalised units: divided by the variance of y) the lower bound of the
    white-noise level, so the GP cannot explain measured noise as signal. Fitted `noise_floor_` is that
    bound (1e-6 without `noise_sd`).
    """

    def __init__(
        self,
        nu: float = 2.5,
        length_scale: float = 0.5,
        noise_level: float = 1e-2,
        n_restarts_optimizer: int = 0,
        random_state: int = 0,
        min_length_scale: float = 0.1,
        noise_sd: float | None = None,
    ) -> None:
        self.nu = nu
        self.length_scale = length_scale
        self.min_length_scale = min_length_scale
        self.noise_level = noise_level
        self.n_restarts_optimizer = n_restarts_optimizer
        self.random_state = random_state
        self.noise_sd = noise_sd

    def _noise_floor(self, y: np.ndarray) -> float:
        """The white-noise lower bound in normalised units: (noise_sd / std(y))^2 within [1e-6, 1]."""
        std = float(np.std(y))  # as GaussianProcessRegressor(normalize_y=True) scales y
        if self.noise_sd is None or not np.isfinite(self.noise_sd) or self.noise_sd <= 0 or std <= 0:
            return 1e-6
        return float(np.clip((self.noise_sd / std) ** 2, 1e-6, 1.0))

    def fit(self, X: np.ndarray, y: np.ndarray) -> GPPredictor:
        """Fit the GP, optimising kernel hyper-parameters by marginal likelihood."""
        from sklearn.exceptions import ConvergenceWarning
        from sklearn.gaussian_process import GaussianProcessRegressor
        from sklearn.gaussian_process.kernels import ConstantKernel, Matern, WhiteKernel

        X, y = check_X_y(X, y, y_numeric=True)
        self.n_features_in_ = X.shape[1]
        self.noise_floor_ = floor = self._noise_floor(y)
        kernel = ConstantKernel(1.0, (1e-3, 1e3)) * Matern(
            length_scale=np.full(X.shape[1], self.length_scale),
            length_scale_bounds=(self.min_length_scale, 1e2),
            nu=self.nu,
        ) + WhiteKernel(max(self.noise_level, floor), (floor, 1e1))
        gp = GaussianProcessRegressor(
            kernel,
            normalize_y=True,
            n_restarts_optimizer=self.n_restarts_optimizer,
            random_state=self.random_state,
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            self.model_ = gp.fit(X, y)
        return self

    def predict(self, X: np.ndarray, return_std: bool = False) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
        """Predicted metric for each row of weights (and the posterior std with `return_std`)."""
        X = check_predict_input(self, X, "model_")
        return self.model_.predict(X, return_std=return_std)


class LightGBMPredictor(RegressorMixin, BaseEstimator):
    """Gradient-boosted trees on the weights (RegMix's regressor), with settings for tens of runs.

    LightGBM's defaults (31 leaves, at least 20 samples per leaf) cannot split at all on a sweep of
    ~16-60 runs and predict a constant; here trees are small (`num_leaves`), a leaf needs only
    `min_child_samples` runs, bins may hold a single run, and rows are subsampled per tree.
    """

    def __init__(
        self,
        n_estimators: int = 300,
        learning_rate: float = 0.05,
        num_leaves: int = 4,
        min_child_samples: int = 3,
        subsample: float = 0.8,
        reg_lambda: float = 1.0,
        linear_tree: bool = False,
        random_state: int = 0,
    ) -> None:
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.min_child_samples = min_child_samples
        self.subsample = subsample
        self.reg_lambda = reg_lambda
        self.linear_tree = linear_tree
        self.random_state = random_state

    def fit(self, X: np.ndarray, y: np.ndarray) -> LightGBMPredictor:
        """Fit the boosted trees (single-threaded, deterministic)."""
        import lightgbm as lgb

        X, y = check_X_y(X, y, y_numeric=True)
        self.n_features_in_ = X.shape[1]
        self.model_ = lgb.LGBMRegressor(
            n_estimators=self.n_estimators,
            learning_rate=self.learning_rate,
            num_leaves=self.num_leaves,
            min_child_samples=self.min_child_samples,
            subsample=self.subsample,
            subsample_freq=1 if self.subsample < 1.0 else 0,
            reg_lambda=self.reg_lambda,
            random_state=self.random_state,
            n_jobs=1,
            verbose=-1,
            min_data_in_bin=1,
            linear_tree=self.linear_tree,
            deterministic=True,
            force_col_wise=True,
        ).fit(X, y)
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Predicted metric for each row of weights."""
        X = check_predict_input(self, X, "model_")
        return self.model_.predict(X)


class MultiLogLinearPredictor(RegressorMixin, BaseEstimator):
    """The multi-target data-mixing law: one law L_j = c_j + k_j exp(t_j . w) per component loss.

    The target is a fixed linear combination of the components (bpb_mean is the mean of the per-domain
    bpbs), and a sum of exponentials is not one exponential, so each component is fitted with its own
    `LogLinearPredictor` (own c, k and t) and the combination weights are the least-squares fit of y on
    the components (exactly 1/m each for a mean). Without `components` it is the single-target law.
    """

    def __init__(
        self,
        l2: float = 1e-4,
        c_offsets: tuple[float, ...] = (0.02, 0.1, 0.5, 2.0),
        n_starts: int = 2,
        max_nfev: int = 200,
    ) -> None:
        self.l2 = l2
        self.c_offsets = c_offsets
        self.n_starts = n_starts
        self.max_nfev = max_nfev

    def fit(self, X: np.ndarray, y: np.ndarray, components: np.ndarray | None = None) -> MultiLogLinearPredictor:
        """Fit one law per column of `components` (n_runs, n_components) and y's weights on them."""
        X, y = check_X_y(X, y, y_numeric=True)
        C = y[:, None] if components is None else check_array(components, ensure_2d=False)
        if len(C) != len(y):
            raise ValueError(f"components has {len(C)} rows for {len(y)} runs")
        C = C.reshape(len(y), -1)
        self.n_features_in_ = X.shape[1]
        self.laws_ = [LogLinearPredictor(self.l2, self.c_offsets, self.n_starts, self.max_nfev).fit(X, c) for c in C.T]
        A = np.hstack([C, np.ones((len(y), 1))])
        coef = np.linalg.lstsq(A, y, rcond=None)[0]
        self.combine_, self.intercept_ = coef[:-1], float(coef[-1])
        return self

    def predict_components(self, X: np.ndarray) -> np.ndarray:
        """Predicted component losses, (n_rows, n_components)."""
        X = check_predict_input(self, X, "laws_")
        return np.column_stack([law.predict(X) for law in self.laws_])

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Predicted target for each row of weights: the combination of the predicted components."""
        return self.predict_components(X) @ self.combine_ + self.intercept_
