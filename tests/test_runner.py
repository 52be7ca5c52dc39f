"""Sweep runner: one result per run, finished runs skipped, failures recorded, pool == in-process."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from automixer.config import PipelineConfig, ProxyConfig, TokenizerConfig
from automixer.proxy.data import prepare_data
from automixer.sweep.runner import run_sweep
from automixer.tokenizer import train_tokenizer

DOMAINS = ["code", "math", "web"]
TINY = ProxyConfig(
    d_model=16,
    n_layers=1,
    n_heads=2,
    seq_len=32,
    batch_size=8,
    train_tokens=2000,
    lr=1e-2,
    val_fraction=0.1,
    val_max_bytes=3000,
    threads=1,
)
DESIGN = [
    {"run_id": "run-000", "weights": {"code": 0.5, "math": 0.3, "web": 0.2}},
    {"run_id": "run-001", "weights": {"code": 0.1, "poetry": 0.9}},
    {"run_id": "run-002", "weights": {"code": 0.0, "math": 0.0, "web": 1.0}},
]


@pytest.fixture(scope="module")
def data_dir(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Tokenized data of a tiny three-domain corpus."""
    from test_tokenizer import write_tiny_shards

    work = tmp_path_factory.mktemp("runner")
    cfg = PipelineConfig(work_dir=str(work), domains=DOMAINS, tokenizer=TokenizerConfig(vocab_size=280), proxy=TINY)
    write_tiny_shards(shared_data, cfg.path("shards"), n=80)
    tok = train_tokenizer(cfg.tokenizer, cfg.path("shards"), DOMAINS, cfg.path("tokenizer.json"), TINY.val_fraction)
    prepare_data(cfg, tok, cfg.path("data"))
    return cfg.path("data")


def test_sweep_records_failures_and_skips_finished_runs(data_dir: Path, tmp_path: Path) -> None:
    seen: list[dict] = []
    results = run_sweep(DESIGN, TINY, data_dir, tmp_path, seed=1, progress=seen.append)
    assert [r["run_id"] for r in results] == ["run-000", "run-001", "run-002"]
    assert [r["status"] for r in results] == ["ok", "failed", "ok"]
    assert "poetry" in results[1]["error"] and results[1]["attempts"] == 2
    assert sorted(r["run_id"] for r in seen) == ["run-000", "run-001", "run-002"]
    for r in results:
        assert json.loads((tmp_path / r["run_id"] / "result.json").read_text())["status"] == r["status"]
    assert results[2]["tokens_seen"]["code"] == 0 and results[2]["tokens_seen"]["web"] > 0

    mtimes = {r["run_id"]: (tmp_path / r["run_id"] / "result.json").stat().st_mtime_ns for r in results}
    again = run_sweep(DESIGN, TINY, data_dir, tmp_path, seed=1)
    assert again[0] == results[0] and again[2] == results[2]
    assert (tmp_path / "run-000" / "result.json").stat().st_mtime_ns == mtimes["run-000"]
    assert (tmp_path / "run-001" / "result.json").stat().st_mtime_ns != mtimes["run-001"]  # failed: retried
    with pytest.raises(ValueError, match="duplicate"):
        run_sweep(DESIGN + DESIGN[:1], TINY, data_dir, tmp_path, seed=1)


def test_pool_gives_the_same_results_as_in_process(data_dir: Path, tmp_path: Path) -> None:
    design = [DESIGN[0], DESIGN[2], {"run_id": "run-003", "weights": {"code": 0.2, "math": 0.8}}]
    serial = run_sweep(design, TINY, data_dir, tmp_path / "serial", seed=5, workers=1)
    pooled = run_sweep(design, TINY, data_dir, tmp_path / "pool", seed=5, workers=2)
    assert [r["status"] for r in pooled] == ["ok"] * 3
    for a, b in zip(serial, pooled, strict=True):
        assert a["run_id"] == b["run_id"] and a["metrics"] == b["metrics"] and a["tokens_seen"] == b["tokens_seen"]
