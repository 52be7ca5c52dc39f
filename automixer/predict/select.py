"""Cross-validated Spearman and predictor selection."""

from __future__ import annotations

import math

import numpy as np
from sklearn.base import BaseEstimator, clone

from automixer.predict.composite import EnsemblePredictor, fit_estimator
from automixer.predict.models import (
    GPPredictor,
    LightGBMPredictor,
    LinearPredictor,
    LogLinearPredictor,
    MultiLogLinearPredictor,
)

PREDICTORS: dict[str, type[BaseEstimator]] = {
    "linear": LinearPredictor,
    "loglinear": LogLinearPredictor,
    "loglinear_multi": MultiLogLinearPredictor,
    "gp": GPPredictor,
    "lightgbm": LightGBMPredictor,
}
"""Predictor name (as in `propose.predictor`) -> estimator class."""

NEEDS_COMPONENTS = frozenset({"loglinear_multi"})
"""Predictors that `auto` only tries when per-component targets are given (else they repeat another)."""


def make_predictor(name: str, noise_sd: float | None = None) -> BaseEstimator:
    """An unfitted predictor by name; one with a `noise_sd` parameter (the GP) gets the run-to-run noise."""
    est = PREDICTORS[name]()
    if noise_sd is not None and "noise_sd" in est.get_params():
        est.set_params(noise_sd=noise_sd)
    return est


