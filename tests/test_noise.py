"""Run-to-run noise: its estimate from replicate runs, and its use by CV (grouped folds) and the predictors."""

from __future__ import annotations

import json
import logging
import math

import numpy as np
import pandas as pd
import pytest
from scipy.stats import norm, spearmanr

from automixer.predict import GPPredictor, build_predictor, cv_spearman, select_predictor
from automixer.predict.select import group_folds
from automixer.sweep.noise import estimate_noise, noise_message, pooled_sd, replicate_groups
from automixer.sweep.table import load_runs_table, write_runs_table


def _frame() -> pd.DataFrame:
    """Mixture A three times (bpb 1.0, 1.2, 1.4), B twice (2.0, 2.1), C once."""
    return pd.DataFrame(
        {
            "run_id": ["a", "b", "a-s1", "c", "a-s2", "b-s1"],
            "weight_code": [0.5, 0.3, 0.5, 0.1, 0.5, 0.3],
            "weight_web": [0.5, 0.7, 0.5, 0.9, 0.5, 0.7],
            "bpb_mean": [1.0, 2.0, 1.2, 3.0, 1.4, 2.1],
            "bpb_code": [1.0, 2.0, 1.2, 3.0, 1.4, np.nan],
            "seed": [0, 0, 1000, 0, 2000, 1000],
            "wall_s": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
            "tokens_seen_code": [1, 2, 3, 4, 5, 6],
            "replicate_of": [None, None, "a", None, "a", "b"],
        }
    )


def test_pooled_sd_has_the_known_answer() -> None:
    noise = estimate_noise(_frame())
    assert set(noise["metrics"]) == {"bpb_mean", "bpb_code"}  # bookkeeping columns are not metrics
    assert noise["n_runs"] == 6 and noise["n_groups"] == 2 and noise["group_sizes"] == [3, 2]
    assert noise["groups"] == [["a", "a-s1", "a-s2"], ["b", "b-s1"]]
    # (0.04 + 0 + 0.04 + 0.005 + 0.005) / (2 + 1)
    assert noise["metrics"]["bpb_mean"] == {"sd": pytest.approx(math.sqrt(0.085 / 3)), "dof": 3}
    # b-s1 has no bpb_code: B has one value left, so only A counts
    assert noise["metrics"]["bpb_code"] == {"sd": pytest.approx(math.sqrt(0.08 / 2)), "dof": 2}
    assert noise_message(noise) == "run-to-run noise: bpb_mean sd 0.1683 over 2 anchors ([3, 2]) (3 degrees of freedom)"
    even = estimate_noise(_frame().iloc[[0, 1, 2, 5]], ["bpb_mean"])
    assert noise_message(even).startswith("run-to-run noise: bpb_mean sd 0.1118 over 2 anchors x 2 seeds")
    alone = estimate_noise(_frame().iloc[[0, 1, 3]], ["bpb_mean"])
    assert alone["metrics"]["bpb_mean"] == {"sd": None, "dof": 0} and "no replicate runs" in noise_message(alone)
    with pytest.raises(ValueError, match="not in the runs table"):
        estimate_noise(_frame(), ["loss"])


def test_noise_from_a_loaded_table_and_groups_by_first_appearance(tmp_path) -> None:
    df = _frame()
    df.loc[2, "weight_code"] += 1e-12  # a CSV round trip's float noise is still the same mixture
    table = load_runs_table(write_runs_table(df, tmp_path / "runs.csv"), "bpb_mean")
    assert estimate_noise(table, ["bpb_mean"])["metrics"]["bpb_mean"]["dof"] == 3
    assert replicate_groups(table.X).tolist() == [0, 1, 0, 2, 0, 1]
    assert pooled_sd([1.0, 3.0, 5.0], [0, 0, 1]) == (pytest.approx(math.sqrt(2.0)), 1)


