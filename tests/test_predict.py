"""Predictors on synthetic data-mixing laws, CV Spearman, selection and ensembles."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
from scipy.stats import spearmanr
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

from automixer.predict import (
    PREDICTORS,
    EnsemblePredictor,
    GPPredictor,
    LightGBMPredictor,
    LogLinearPredictor,
    MultiLogLinearPredictor,
    blend_weight,
    build_predictor,
    choose_candidate,
    cv_spearman,
    fit_estimator,
    parse_candidate,
    select_predictor,
    target_components,
)
from automixer.predict.select import beats_probability

DOMAINS = ["code", "math", "web", "synthetic"]
T = np.array([[-2.5, 0.3, 0.2, 0.0], [0.1, -3.0, 0.0, 0.4], [0.2, 0.0, -1.5, 0.3], [0.0, 0.5, 0.3, -2.0]])
"""Per-domain law exponents: row j is t_j of L_j = c_j + k_j exp(t_j . w) (own domain helps most)."""


def per_domain_losses(X: np.ndarray) -> np.ndarray:
    """Four per-domain losses, each its own data-mixing law; their mean is a bpb_mean-like target."""
    return np.array([2.0, 2.5, 3.0, 2.2]) + np.array([1.0, 0.8, 0.6, 1.2]) * np.exp(X @ T.T)


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray]:
    """60 Dirichlet mixtures with y = 1 + 0.5 exp(-2 w_code + w_web) + noise."""
    rng = np.random.default_rng(0)
    X = rng.dirichlet(np.ones(len(DOMAINS)), size=60)
    y = 1.0 + 0.5 * np.exp(-2.0 * X[:, 0] + 1.0 * X[:, 2]) + rng.normal(0.0, 0.01, size=60)
    return X, y


@pytest.fixture(scope="module")
def multi() -> tuple[np.ndarray, ...]:
    """32 noisy training mixtures of the per-domain laws and 300 noise-free held-out ones."""
    rng = np.random.default_rng(7)
    X = rng.dirichlet(np.ones(4), size=32)
    C = per_domain_losses(X) + rng.normal(0.0, 0.01, size=(32, 4))
    Xt = rng.dirichlet(np.ones(4), size=300)
    return X, C.mean(axis=1), C, Xt, per_domain_losses(Xt).mean(axis=1)


def test_loglinear_recovers_the_law(data) -> None:
    X, y = data
    assert cv_spearman(LogLinearPredictor(), X, y, folds=5, seed=0) > 0.9
    model = LogLinearPredictor().fit(X, y)
    grid = np.random.default_rng(1).dirichlet(np.ones(4), size=200)
    truth = 1.0 + 0.5 * np.exp(-2.0 * grid[:, 0] + grid[:, 2])
    assert np.abs(model.predict(grid) - truth).max() < 0.05
    assert model.sign_ == 1.0  # loss grows with exp(.), as in the law


def test_loglinear_fits_a_decreasing_law() -> None:
    X = np.random.default_rng(2).dirichlet(np.ones(3), size=40)
    y = 4.0 - 0.7 * np.exp(1.5 * X[:, 1])
    assert LogLinearPredictor().fit(X, y).sign_ == -1.0
    model = LogLinearPredictor(l2=1e-8).fit(X, y)  # without the ridge's pull on t the law is exact
    assert model.sign_ == -1.0 and np.abs(model.predict(X) - y).max() < 1e-4
    assert np.allclose(model.t_ - model.t_.mean(), [-0.5, 1.0, -0.5], atol=1e-3)


def test_multi_target_law_beats_one_law_on_a_mean_of_laws(multi) -> None:
    X, y, C, Xt, yt = multi
    model = MultiLogLinearPredictor().fit(X, y, components=C)
    assert len(model.laws_) == 4 and np.allclose(model.combine_, 0.25, atol=1e-6)
    assert model.predict_components(Xt).shape == (300, 4)
    multi_err = np.abs(model.predict(Xt) - yt).mean()
    single_err = np.abs(LogLinearPredictor().fit(X, y).predict(Xt) - yt).mean()
    assert multi_err < 0.5 * single_err
    assert spearmanr(model.predict(Xt), yt).statistic > 0.97
    with pytest.raises(ValueError, match="5 rows for 32 runs"):
        MultiLogLinearPredictor().fit(X, y, components=C[:5])
    # without components it is the single-target law
    assert np.allclose(MultiLogLinearPredictor().fit(X, y).predict(Xt), LogLinearPredictor().fit(X, y).predict(Xt))


def test_gp_ranks_well(data) -> None:
    X, y = data
    assert cv_spearman(GPPredictor(), X, y, folds=5, seed=0) > 0.8
    mean, std = GPPredictor().fit(X, y).predict(X[:3], return_std=True)
    assert mean.shape == std.shape == (3,) and np.all(std > 0)


def test_lightgbm_fits_and_ranks_a_known_function() -> None:
    rng = np.random.default_rng(3)
    X, Xt = rng.dirichlet(np.ones(4), size=64), rng.dirichlet(np.ones(4), size=300)

    def f(W: np.ndarray) -> np.ndarray:
        return (W[:, 0] - 0.3) ** 2 + 0.5 * W[:, 1]

    model = LightGBMPredictor().fit(X, f(X))
    assert spearmanr(model.predict(Xt), f(Xt)).statistic > 0.85
    assert np.ptp(LightGBMPredictor().fit(X[:16], f(X[:16])).predict(Xt)) > 0  # splits even on 16 runs
    assert np.array_equal(model.predict(Xt), LightGBMPredictor().fit(X, f(X)).predict(Xt))  # deterministic


def test_auto_scores_every_candidate_and_fits_its_pick(data) -> None:
    X, y = data
    est, chosen, scores = select_predictor("auto", X, y, folds=5, seed=0, repeats=1)
    singles = set(PREDICTORS) - {"loglinear_multi"}  # needs components
    (blend,) = set(scores) - singles  # + the default blend of the law and the GP
    assert re.fullmatch(r"0\.\d\d\*loglinear\+0\.\d\d\*gp", blend), blend
    assert chosen in scores and chosen in (max(scores, key=scores.get), blend)
    assert isinstance(est, type(build_predictor(chosen))) and hasattr(est, "n_features_in_")
    est2, chosen2, scores2 = select_predictor("linear", X, y, folds=5, seed=0)
    assert chosen2 == "linear" and list(scores2) == ["linear"]
    with pytest.raises(ValueError, match="unknown predictor 'ridge'"):
        select_predictor("ridge", X, y)
    with pytest.raises(ValueError, match="unknown predictor"):
        build_predictor("gp+ridge")


def test_choose_candidate_keeps_the_default_unless_clearly_beaten() -> None:
    y = np.arange(40.0)
    rng = np.random.default_rng(0)
    base = y + rng.normal(0.0, 8.0, size=(2, 40))  # the two default members agree: their mean is no better
    close = {"loglinear": base, "gp": base.copy(), "linear": y + rng.normal(0.0, 7.0, size=(2, 40))}
    chosen, scores = choose_candidate(close, y, ("loglinear", "gp"))
    blend = "0.50*loglinear+0.50*gp"  # identical members: no reason to prefer either
    assert set(scores) == {"loglinear", "gp", "linear", blend}
    assert max(scores, key=scores.get) == "linear" and scores["linear"] - scores[blend] < 0.02
    assert chosen == blend  # the best CV score, but within noise: keep the default
    clear = {**close, "lightgbm": y + rng.normal(0.0, 0.5, size=(2, 40))}
    assert choose_candidate(clear, y, ("loglinear", "gp"))[0] == "lightgbm"  # far better: picked


def test_auto_is_within_002_of_the_best_single_predictor(multi) -> None:
    X, y, C, Xt, yt = multi
    fitted = {name: fit_estimator(PREDICTORS[name](), X, y, C) for name in PREDICTORS}
    held_out = {name: spearmanr(est.predict(Xt), yt).statistic for name, est in fitted.items()}
    est, chosen, scores = select_predictor("auto", X, y, components=C)
    auto = spearmanr(est.predict(Xt), yt).statistic
    assert "loglinear_multi" in scores
    assert auto >= max(held_out.values()) - 0.02, (chosen, auto, held_out)


def test_blend_weight_follows_the_better_member_shrunk_to_half() -> None:
    y = np.arange(40.0)
    noise = np.random.default_rng(1).normal(0.0, 10.0, size=(1, 40))
    assert blend_weight(y[None], y + noise, y) == pytest.approx(0.5 + 0.5 * 40 / 44, abs=1e-3)  # 1, shrunk
    assert blend_weight(y + noise, y[None], y, shrink_runs=0) == pytest.approx(0.0, abs=1e-3)
    assert blend_weight(y[None], y[None], y) == 0.5  # indistinguishable members


def test_blend_weight_counts_ranking_as_well_as_least_squares() -> None:
    y = np.arange(40.0)
    ranks_better = (y + np.random.default_rng(2).normal(0.0, 2.0, 40)) * 3.0  # right order, wrong scale
    smooth = np.full(40, y.mean()) + 0.1 * np.random.default_rng(3).normal(0.0, 1.0, 40)  # calibrated, no order
    assert beats_probability(ranks_better[None], smooth[None], y) > 0.99
    w_ls = float(np.clip((y - smooth) @ (ranks_better - smooth) / np.sum((ranks_better - smooth) ** 2), 0, 1))
    assert w_ls < 0.5 < blend_weight(ranks_better[None], smooth[None], y, shrink_runs=0)
    assert beats_probability(smooth[None], ranks_better[None], y) < 0.01


def test_ensembles_blend_their_members(data) -> None:
    X, y = data
    members = [GPPredictor().fit(X[:40], y[:40]), PREDICTORS["linear"]().fit(X[:40], y[:40])]
    preds = np.array([m.predict(X[40:]) for m in members])
    ens = build_predictor("gp+linear")
    assert isinstance(ens, EnsemblePredictor) and ens.fit(X[:40], y[:40]) is ens
    assert np.allclose(ens.predict(X[40:]), preds.mean(axis=0))
    weighted = build_predictor("0.75*gp+0.25*linear").fit(X[:40], y[:40])
    assert np.allclose(weighted.predict(X[40:]), 0.75 * preds[0] + 0.25 * preds[1])
    assert parse_candidate("0.75*gp+0.25*linear") == [(0.75, "gp"), (0.25, "linear")]
    assert parse_candidate("gp") == [(1.0, "gp")]
    with pytest.raises(ValueError, match="at least one estimator"):
        EnsemblePredictor().fit(X, y)
    with pytest.raises(ValueError, match="non-negative"):
        EnsemblePredictor((GPPredictor(),), (-1.0,)).fit(X, y)


@pytest.mark.parametrize("name", [*PREDICTORS, "loglinear+lightgbm", "0.7*gp+0.3*linear"])
def test_sklearn_conventions(data, name: str) -> None:
    X, y = data
    est = build_predictor(name)
    params = est.get_params(deep=False)
    clone_ = clone(est)
    assert clone_.get_params(deep=False).keys() == params.keys() and clone_ is not est
    assert est.fit(X[:30], y[:30]) is est
    assert est.predict(X[30:]).shape == (30,)
    assert not hasattr(clone(est), "n_features_in_")  # clones are unfitted
    assert all(not k.endswith("_") for k in params)
    assert [k for k in vars(est) if k.endswith("_") and not k.startswith("_")]  # fitted attributes
    with pytest.raises(ValueError, match="expecting 4 features"):
        est.predict(X[:, :3])
    with pytest.raises(NotFittedError):
        clone(est).predict(X)


def test_cv_spearman_is_deterministic_and_checks_size(data) -> None:
    X, y = data
    a = cv_spearman(PREDICTORS["linear"](), X, y, folds=5, seed=3, repeats=2)
    assert a == cv_spearman(PREDICTORS["linear"](), X, y, folds=5, seed=3, repeats=2)
    assert a != cv_spearman(PREDICTORS["linear"](), X, y, folds=5, seed=3, repeats=1)
    with pytest.raises(ValueError, match="at least 5 runs"):
        cv_spearman(PREDICTORS["linear"](), X[:4], y[:4], folds=5)


def test_target_components() -> None:
    X = np.random.default_rng(4).dirichlet(np.ones(4), size=5)
    C = per_domain_losses(X)
    df = pd.DataFrame({**{f"bpb_{d}": C[:, i] for i, d in enumerate(DOMAINS)}, "bpb_mean": C.mean(axis=1)})
    assert np.array_equal(target_components(df, DOMAINS, "bpb_mean"), C)
    assert np.array_equal(target_components(df, DOMAINS, {"bpb_code": 0.5, "bpb_web": 0.5}), C[:, [0, 2]])
    assert target_components(df, DOMAINS, "bpb_code") is None
    assert target_components(df.drop(columns="bpb_web"), DOMAINS, "bpb_mean") is None
    assert target_components(df.assign(bpb_mean=df["bpb_mean"] + 1), DOMAINS, "bpb_mean") is None
