"""Three regressions from mixture weights (rows of the simplex) to a metric such as bpb."""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.utils.validation import check_array, check_is_fitted, check_X_y

_EXP_CLIP = 50.0


def _predict_input(est: BaseEstimator, X: np.ndarray, attr: str) -> np.ndarray:
    """Validate X at predict time: fitted estimator, 2-D finite array, as many features as in fit."""
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
        X = _predict_input(self, X, "model_")
        return self.model_.predict(self._features(X))


class LogLinearPredictor(RegressorMixin, BaseEstimator):
    """The data-mixing-law form y = c + s * exp(b + sum_i t_i w_i), s = +1 or -1, by least squares.

    `s * exp(b)` is the law's k; on the simplex b and a constant shift of t are confounded, so a small
    ridge `l2` on t makes the fit well posed. Each fit starts from several inits: for a guess of the
    asymptote c0 beyond the range of y, log|y - c0| is linear in the weights, solved in closed form;
    the best of the resulting least-squares fits is kept.
    """

    def __init__(
        self, l2: float = 1e-4, c_offsets: tuple[float, ...] = (0.02, 0.1, 0.5, 2.0), max_nfev: int = 100
    ) -> None:
        self.l2 = l2
        self.c_offsets = c_offsets
        self.max_nfev = max_nfev

    @staticmethod
    def _eval(theta: np.ndarray, X: np.ndarray, sign: float) -> np.ndarray:
        c, b, t = theta[0], theta[1], theta[2:]
        return c + sign * np.exp(np.clip(b + X @ t, -_EXP_CLIP, _EXP_CLIP))

    def _init(self, X: np.ndarray, y: np.ndarray, c0: float, sign: float) -> np.ndarray:
        z = np.log(np.maximum(sign * (y - c0), 1e-12))
        A = np.hstack([np.ones((len(X), 1)), X])
        reg = np.diag([0.0] + [1e-6] * X.shape[1])
        coef = np.linalg.solve(A.T @ A + reg, A.T @ z)
        return np.concatenate([[c0], coef])

    def _solve(self, X: np.ndarray, y: np.ndarray, theta0: np.ndarray, sign: float, lam: float):
        """One least-squares fit from `theta0` with an analytic Jacobian and a ridge on t."""
        from scipy.optimize import least_squares

        n, k = X.shape
        A = np.hstack([np.ones((n, 1)), X])

        def resid(theta: np.ndarray) -> np.ndarray:
            return np.concatenate([self._eval(theta, X, sign) - y, lam * theta[2:]])

        def jac(theta: np.ndarray) -> np.ndarray:
            e = sign * np.exp(np.clip(theta[1] + X @ theta[2:], -_EXP_CLIP, _EXP_CLIP))
            top = np.hstack([np.ones((n, 1)), e[:, None] * A])
            return np.vstack([top, np.hstack([np.zeros((k, 2)), lam * np.eye(k)])])

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            return least_squares(resid, theta0, jac=jac, method="trf", x_scale="jac", max_nfev=self.max_nfev)

    def fit(self, X: np.ndarray, y: np.ndarray) -> LogLinearPredictor:
        """Fit c, b, t (and the sign) by nonlinear least squares from several inits."""
        X, y = check_X_y(X, y, y_numeric=True)
        self.n_features_in_ = X.shape[1]
        scale = float(np.ptp(y)) or 1.0
        lam = np.sqrt(self.l2 * len(y)) * scale
        best: tuple[float, np.ndarray, float] | None = None
        for sign in (1.0, -1.0):
            edge = y.min() if sign > 0 else y.max()
            for off in self.c_offsets:
                theta0 = self._init(X, y, edge - sign * off * scale, sign)
                sol = self._solve(X, y, theta0, sign, lam)
                if np.isfinite(sol.cost) and (best is None or sol.cost < best[0]):
                    best = (float(sol.cost), sol.x, sign)
        if best is None:
            raise RuntimeError("log-linear fit failed from every initialisation")
        _, theta, self.sign_ = best
        self.c_, self.b_, self.t_ = float(theta[0]), float(theta[1]), theta[2:].copy()
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Predicted metric for each row of weights."""
        X = _predict_input(self, X, "t_")
        return self._eval(np.concatenate([[self.c_, self.b_], self.t_]), X, self.sign_)


class GPPredictor(RegressorMixin, BaseEstimator):
    """A Gaussian process with a Matern kernel (one length scale per domain) plus white noise."""

    def __init__(
        self,
        nu: float = 2.5,
        length_scale: float = 0.5,
        noise_level: float = 1e-2,
        n_restarts_optimizer: int = 0,
        random_state: int = 0,
    ) -> None:
        self.nu = nu
        self.length_scale = length_scale
        self.noise_level = noise_level
        self.n_restarts_optimizer = n_restarts_optimizer
        self.random_state = random_state

    def fit(self, X: np.ndarray, y: np.ndarray) -> GPPredictor:
        """Fit the GP, optimising kernel hyper-parameters by marginal likelihood."""
        from sklearn.exceptions import ConvergenceWarning
        from sklearn.gaussian_process import GaussianProcessRegressor
        from sklearn.gaussian_process.kernels import ConstantKernel, Matern, WhiteKernel

        X, y = check_X_y(X, y, y_numeric=True)
        self.n_features_in_ = X.shape[1]
        kernel = ConstantKernel(1.0, (1e-3, 1e3)) * Matern(
            length_scale=np.full(X.shape[1], self.length_scale), length_scale_bounds=(1e-2, 1e2), nu=self.nu
        ) + WhiteKernel(self.noise_level, (1e-6, 1e1))
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
        X = _predict_input(self, X, "model_")
        return self.model_.predict(X, return_std=return_std)