def _replicated(n_mixtures: int = 12, copies: int = 3, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mixtures repeated `copies` times (interleaved); y is random per mixture plus tiny seed noise."""
    rng = np.random.default_rng(seed)
    W = rng.dirichlet(np.ones(3), size=n_mixtures)
    per_mixture = rng.normal(size=n_mixtures)  # no law: nothing to learn across mixtures
    idx = np.tile(np.arange(n_mixtures), copies)
    return W[idx], per_mixture[idx] + rng.normal(0, 0.01, size=len(idx)), idx


def test_grouped_folds_keep_replicates_together_and_stop_the_leak() -> None:
    from sklearn.model_selection import KFold

    X, y, idx = _replicated()
    folds = group_folds(X, 5, seed=0)
    tested = np.concatenate([test for _, test in folds])
    assert sorted(tested.tolist()) == list(range(len(y)))
    for train, test in folds:
        assert not set(idx[test]) & set(idx[train])  # no mixture on both sides
    # without replicates the folds are exactly the shuffled KFold over runs
    X1 = X[:12]
    ref = [(tr.tolist(), sorted(te.tolist())) for tr, te in KFold(5, shuffle=True, random_state=3).split(X1)]
    assert [(tr.tolist(), te.tolist()) for tr, te in group_folds(X1, 5, seed=3)] == ref
    # y has no structure across mixtures, so an honest CV Spearman is near 0; split replicates would leak
    honest = cv_spearman(GPPredictor(), X, y, folds=5, seed=0)
    leaky = np.empty_like(y)
    for tr, te in KFold(5, shuffle=True, random_state=0).split(X):
        leaky[te] = GPPredictor().fit(X[tr], y[tr]).predict(X[te])
    assert spearmanr(leaky, y).statistic > 0.9 and honest < 0.5
    with pytest.raises(ValueError, match=r"at least 5 runs of distinct mixtures, got 4 \(12 runs"):
        cv_spearman(GPPredictor(), X[np.isin(idx, range(4))], y[np.isin(idx, range(4))], folds=5)


def test_gp_noise_floor_is_the_replicate_variance_in_normalised_units() -> None:
    rng = np.random.default_rng(1)
    X = rng.dirichlet(np.ones(3), size=40)
    y = 1.0 + 0.5 * np.exp(-2.0 * X[:, 0] + X[:, 2])  # noise-free: the free GP fits almost no noise
    free = GPPredictor().fit(X, y)
    sd = 0.3 * float(np.std(y))
    floored = GPPredictor(noise_sd=sd).fit(X, y)
    assert free.noise_floor_ == 1e-6 and free.model_.kernel_.k2.noise_level < 0.01
    assert floored.noise_floor_ == pytest.approx(0.09)
    assert floored.model_.kernel_.k2.noise_level >= floored.noise_floor_ * (1 - 1e-9)
    assert np.abs(floored.predict(X) - y).mean() > 3 * np.abs(free.predict(X) - y).mean()  # it stops interpolating
    assert GPPredictor(noise_sd=100.0).fit(X, y).noise_floor_ == 1.0  # all noise: capped at y's variance
    est, chosen, _ = select_predictor("gp", X, y, folds=5, noise_sd=sd, repeats=1)
    assert chosen == "gp" and est.noise_sd == sd and est.noise_floor_ == pytest.approx(0.09)
    blend = build_predictor("0.5*loglinear+0.5*gp", noise_sd=sd)
    assert [getattr(e, "noise_sd", "none") for e in blend.estimators] == ["none", sd]


def test_propose_uses_the_tables_replicates(tmp_path) -> None:
    from automixer.config import ProposeConfig
    from automixer.fitting import load_target_table, propose_mixture

    X, _, idx = _replicated(n_mixtures=16, copies=2, seed=2)
    rng = np.random.default_rng(3)
    y = 1.0 + 0.5 * np.exp(-2.0 * X[:, 0] + X[:, 2]) + rng.normal(0, 0.02, size=len(X))
    df = pd.DataFrame({"run_id": [f"r{i:02d}" for i in range(len(X))], "bpb_mean": y})
    for j, d in enumerate(["code", "math", "web"]):
        df[f"weight_{d}"] = X[:, j]
    table = load_target_table(write_runs_table(df, tmp_path / "runs.parquet"), "bpb_mean")
    cfg = ProposeConfig(name="p", mixtures_dir=str(tmp_path / "m"), predictor="gp", bootstrap=8)
    spec, _ = propose_mixture(table, cfg, "runs.parquet", natural={"code": 0.2, "math": 0.3, "web": 0.5})
    noise = spec.provenance["noise"]
    assert noise["dof"] == 16 and noise["replicate_groups"] == 16
    assert noise["sd"] == pytest.approx(pooled_sd(y, idx)[0]) and 0.01 < noise["sd"] < 0.04
    u = spec.uncertainty.model_dump()
    assert u["noise_sd"] == pytest.approx(noise["sd"]) and 0 <= u["p_beats_natural_one_run"] <= 1
    assert 0 <= u["p_beats_uniform_one_run"] <= 1


def test_p_beats_natural_for_one_run_adds_seed_noise() -> None:
    from automixer.uncertainty import _one_run

    out = _one_run(np.array([0.1, 0.1, -0.1]), 0.1 / math.sqrt(2))
    assert out["noise_sd"] == pytest.approx(0.1 / math.sqrt(2))
    assert out["p_beats_natural_one_run"] == pytest.approx((2 * norm.cdf(1.0) + norm.cdf(-1.0)) / 3)
    assert _one_run(np.array([0.1]), None) == {} == _one_run(np.array([0.1]), 0.0)
    assert set(_one_run(np.array([0.1]), 0.1, "uniform")) == {"noise_sd", "p_beats_uniform_one_run"}


def test_stage_writes_and_logs_the_noise(tmp_path, caplog) -> None:
    from automixer import stages
    from automixer.config import config_from_dict

    cfg = config_from_dict({"work_dir": str(tmp_path), "domains": ["code", "web"]}, where="test")
    results = [{"run_id": r, "status": "ok", "metrics": {"bpb_mean": 1.0}} for r in _frame()["run_id"]]
    with caplog.at_level(logging.INFO, logger="automixer"):
        noise = stages.write_noise_estimate(cfg, _frame(), results)
    assert set(noise["metrics"]) == {"bpb_mean"}  # the metrics the runs reported
    assert json.loads(cfg.path("sweep", "noise.json").read_text()) == noise
    assert "run-to-run noise: bpb_mean sd 0.1683 over 2 anchors" in caplog.text
