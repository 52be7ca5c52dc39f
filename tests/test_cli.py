"""The CLI on a hand-made runs table (bring your own sweep): JSON output, clear errors, no tracebacks."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from automixer.cli import app

runner = CliRunner()


def _table(n: int, seed: int, prefix: str = "weight_") -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    w = rng.dirichlet([1.0, 1.0, 1.0], size=n)
    loss = 1 + 0.5 * np.exp(-2 * w[:, 0] + w[:, 2]) + rng.normal(0, 0.005, n)
    cols = {f"{prefix}{d}": w[:, i] for i, d in enumerate(["code", "math", "web"])}
    return pd.DataFrame({"run_id": [f"r{seed}-{i}" for i in range(n)], **cols, "loss": loss})


@pytest.fixture
def tables(tmp_path):
    train = _table(40, 1)
    train.loc[2, "loss"] = np.nan
    train.loc[4, "weight_code"] *= 2
    train.to_csv(tmp_path / "R.csv", index=False)
    held = _table(15, 2)
    held.to_parquet(tmp_path / "H.parquet")
    return tmp_path / "R.csv", tmp_path / "H.parquet", held


def test_fit_json_with_eval(tables):
    train, held_path, held = tables
    res = runner.invoke(app, ["fit", "--runs", str(train), "--target", "loss", "--eval", str(held_path), "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout.strip().splitlines()[-1])
    assert out["cv_spearman"] > 0.9
    assert out["n_skipped_missing"] == 1 and out["n_renormalised"] == 1
    assert out["eval_spearman"] > 0.9
    assert out["eval_predicted_best"] in set(held["run_id"])


def test_fit_custom_prefix(tmp_path):
    _table(30, 3, prefix="w_").to_csv(tmp_path / "p.csv", index=False)
    res = runner.invoke(app, ["fit", "--runs", str(tmp_path / "p.csv"), "--target", "loss", "--weight-prefix", "w_"])
    assert res.exit_code == 0, res.output
    assert "cv_spearman" in res.stdout


def test_missing_target_is_a_clear_error(tables):
    train, _, _ = tables
    res = runner.invoke(app, ["fit", "--runs", str(train), "--target", "bpb_mean", "--json"])
    assert res.exit_code == 2
    assert "bpb_mean" in res.output and "loss" in res.output
    assert "Traceback" not in res.output


def test_propose_from_runs_table_respects_bounds(tables, tmp_path):
    train, _, _ = tables
    args = ["propose", "--runs", str(train), "--target", "loss", "--min", "math=0.2", "--max", "code=0.5"]
    res = runner.invoke(app, [*args, "--name", "byo", "--out", str(tmp_path / "mix"), "--bootstrap", "0"])
    assert res.exit_code == 0, res.output
    spec = yaml.safe_load((tmp_path / "mix" / "byo.yaml").read_text())
    w = spec["weights"]
    assert abs(sum(w.values()) - 1) < 1e-6 and w["math"] >= 0.2 - 1e-9 and w["code"] <= 0.5 + 1e-9
    assert spec["provenance"]["constraints"]["min_weight"] == {"math": 0.2}
    assert "uncertainty" not in spec and "CI" not in res.output


def test_propose_prints_and_stores_intervals(tables, tmp_path):
    train, _, _ = tables
    args = ["propose", "--runs", str(train), "--target", "loss", "--predictor", "linear", "--out", str(tmp_path)]
    extra = [
        "--pin",
        "math=0.2",
        "--group",
        "cw:code+web>=0.5",
        "--trust-kl",
        "0.5",
        "--bootstrap",
        "12",
        "--ci",
        "0.8",
    ]
    res = runner.invoke(app, [*args, *extra, "--natural", "code=0.3", "--natural", "math=0.3", "--natural", "web=0.4"])
    assert res.exit_code == 0, res.output
    spec = yaml.safe_load((tmp_path / "proposal.yaml").read_text())
    u, w = spec["uncertainty"], spec["weights"]
    assert w["math"] == 0.2 and w["code"] + w["web"] >= 0.5 - 1e-9
    assert u["n_resamples"] == 12 and u["level"] == 0.8 and u["natural"] == {"code": 0.3, "math": 0.3, "web": 0.4}
    out = " ".join(res.output.split())
    lo, hi = u["predicted_target_ci"]
    assert f"predicted loss = {spec['predicted_target']:.4f} (80% CI [{lo:.4f}, {hi:.4f}])" in out
    assert f"[{u['weights_ci']['code'][0]:.4f}, {u['weights_ci']['code'][1]:.4f}]" in out
    assert f"P(proposal beats natural) = {u['p_beats_natural']:.2f} over 12 bootstrap refits" in out
    uniform = spec["provenance"]["uniform"]["loss"]
    assert f"uniform weights: predicted {uniform:.4f}" in out and f"beats uniform) = {u['p_beats_uniform']:.2f}" in out
    assert spec["provenance"]["constraints"]["trust_region"] == {"radius": 0.5}


def test_propose_bad_bound_syntax_and_infeasible(tables, tmp_path):
    train, _, _ = tables
    base = ["propose", "--runs", str(train), "--target", "loss", "--out", str(tmp_path)]
    res = runner.invoke(app, [*base, "--min", "code:0.2"])
    assert res.exit_code == 2 and "DOMAIN=WEIGHT" in res.output
    res = runner.invoke(app, [*base, "--min", "code=0.7", "--min", "web=0.5"])
    assert res.exit_code == 2 and "1.200 > 1" in res.output
    res = runner.invoke(app, [*base, "--group", "code+web=0.5"])
    assert res.exit_code == 2 and "--group expects" in res.output
    res = runner.invoke(app, [*base, "--min", "code=0.6", "--group", "mw:math+web>=0.5", "--max", "web=0.9"])
    assert res.exit_code == 2 and "Traceback" not in res.output
    assert "infeasible constraints: min_weight.code=0.6 + group 'mw'>=0.5 need at least 1.1 > 1" in res.output
    assert not list(tmp_path.glob("*.yaml"))


def test_propose_weighted_target_and_pareto(tables, tmp_path):
    train, _, _ = tables
    df = pd.read_csv(train)
    df["loss_web"] = 1.0 - 0.5 * df["weight_web"]
    df.to_csv(train, index=False)
    base = ["propose", "--runs", str(train), "--predictor", "linear", "--out", str(tmp_path), "--bootstrap", "0"]
    res = runner.invoke(app, [*base, "--target", "loss=1,loss_web=3"])
    assert res.exit_code == 0, res.output
    spec = yaml.safe_load((tmp_path / "proposal.yaml").read_text())
    assert spec["target"] == "0.25*loss+0.75*loss_web" and spec["provenance"]["n_runs"] == 39
    res = runner.invoke(app, [*base, "--pareto", "loss,loss_web"])
    assert res.exit_code == 0, res.output
    assert "Pareto front: loss vs loss_web" in res.output and res.output.count("│") > 20


def test_bad_config_fails_before_work(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("sources:\n  - {name: a, domain: web, path: x, format: xml}\n")
    res = runner.invoke(app, ["curate", "--config", str(cfg)])
    assert res.exit_code == 2
    assert "sources.0.format" in res.output and "Traceback" not in res.output


def test_stage_commands_fail_fast_on_missing_inputs(tmp_path):
    empty = tmp_path / "e.yaml"
    empty.write_text(f"work_dir: {tmp_path / 'w'}\nsources: []\n")
    res = runner.invoke(app, ["curate", "--config", str(empty)])
    assert res.exit_code == 2 and "no sources configured" in res.output
    res = runner.invoke(app, ["sweep", "--config", str(empty)])
    assert res.exit_code == 2 and "run `automixer curate`" in res.output
    missing = tmp_path / "m.yaml"
    missing.write_text(
        f"work_dir: {tmp_path / 'w'}\nsources: [{{name: a, domain: web, path: {tmp_path}/nope.jsonl}}]\n"
    )
    res = runner.invoke(app, ["curate", "--config", str(missing)])
    assert res.exit_code == 2 and "nope.jsonl" in res.output and "does not exist" in res.output
