"""fit_report (with a held-out eval table) and propose_mixture end to end on hand-made tables."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from automixer.config import ProposeConfig
from automixer.feasible import InfeasibleError
from automixer.fitting import (
    fit_report,
    load_target_table,
    pareto_front,
    parse_target,
    propose_mixture,
    target_values,
)
from automixer.mixture import read_mixture
from automixer.sweep.table import load_runs_table

DOMAINS = ["code", "math", "web"]
NATURAL = {"code": 0.2, "math": 0.3, "web": 0.5}


def _law(W: np.ndarray) -> np.ndarray:
    return 1.0 + 0.5 * np.exp(-2.0 * W[:, 0] + 1.0 * W[:, 2])


def _write_table(path, n: int, seed: int, domains: list[str] = DOMAINS) -> None:
    rng = np.random.default_rng(seed)
    W = rng.dirichlet(np.ones(len(domains)), size=n)
    df = pd.DataFrame({"run_id": [f"s{seed}-{i:02d}" for i in range(n)]})
    for j, d in enumerate(domains):
        df[f"weight_{d}"] = W[:, j]
    df["bpb_mean"] = _law(W) + rng.normal(0, 0.005, size=n)
    df.loc[3, "bpb_mean"] = np.nan  # a run whose metric is missing
    df.to_csv(path, index=False)


def test_fit_report_with_eval(tmp_path) -> None:
    _write_table(tmp_path / "train.csv", n=40, seed=0)
    _write_table(tmp_path / "eval.csv", n=12, seed=1)
    train = load_runs_table(tmp_path / "train.csv", "bpb_mean")
    ev = load_runs_table(tmp_path / "eval.csv", "bpb_mean")
    rep = fit_report(train, "bpb_mean", predictor="loglinear", folds=5, seed=0, eval=ev)
    assert rep["predictor"] == "loglinear" and list(rep["cv_scores"]) == ["loglinear"]
    assert rep["cv_spearman"] > 0.9
    assert (rep["n_train"], rep["n_skipped_missing"], rep["n_renormalised"], rep["n_eval"]) == (39, 1, 0, 11)
    assert rep["eval_spearman"] > 0.9
    truth = ev.df.set_index("run_id")["bpb_mean"]
    assert rep["eval_actual_best"] == truth.idxmin()
    assert rep["eval_predicted_best"] in truth.index and rep["eval_regret"] >= 0
    assert rep["eval_regret"] == pytest.approx(truth[rep["eval_predicted_best"]] - truth.min())


def test_eval_domains_must_match(tmp_path) -> None:
    _write_table(tmp_path / "train.csv", n=20, seed=0)
    _write_table(tmp_path / "eval.csv", n=10, seed=1, domains=["code", "web", "books"])
    train = load_runs_table(tmp_path / "train.csv", "bpb_mean")
    ev = load_runs_table(tmp_path / "eval.csv", "bpb_mean")
    with pytest.raises(ValueError, match=r"missing in eval: \['math'\], extra in eval: \['books'\]"):
        fit_report(train, "bpb_mean", predictor="linear", eval=ev)


def _propose(tmp_path, n: int = 40, **kw):
    _write_table(tmp_path / "runs.csv", n=n, seed=0)
    table = load_target_table(tmp_path / "runs.csv", kw.get("target", "bpb_mean"))
    cfg = ProposeConfig(name="best", mixtures_dir=str(tmp_path / "mixtures"), **kw)
    return propose_mixture(table, cfg, sweep=str(tmp_path / "runs.csv"), natural=NATURAL)


def test_propose_mixture_under_constraints(tmp_path) -> None:
    constraints = {"min_weight": {"web": 0.1}, "max_weight": {"code": 0.6}}
    spec, path = _propose(tmp_path, constraints=constraints, bootstrap=0)
    assert path == tmp_path / "mixtures" / "best.yaml" and read_mixture(path) == spec
    # the law wants as much code and as little web as allowed: code at its cap, web at its floor
    assert spec.weights["code"] == pytest.approx(0.6, abs=0.02) and spec.weights["web"] == pytest.approx(0.1, abs=0.02)
    assert spec.weights["code"] <= 0.6 and spec.weights["web"] >= 0.1
    assert abs(sum(spec.weights.values()) - 1.0) <= 1e-9
    assert spec.predicted_target == pytest.approx(_law(np.array([[0.6, 0.3, 0.1]]))[0], abs=0.02)
    assert spec.uncertainty is None
    prov = spec.provenance
    assert prov["predictor"] in prov["cv_scores"] and prov["cv_spearman"] == max(prov["cv_scores"].values())
    assert prov["n_runs"] == 39 and prov["sweep"].endswith("runs.csv")
    assert prov["constraints"] == constraints
    assert prov["created"].endswith("Z") and prov["automixer_version"]
    assert spec.predicted_target <= prov["best_observed"]["bpb_mean"] + 0.02
    assert prov["natural"]["weights"] == pytest.approx(NATURAL) and prov["natural"]["source"] == "given"
    assert prov["natural"]["bpb_mean"] == pytest.approx(_law(np.array([[0.2, 0.3, 0.5]]))[0], abs=0.02)


def test_bootstrap_intervals(tmp_path) -> None:
    kw = {"predictor": "loglinear", "bootstrap": 20, "seed": 3, "constraints": {"max_weight": {"code": 0.5}}}
    spec, path = _propose(tmp_path, n=60, **kw)
    u = spec.uncertainty
    assert (u.n_resamples, u.n_failed, u.level, u.seed) == (20, 0, 0.9, 3)
    lo, hi = u.predicted_target_ci
    assert lo <= spec.predicted_target <= hi and hi - lo < 0.05
    for d, (a, b) in u.weights_ci.items():
        assert a - 1e-9 <= spec.weights[d] <= b + 1e-9, d
    assert u.weights_ci["code"][1] <= 0.5  # every re-optimised proposal meets the constraints
    assert u.improvement_ci[0] > 0 and u.p_beats_natural == 1.0  # far better than natural, by every refit
    assert u.natural == pytest.approx(NATURAL)
    assert u.uniform_improvement_ci[0] <= u.uniform_improvement_ci[1] and u.uniform_improvement_ci[1] > 0
    assert 0.5 < u.p_beats_uniform <= 1  # the law's optimum is far from equal weights too
    assert read_mixture(path).uncertainty == u
    pinned = {"pinned": {"code": 1 / 3, "math": 1 / 3, "web": 1 / 3}}
    at_uniform, _ = _propose(tmp_path, n=60, **{**kw, "constraints": pinned})
    # the proposal IS uniform: every refit predicts no gain, so it never beats uniform
    assert at_uniform.uncertainty.uniform_improvement_ci == pytest.approx((0.0, 0.0), abs=1e-9)
    assert at_uniform.uncertainty.p_beats_uniform == 0.0
    assert at_uniform.provenance["uniform"]["bpb_mean"] == pytest.approx(at_uniform.predicted_target)
    again, _ = _propose(tmp_path, n=60, **kw)
    assert again.uncertainty.model_dump(exclude={"seconds"}) == u.model_dump(exclude={"seconds"})
    other, _ = _propose(tmp_path, n=60, **{**kw, "seed": 4})
    assert other.uncertainty.predicted_target_ci != u.predicted_target_ci


def test_weighted_target_and_caps(tmp_path) -> None:
    df = pd.read_csv(_write_table(tmp_path / "runs.csv", n=40, seed=0) or tmp_path / "runs.csv")
    df["bpb_code"] = 1.0 + df["weight_web"]  # wants no web
    df.loc[5, "bpb_code"] = np.nan
    df.to_csv(tmp_path / "runs.csv", index=False)
    target = {"bpb_mean": 1.0, "bpb_code": 2.0}
    table = load_target_table(tmp_path / "runs.csv", target)
    assert table.n_skipped_missing == 2 and len(table.df) == 38
    np.testing.assert_allclose(target_values(table, target), (table.y("bpb_mean") + 2 * table.y("bpb_code")) / 3)
    c = {"max_repetition_ratio": 2.0, "full_run_tokens": 1000, "available_tokens": {"code": 100, "math": 1000}}
    cfg = ProposeConfig(target=target, predictor="linear", bootstrap=0, constraints=c, mixtures_dir=str(tmp_path))
    spec, _ = propose_mixture(table, cfg, sweep="x", available_tokens={"web": 1000})
    assert spec.target == "0.3333*bpb_mean+0.6667*bpb_code"
    assert spec.weights["code"] == pytest.approx(0.2, abs=1e-12)  # 100 tokens x 2 epochs / 1000
    assert spec.provenance["repetition_caps"] == {"code": 0.2, "math": 1.0, "web": 1.0}
    assert spec.provenance["target_weights"] == pytest.approx({"bpb_mean": 1 / 3, "bpb_code": 2 / 3})
    assert spec.provenance["natural"]["source"] == "mean of the swept weights"
    assert parse_target("bpb_code=2, bpb_web=1") == {"bpb_code": 2.0, "bpb_web": 1.0}
    assert parse_target("bpb_mean") == "bpb_mean"


def test_infeasible_constraints_fail_before_fitting(tmp_path) -> None:
    groups = [{"name": "cw", "domains": ["code", "web"], "max": 0.3}]
    with pytest.raises(InfeasibleError, match=r": max_weight.math=0.5 \+ group 'cw'<=0.3 allow at most 0.8 < 1"):
        _propose(tmp_path, constraints={"min_weight": {"math": 0.2}, "max_weight": {"math": 0.5}, "groups": groups})
    assert not (tmp_path / "mixtures").exists()


def test_pareto_front_of_two_metrics(tmp_path) -> None:
    _write_table(tmp_path / "runs.csv", n=40, seed=0)
    df = pd.read_csv(tmp_path / "runs.csv")
    df["bpb_web"] = 2.0 - df["weight_web"] + 0.3 * df["weight_web"] ** 2
    df.to_csv(tmp_path / "runs.csv", index=False)
    table = load_target_table(tmp_path / "runs.csv", "bpb_mean")
    front = pareto_front(table, ["bpb_mean", "bpb_web"], ProposeConfig(predictor="linear"), n_points=5)
    assert len(front) >= 3 and set(front[0]) == {"weights", "bpb_mean", "bpb_web"}
    assert front[0]["bpb_mean"] < front[-1]["bpb_mean"] and front[0]["bpb_web"] > front[-1]["bpb_web"]
    assert front[-1]["weights"]["web"] > 0.9  # the bpb_web end puts almost everything on web


def test_propose_stage_uses_the_sweeps_natural_mixture_and_manifest(tmp_path) -> None:
    from automixer import stages
    from automixer.config import config_from_dict

    work = tmp_path / "w"
    _write_table(tmp_path / "runs.csv", n=30, seed=0)
    (work / "sweep").mkdir(parents=True)
    (work / "shards").mkdir()
    pd.read_csv(tmp_path / "runs.csv").to_parquet(work / "sweep" / "runs.parquet")
    (work / "sweep" / "fingerprint.json").write_text(json.dumps({"fingerprint": "f", "natural": NATURAL}))
    manifest = {"domains": {"code": {"tokens": 150}, "math": {"tokens": 5000}, "web": {"tokens": 5000}}}
    (work / "shards" / "manifest.json").write_text(json.dumps(manifest))
    constraints = {"max_repetition_ratio": 2.0, "full_run_tokens": 1000}
    propose = {"predictor": "linear", "bootstrap": 5, "mixtures_dir": str(tmp_path / "m"), "constraints": constraints}
    cfg = config_from_dict({"work_dir": str(work), "domains": DOMAINS, "synth": {"enabled": False}, "propose": propose})
    out = stages.propose(cfg)
    spec = out["spec"]
    assert spec["weights"]["code"] == pytest.approx(0.3, abs=1e-12)  # 150 tokens x 2 epochs / 1000
    assert spec["provenance"]["natural"]["weights"] == pytest.approx(NATURAL)
    assert spec["uncertainty"]["n_resamples"] == 5 and spec["uncertainty"]["natural"] == pytest.approx(NATURAL)
    assert read_mixture(out["path"]).weights == spec["weights"]
