"""bench/transfer.py: the scaled-shape chooser, the noise rule, the subset choice, and a tiny end-to-end run."""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from automixer.config import ProxyConfig
from automixer.proxy.model import count_params
from automixer.proxy.train import build_model

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def bench():
    """bench/transfer.py imported by path."""
    spec = importlib.util.spec_from_file_location("bench_transfer", ROOT / "bench" / "transfer.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_scaled_proxy_hits_the_parameter_ratio(bench):
    base = ProxyConfig(d_model=64, n_layers=2, n_heads=4, seq_len=128, batch_size=16, train_tokens=200_000)
    big, arch = bench.scaled_proxy(base, 1024, 4.0)
    assert arch["base_params"] == count_params(build_model(base, 1024, 0))
    assert arch["params"] == count_params(build_model(big, 1024, 0))
    assert abs(arch["ratio"] / 4.0 - 1) <= bench.SHAPE_TOL
    assert big.train_tokens == 800_000 and big.d_model // big.n_heads == 16
    same, arch1 = bench.scaled_proxy(base, 1024, 1.0)
    assert (same.d_model, same.n_layers, arch1["ratio"]) == (64, 2, 1.0)
    with pytest.raises(ValueError):
        bench.scaled_proxy(base, 1024, 0.5)


def test_beats_by_noise_rule(bench):
    sd, dof = bench.pooled_sd([[1.0, 3.0], [2.0, 4.0], [5.0]])
    assert dof == 2 and sd == pytest.approx(math.sqrt(2))
    se = 0.01 * math.sqrt(2 / 3)
    clear = bench.beats_by_noise([3.0] * 3, [3.03] * 3, 0.01, 6)
    assert clear["delta"] == pytest.approx(0.03) and clear["se"] == pytest.approx(se) and clear["beats"] is True
    close = bench.beats_by_noise([3.0] * 3, [3.0 + 1.9 * se] * 3, 0.01, 6)
    assert close["beats"] is False and 0.025 < close["p_one_sided"] < 0.5
    worse = bench.beats_by_noise([3.1] * 3, [3.0] * 3, 0.01, 6)
    assert worse["beats"] is False and worse["delta"] < 0
    assert bench.beats_by_noise([3.0], [3.1], math.nan, 0)["beats"] is None


def test_choose_subset_spreads_over_the_ranking(bench):
    ids = [f"r{i}" for i in range(10)]
    values = [float(v) for v in (9, 8, 7, 6, 5, 4, 3, 2, 1, 0)]
    assert bench.choose_subset(ids, values, 3, exclude={"r9"}) == ["r8", "r4", "r0"]
    assert bench.choose_subset(ids, values, 20, exclude=set()) == ids[::-1]


def _tiny_demo(root: Path) -> Path:
    """A made-up finished demo: random token arrays, a config, a 12-run runs table and the natural mixture."""
    rng = np.random.default_rng(0)
    domains = ["code", "math", "web"]
    data = root / "data"
    data.mkdir(parents=True)
    meta = {"domain_order": domains, "domains": {}, "dtype": "uint16", "eos_id": 0, "vocab_size": 64}
    for i, d in enumerate(domains):
        for split, n in (("train", 4000), ("val", 400)):  # each domain its own token range: learnable, distinct
            np.save(data / f"{d}.{split}.npy", rng.integers(1 + 20 * i, 21 + 20 * i, n).astype(np.uint16))
        meta["domains"][d] = {"train_tokens": 4000 * (i + 1), "val_tokens": 400, "val_bytes": 800}
    (data / "meta.json").write_text(json.dumps(meta))
    proxy = {"d_model": 16, "n_layers": 1, "n_heads": 2, "seq_len": 16, "batch_size": 4, "train_tokens": 1000}
    cfg = {
        "work_dir": str(root),
        "domains": domains,
        "proxy": {**proxy, "threads": 1, "val_max_bytes": 1000},
        "propose": {"predictor": "linear", "cv_folds": 3, "name": "tiny", "constraints": {"min_weight": {"web": 0.1}}},
    }
    (root / "config.yaml").write_text(yaml.safe_dump(cfg))
    X = rng.dirichlet(np.ones(3), 12)
    rows = {"run_id": [f"run-{i:03d}" for i in range(12)], "seed": [0] * 12}
    rows |= {f"weight_{d}": X[:, j] for j, d in enumerate(domains)}
    rows["bpb_mean"] = 5.0 - X @ np.array([1.0, 0.5, 0.2]) + rng.normal(0, 0.01, 12)
    (root / "sweep").mkdir()
    pd.DataFrame(rows).to_parquet(root / "sweep" / "runs.parquet")
    natural = {"code": 1 / 6, "math": 2 / 6, "web": 3 / 6}
    (root / "sweep" / "fingerprint.json").write_text(json.dumps({"fingerprint": "x", "natural": natural}))
    return root


def test_tiny_end_to_end_and_resume(bench, tmp_path, capsys):
    demo, out = _tiny_demo(tmp_path / "demo"), tmp_path / "out"
    argv = ["--demo", str(demo), "--out", str(out), "--scale", "2", "--seeds", "2", "--subset", "3", "--workers", "0"]
    argv += ["--ladder", "1.5"]
    report = bench.main(argv)
    text = capsys.readouterr().out
    assert "| proposal |" in text and "Spearman" in text
    assert json.loads((out / "transfer.json").read_text())["params"]["ratio"] == pytest.approx(
        report["params"]["ratio"]
    )
    assert (out / "tiny.yaml").is_file() and not (demo / "mixtures").exists()  # proposal written under --out only
    assert report["proposal"]["best_seen_run"] not in report["subset"]
    assert abs(report["params"]["ratio"] / 2 - 1) <= bench.SHAPE_TOL
    assert list(report["summary"]) == ["x1", "x1.5", "x2"] and list(report["ladder"]) == ["x1.5"]
    assert "| x1.5 | uniform |" in text  # the per-domain ladder table
    for scale in ("x1", "x1.5", "x2"):
        per = report["per_domain"][scale]
        assert set(per) == set(bench.MIXTURES) and all({"bpb_mean", "bpb_code"} <= set(row) for row in per.values())
        # the per-domain table's target column is the mean of the summary's per-seed targets
        assert per["uniform"]["bpb_mean"] == pytest.approx(report["summary"][scale]["mixtures"]["uniform"]["mean"])
        rows = report["summary"][scale]["mixtures"]
        assert set(rows) == {"proposal", "natural", "uniform", "best-seen"}
        assert all(
            r["n"] == 2 and math.isfinite(r["mean"]) and r["min"] <= r["mean"] <= r["max"] for r in rows.values()
        )
        assert "vs_proposal" in rows["natural"] and "vs_proposal" not in rows["proposal"]
    room = report["headroom"]
    assert room["n_runs"] == 8 + 3 and set(room["fits"]) == {"auto", "loglinear", "gp", "linear"}
    for fit in room["fits"].values():  # the optimum under the same constraints is never predicted worse than uniform
        assert fit["gain_over_uniform"] >= -1e-6 and fit["weights"]["web"] >= 0.1 - 1e-9
    assert "gain over uniform" in text
    assert report["rank_transfer"]["n"] == 3 + 4 and -1 <= report["rank_transfer"]["spearman"] <= 1
    # the subset's 1x values are the sweep's own
    table = pd.read_parquet(demo / "sweep" / "runs.parquet").set_index("run_id")
    for run_id in report["subset"]:
        assert report["rank_transfer"]["values"][run_id][0] == pytest.approx(table.loc[run_id, "bpb_mean"])
    results = sorted(out.glob("runs-*/*/result.json"))
    assert len(results) == 8 + 8 + 8 + 3  # 1x, the 1.5x ladder, 2x and the subset at 2x
    stamps = [p.stat().st_mtime_ns for p in results]
    again = bench.main(argv)  # resumes: nothing is retrained, same numbers
    assert [p.stat().st_mtime_ns for p in results] == stamps
    assert (
        again["summary"]["x2"]["mixtures"]["proposal"]["values"]
        == report["summary"]["x2"]["mixtures"]["proposal"]["values"]
    )
