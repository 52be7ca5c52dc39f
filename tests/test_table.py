"""The runs table: loading user tables and flattening proxy result files."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from automixer.sweep.table import load_runs_table, runs_table_from_results, write_runs_table


def _frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "run_id": ["a", "b", "c", "d"],
            "weight_code": [0.5, 0.2, 0.1, 0.3],
            "weight_web": [0.5, 0.8, 0.9, 0.7],
            "bpb_code": [1.1, 1.4, 1.6, 1.2],
            "bpb_mean": [1.3, 1.25, np.nan, 1.27],
        }
    )


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_load_csv_and_parquet(tmp_path, suffix: str) -> None:
    path = write_runs_table(_frame(), tmp_path / f"runs{suffix}")
    table = load_runs_table(path, target="bpb_mean")
    assert table.domains == ["code", "web"]
    assert table.run_ids == ["a", "b", "d"]
    assert table.n_skipped_missing == 1
    assert table.n_renormalised == 0
    np.testing.assert_allclose(table.X, [[0.5, 0.5], [0.2, 0.8], [0.3, 0.7]])
    np.testing.assert_allclose(table.y("bpb_mean"), [1.3, 1.25, 1.27])
    np.testing.assert_allclose(table.y("bpb_code"), [1.1, 1.4, 1.2])


def test_custom_prefix_and_missing_run_id(tmp_path) -> None:
    df = pd.DataFrame({"w_code": [1.0, 0.0], "w_math": [0.0, 1.0], "loss": [2.0, 3.0]})
    df.to_csv(tmp_path / "mine.csv", index=False)
    table = load_runs_table(tmp_path / "mine.csv", target="loss", weight_prefix="w_")
    assert table.domains == ["code", "math"]
    assert table.weight_columns == ["w_code", "w_math"]
    assert table.run_ids == ["0", "1"]
    with pytest.raises(ValueError, match="--weight-prefix"):
        load_runs_table(tmp_path / "mine.csv", target="loss")


def test_renormalisation_warns_with_count(tmp_path) -> None:
    df = _frame()
    df.loc[0, ["weight_code", "weight_web"]] = [1.0, 1.0]
    df.loc[1, ["weight_code", "weight_web"]] = [20.0, 80.0]
    df.to_csv(tmp_path / "runs.csv", index=False)
    with pytest.warns(UserWarning, match="renormalised the weights of 2 run"):
        table = load_runs_table(tmp_path / "runs.csv", target="bpb_code")
    assert table.n_renormalised == 2
    np.testing.assert_allclose(table.X.sum(axis=1), 1.0, atol=1e-12)
    np.testing.assert_allclose(table.X[1], [0.2, 0.8])


def test_missing_target_lists_metric_columns(tmp_path) -> None:
    write_runs_table(_frame(), tmp_path / "runs.csv")
    with pytest.raises(ValueError, match=r"'bpb_math' not found.*\['bpb_code', 'bpb_mean'\]"):
        load_runs_table(tmp_path / "runs.csv", target="bpb_math")
    with pytest.raises(FileNotFoundError):
        load_runs_table(tmp_path / "nope.csv", target="bpb_mean")
    (tmp_path / "runs.txt").write_text("run_id\n")
    with pytest.raises(ValueError, match="unsupported"):
        load_runs_table(tmp_path / "runs.txt", "x")


def test_negative_weights_rejected(tmp_path) -> None:
    df = _frame()
    df.loc[2, "weight_code"] = -0.1
    df.loc[2, "bpb_mean"] = 1.0
    df.to_csv(tmp_path / "runs.csv", index=False)
    with pytest.raises(ValueError, match=r"non-negative.*\['c'\]"):
        load_runs_table(tmp_path / "runs.csv", target="bpb_mean")


def _result(run_id: str, status: str, weights: dict, metrics: dict) -> dict:
    return {
        "run_id": run_id,
        "status": status.split(":")[0],
        "reason": None if status == "ok" else status.split(":")[1],
        "error": None if status == "ok" else status.split(":")[1],
        "weights": weights,
        "metrics": metrics,
        "tokens_seen": {d: int(w * 1000) for d, w in weights.items()},
        "epochs": {d: w for d, w in weights.items()},
        "seed": 0,
        "wall_s": 1.5,
    }


def write_results(runs_dir, results: list[dict]) -> None:
    """Write result.json files the way proxy runs do."""
    for r in results:
        (runs_dir / r["run_id"]).mkdir(parents=True)
        (runs_dir / r["run_id"] / "result.json").write_text(json.dumps(r))


def test_runs_table_from_results(tmp_path) -> None:
    runs = tmp_path / "runs"
    write_results(
        runs,
        [
            _result("run-001", "ok", {"code": 0.25, "web": 0.75}, {"bpb_code": 1.5, "bpb_web": 1.2, "bpb_mean": 1.35}),
            _result("run-000", "ok", {"code": 0.5, "web": 0.5}, {"bpb_code": 1.3, "bpb_web": 1.4, "bpb_mean": 1.35}),
            _result("run-002", "failed:diverged", {"code": 0.9, "web": 0.1}, {}),
            _result("run-003", "failed:oom", {"code": 0.8, "web": 0.2}, {}),
            _result("run-004", "failed:crashed", {"code": 0.7, "web": 0.3}, {"bpb_mean": 9.0}),
        ],
    )
    df = runs_table_from_results(runs)
    assert df["run_id"].tolist() == ["run-000", "run-001"]  # failed runs, whatever the reason, are left out
    assert list(df.columns[:3]) == ["run_id", "weight_code", "weight_web"]
    assert {"bpb_code", "bpb_web", "bpb_mean", "tokens_seen_code", "epochs_web", "seed", "wall_s"} <= set(df.columns)
    path = write_runs_table(df, tmp_path / "table.parquet")
    table = load_runs_table(path, target="bpb_web")
    np.testing.assert_allclose(table.y("bpb_web"), [1.4, 1.2])
    assert runs_table_from_results(tmp_path / "runs").shape[0] == 2
    with pytest.raises(FileNotFoundError, match="automixer sweep"):
        runs_table_from_results(tmp_path / "absent")


def test_seed_and_replicate_of_columns_and_run_status(tmp_path) -> None:
    from automixer.catalog import open_catalog

    runs = tmp_path / "work" / "sweep" / "runs"
    w = {"code": 0.5, "web": 0.5}
    anchor = _result("run-000", "ok", w, {"bpb_mean": 1.30})
    replicate = {**_result("run-000-s1", "ok", w, {"bpb_mean": 1.32}), "seed": 1000, "replicate_of": "run-000"}
    failed = {**_result("run-001", "failed:diverged", {"code": 0.9, "web": 0.1}, {}), "attempts": 2}
    write_results(runs, [anchor, replicate, failed])
    df = runs_table_from_results(runs)
    assert df["seed"].tolist() == [0, 1000]
    assert df["replicate_of"].isna().tolist() == [True, False] and df["replicate_of"][1] == "run-000"
    for suffix in (".parquet", ".csv"):  # the column survives both formats, and loading ignores it as a weight
        table = load_runs_table(write_runs_table(df, tmp_path / f"t{suffix}"), "bpb_mean")
        assert table.domains == ["code", "web"] and "replicate_of" in table.metric_columns
    plain = runs_table_from_results(_only(tmp_path / "plain", anchor))
    assert "replicate_of" in plain.columns and plain["replicate_of"].isna().all()  # null for ordinary runs
    con = open_catalog(tmp_path / "work")
    rows = con.execute("SELECT run_id, status, reason, attempts, seed, replicate_of FROM run_status ORDER BY 1")
    assert rows.fetchall() == [
        ("run-000", "ok", None, None, 0, None),
        ("run-000-s1", "ok", None, None, 1000, "run-000"),
        ("run-001", "failed", "diverged", 2, 0, None),
    ]


def _only(runs_dir, result: dict):
    write_results(runs_dir, [result])
    return runs_dir