def group_folds(X: np.ndarray, folds: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Shuffled K-fold (train, test) row indices over mixtures: replicates (identical weight rows) share a fold.

    Replicate runs of one mixture split across folds would let a model score a run by the nearly equal
    target of its twin, so CV Spearman would leak. The folds are KFold(shuffle, `seed`) over the distinct
    mixtures, numbered by first appearance; without replicates they are exactly that KFold over the runs.
    """
    from sklearn.model_selection import KFold

    from automixer.sweep.noise import replicate_groups

    groups = replicate_groups(X)
    n_groups = int(groups.max(initial=-1)) + 1
    if folds < 2 or n_groups < max(folds, 3):
        extra = f" ({len(groups)} runs; replicates count once)" if n_groups < len(groups) else ""
        raise ValueError(
            f"cross-validation with {folds} folds needs at least {max(folds, 3)} runs of distinct mixtures, "
            f"got {n_groups}{extra}"
        )
    out = []
    for _, test_groups in KFold(n_splits=folds, shuffle=True, random_state=seed).split(np.arange(n_groups)):
        test = np.isin(groups, test_groups)
        out.append((np.flatnonzero(~test), np.flatnonzero(test)))
    return out


def oof_predict(
    estimator: BaseEstimator,
    X: np.ndarray,
    y: np.ndarray,
    folds: int = 5,
    seed: int = 0,
    components: np.ndarray | None = None,
) -> np.ndarray:
    """Out-of-fold predictions: each run predicted by a clone fitted without its mixture (see `group_folds`)."""
    X, y = np.asarray(X, dtype=float), np.asarray(y, dtype=float)
    C = None if components is None else np.asarray(components, dtype=float)
    oof = np.empty_like(y)
    for train, test in group_folds(X, folds, seed):
        fitted = fit_estimator(clone(estimator), X[train], y[train], None if C is None else C[train])
        oof[test] = fitted.predict(X[test])
    return oof


def _pooled_spearman(oof: np.ndarray, y: np.ndarray) -> float:
    """Spearman of one pooled out-of-fold vector with y; NaN when the predictions are constant or not finite."""
    from scipy.stats import spearmanr

    if np.ptp(oof) == 0 or not np.all(np.isfinite(oof)):
        return math.nan
    return float(spearmanr(oof, y).statistic)


def oof_spearman(oofs: np.ndarray, y: np.ndarray) -> float:
    """Mean over repeats (rows of `oofs`) of the pooled out-of-fold Spearman; NaN if any repeat is NaN."""
    return float(np.mean([_pooled_spearman(row, np.asarray(y, dtype=float)) for row in np.atleast_2d(oofs)]))


def cv_spearman(
    estimator: BaseEstimator,
    X: np.ndarray,
    y: np.ndarray,
    folds: int = 5,
    seed: int = 0,
    repeats: int = 1,
    components: np.ndarray | None = None,
) -> float:
    """Spearman correlation of pooled out-of-fold predictions with the truth, averaged over repeated K-folds.

    Pooled rather than averaged per fold: with ~60 runs a fold holds ~12, so per-fold rank correlations
    are noisy and depend on the fold size, while the question that matters is whether the predictor
    ranks *all* mixtures correctly. Pooling gives one rank correlation over every run, each predicted
    by a model that never saw it. Repeat r shuffles with seed `seed + r`. NaN when the predictions of a
    repeat are constant (ranking undefined).
    """
    oofs = np.stack([oof_predict(estimator, X, y, folds, seed + r, components) for r in range(repeats)])
    return oof_spearman(oofs, y)


def candidate_oofs(
    names: list[str],
    X: np.ndarray,
    y: np.ndarray,
    folds: int = 5,
    seed: int = 0,
    repeats: int = 3,
    components: np.ndarray | None = None,
    noise_sd: float | None = None,
) -> dict[str, np.ndarray]:
    """Out-of-fold predictions (repeats, n_runs) of each named predictor, the same folds for all."""
    return {
        n: np.stack(
            [oof_predict(make_predictor(n, noise_sd), X, y, folds, seed + r, components) for r in range(repeats)]
        )
        for n in names
    }


def _boot_spearman(oofs: np.ndarray, y: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """Mean over repeats of the Spearman of (oof, y) on each bootstrap resample of runs (rows of `idx`)."""
    from scipy.stats import rankdata

    def centred(ranks: np.ndarray) -> np.ndarray:
        ranks = ranks - ranks.mean(axis=1, keepdims=True)
        norm = np.linalg.norm(ranks, axis=1, keepdims=True)
        return ranks / np.where(norm > 0, norm, 1.0)

    ry = centred(rankdata(y[idx], axis=1))
    return np.mean([(centred(rankdata(row[idx], axis=1)) * ry).sum(axis=1) for row in np.atleast_2d(oofs)], axis=0)


def _boot_idx(n_runs: int, n_boot: int = 200) -> np.ndarray:
    """Bootstrap resamples of run indices, (n_boot, n_runs), seed 0: the same for every comparison."""
    return np.random.default_rng(0).integers(0, n_runs, size=(n_boot, n_runs))


def beats_probability(a: np.ndarray, b: np.ndarray, y: np.ndarray, n_boot: int = 200) -> float:
    """Probability that `a` ranks the runs better than `b`: normal approximation of the bootstrap paired difference.

    `a` and `b` are (repeats, n_runs) out-of-fold predictions; the difference in CV Spearman is resampled
    over runs (`_boot_idx`) and the probability is Phi(mean / sd) of it; 1/2 when they cannot be told apart.
    """
    from scipy.stats import norm

    y = np.asarray(y, dtype=float)
    if not (np.all(np.isfinite(a)) and np.all(np.isfinite(b))):
        return 0.5
    idx = _boot_idx(len(y), n_boot)
    diff = _boot_spearman(a, y, idx) - _boot_spearman(b, y, idx)
    if diff.std() == 0:
        return 0.5 + 0.5 * float(np.sign(diff.mean()))
    return float(norm.cdf(diff.mean() / diff.std()))


def blend_weight(a: np.ndarray, b: np.ndarray, y: np.ndarray, shrink_runs: float = 4.0) -> float:
    """Weight w of `a` in w*a + (1-w)*b: the mean of a least-squares and a ranking weight, shrunk towards 1/2.

    `a` and `b` are (repeats, n_runs) out-of-fold predictions. The least-squares weight (clipped to
    [0, 1]) rewards calibrated, smooth predictions and alone leans to the GP even where the law ranks
    far better; the ranking weight, `beats_probability`, is what Spearman asks for but alone follows
    noise in CV differences. Their mean is pulled towards equal weights by n / (n + `shrink_runs`).
    Measured in bench/predictors.py over 72 subsamples per setting.
    """
    a2, b2, y = np.atleast_2d(a), np.atleast_2d(b), np.asarray(y, dtype=float)
    ma, mb = a2.mean(axis=0), b2.mean(axis=0)
    d = ma - mb
    if not (np.all(np.isfinite(d)) and d @ d > 0):
        return 0.5
    w_ls = float(np.clip((y - mb) @ d / (d @ d), 0.0, 1.0))
    w = (w_ls + beats_probability(a2, b2, y)) / 2
    return 0.5 + (w - 0.5) * len(y) / (len(y) + shrink_runs)


def choose_candidate(
    oofs: dict[str, np.ndarray], y: np.ndarray, default: tuple[str, str], n_boot: int = 200, z: float = 2.0
) -> tuple[str, dict[str, float]]:
    """The candidate to use and every candidate's CV Spearman: each predictor and the `default` blend.

    The default blends a data-mixing law and the GP (a strong prior and a flexible model, whose failures
    rarely coincide), weighted by `blend_weight`; it is named like `0.62*loglinear_multi+0.38*gp`. It is
    kept unless the best-scoring candidate beats it by more than `z` bootstrap standard errors of the
    paired difference in CV Spearman (runs resampled, seed 0): with 16-32 runs, CV Spearman differences
    of a few hundredths are noise, and following the arg-max then costs more than it gains (measured in
    bench/predictors.py); a clearly better predictor still wins. The blend's score is slightly optimistic
    (its weight is fitted on the same out-of-fold predictions), which only favours the default.
    """
    y = np.asarray(y, dtype=float)
    w = round(blend_weight(oofs[default[0]], oofs[default[1]], y), 2)  # as written in the name
    name = f"{w:.2f}*{default[0]}+{1 - w:.2f}*{default[1]}"
    cands = {**oofs, name: w * oofs[default[0]] + (1 - w) * oofs[default[1]]}
    scores = {n: oof_spearman(o, y) for n, o in cands.items()}
    best = max(scores, key=lambda n: -math.inf if math.isnan(scores[n]) else scores[n])
    if best == name or math.isnan(scores[name]):
        return best, scores
    idx = _boot_idx(len(y), n_boot)
    diff = _boot_spearman(cands[best], y, idx) - _boot_spearman(cands[name], y, idx)
    return (best if diff.mean() > z * diff.std() else name), scores


def parse_candidate(chosen: str) -> list[tuple[float, str]]:
    """(weight, predictor) terms of a candidate name: `gp`, `a+b` (equal weights) or `0.6*a+0.4*b`."""
    terms = [t.split("*", 1) if "*" in t else [None, t] for t in chosen.split("+")]
    unknown = [m for _, m in terms if m not in PREDICTORS]
    if unknown:
        raise ValueError(f"unknown predictor(s) {unknown}; choose from {list(PREDICTORS)}")
    if any(w is None for w, _ in terms):
        return [(1.0 / len(terms), m) for _, m in terms]
    return [(float(w), m) for w, m in terms]


def build_predictor(chosen: str, noise_sd: float | None = None) -> BaseEstimator:
    """An unfitted estimator for a candidate name (see `parse_candidate`), the GP given `noise_sd`."""
    terms = parse_candidate(chosen)
    if len(terms) == 1:
        return make_predictor(terms[0][1], noise_sd)
    return EnsemblePredictor(tuple(make_predictor(m, noise_sd) for _, m in terms), tuple(w for w, _ in terms))


def auto_default(components: np.ndarray | None) -> tuple[str, str]:
    """The pair `auto` blends by default: the multi-target law when components are given (else the law), and GP."""
    return ("loglinear_multi", "gp") if components is not None else ("loglinear", "gp")


def select_predictor(
    name: str,
    X: np.ndarray,
    y: np.ndarray,
    folds: int = 5,
    seed: int = 0,
    repeats: int = 3,
    components: np.ndarray | None = None,
    noise_sd: float | None = None,
) -> tuple[BaseEstimator, str, dict[str, float]]:
    """Score the named predictor (for `auto`: all, see `choose_candidate`) by repeated K-fold CV; fit the pick.

    `components` (n_runs, m), when the target is a combination of per-component metrics (bpb_mean of the
    bpb_<domain>), lets `loglinear_multi` fit one law per component; see `target_components`. `noise_sd`,
    the target's run-to-run noise (replicate runs, see `automixer.sweep.noise`), is the GP's noise floor.
    Replicates of one mixture always share a CV fold (`group_folds`).
    """
    if name != "auto" and name not in PREDICTORS:
        raise ValueError(f"unknown predictor {name!r}; choose one of {['auto', *PREDICTORS]}")
    X, y = np.asarray(X, dtype=float), np.asarray(y, dtype=float)
    if name == "auto":
        names = [n for n in PREDICTORS if components is not None or n not in NEEDS_COMPONENTS]
        oofs = candidate_oofs(names, X, y, folds, seed, repeats, components, noise_sd)
        chosen, scores = choose_candidate(oofs, y, auto_default(components))
    else:
        est = make_predictor(name, noise_sd)
        chosen, scores = name, {name: cv_spearman(est, X, y, folds, seed, repeats, components)}
    return fit_estimator(build_predictor(chosen, noise_sd), X, y, components), chosen, scores


def target_components(df, domains: list[str], target: str | dict[str, float]) -> np.ndarray | None:
    """The per-component columns a target is a linear combination of, as (n_runs, m), or None.

    A dict target (column -> weight) is its columns; `<prefix>_mean` (bpb_mean) is `<prefix>_<domain>` for
    every domain when those columns are present, finite and average to it. These are what
    `loglinear_multi` fits one data-mixing law each to.
    """
    cols = list(target) if isinstance(target, dict) else None
    if cols is None and target.endswith("_mean"):
        cols = [f"{target[: -len('mean')]}{d}" for d in domains]
    if not cols or len(cols) < 2 or not all(c in df.columns for c in cols):
        return None
    C = df[cols].to_numpy(dtype=float)
    if not np.all(np.isfinite(C)):
        return None
    if isinstance(target, str) and not np.allclose(C.mean(axis=1), df[target].to_numpy(dtype=float), atol=1e-6):
        return None
    return C
