"""fit_report (with a held-out eval table) and propose_mixture end to end on hand-made tables."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from automixer.config import ConstraintsConfig
from automixer.fitting import fit_report, propose_mixture
from automixer.mixture import read_mixture
from automixer.sweep.table import load_runs_table

DOMAINS = ["code", "math", "web"]


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


def test_propose_mixture_under_constraints(tmp_path) -> None:
    _write_table(tmp_path / "runs.csv", n=40, seed=0)
    table = load_runs_table(tmp_path / "runs.csv", "bpb_mean")
    constraints = ConstraintsConfig(min_weight={"web": 0.1}, max_weight={"code": 0.6})
    spec, path = propose_mixture(
        table, "bpb_mean", constraints, "auto", "best", tmp_path / "mixtures", sweep=str(tmp_path / "runs.csv")
    )
    assert path == tmp_path / "mixtures" / "best.yaml" and read_mixture(path) == spec
    # the law wants as much code and as little web as allowed: code at its cap, web at its floor
    assert spec.weights["code"] == pytest.approx(0.6, abs=0.02) and spec.weights["web"] == pytest.approx(0.1, abs=0.02)
    assert spec.weights["code"] <= 0.6 and spec.weights["web"] >= 0.1
    assert abs(sum(spec.weights.values()) - 1.0) <= 1e-9
    assert spec.predicted_target == pytest.approx(_law(np.array([[0.6, 0.3, 0.1]]))[0], abs=0.02)
    prov = spec.provenance
    assert prov["predictor"] in prov["cv_scores"] and prov["cv_spearman"] == max(prov["cv_scores"].values())
    assert prov["n_runs"] == 39 and prov["sweep"].endswith("runs.csv")
    assert prov["constraints"] == {"min_weight": {"web": 0.1}, "max_weight": {"code": 0.6}}
    assert prov["created"].endswith("Z") and prov["automixer_version"]
    assert spec.predicted_target <= prov["best_observed"]["bpb_mean"] + 0.02
