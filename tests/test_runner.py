"""Sweep runner: real proxy runs with real faults (divergence, OOM, dead workers), retries, resume after a kill."""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from automixer.config import PipelineConfig, ProxyConfig, TokenizerConfig
from automixer.proxy.data import prepare_data
from automixer.sweep.runner import CRASH_EXIT_CODE, FAULTS_ENV, parse_faults, run_sweep, sweep_summary
from automixer.sweep.table import runs_table_from_results
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
    {"run_id": "run-003", "weights": {"code": 0.2, "math": 0.8}},
    {"run_id": "run-004", "weights": {"code": 0.4, "web": 0.6}},
    {"run_id": "run-005", "weights": {"math": 0.5, "web": 0.5}},
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


def _mtimes(runs: Path, ids: list[str]) -> dict[str, int]:
    return {i: (runs / i / "result.json").stat().st_mtime_ns for i in ids}


def test_parse_faults() -> None:
    assert parse_faults(" run-1:nan@1, run-2:crash ,") == {"run-1": ("nan", 1), "run-2": ("crash", None)}
    for bad in ("run-1:explode", "nan", "run-1:oom@x"):
        with pytest.raises(ValueError, match=FAULTS_ENV):
            parse_faults(bad)


def test_in_process_faults_are_retried_recorded_and_left_out_of_the_table(
    data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(FAULTS_ENV, "run-003:nan@1,run-004:oom,run-005:nan")
    seen: list[dict] = []
    results = run_sweep(DESIGN, TINY, data_dir, tmp_path, seed=1, workers=0, progress=seen.append)
    assert [r["run_id"] for r in results] == [d["run_id"] for d in DESIGN]
    assert [r["status"] for r in results] == ["ok", "failed", "ok", "ok", "failed", "failed"]
    assert [r["reason"] for r in results] == [None, "error", None, None, "oom", "diverged"]
    assert [r["attempts"] for r in results] == [1, 2, 1, 2, 2, 2]
    assert "poetry" in results[1]["error"] and "allocate" in results[4]["error"]
    # a retry after divergence reseeds (seed + 1); other retries keep the seed
    assert [r["seed"] for r in results] == [1, 1, 1, 2, 1, 2]
    diverged = results[5]  # tokens are counted for applied updates only, so exactly up to the divergence
    assert 1 <= diverged["steps"] < 8 and "diverged" in diverged["error"] and diverged["metrics"] == {}
    assert sum(diverged["tokens_seen"].values()) == diverged["steps"] * TINY.batch_size * TINY.seq_len
    assert sorted(r["run_id"] for r in seen) == [d["run_id"] for d in DESIGN]
    for r in results:
        assert json.loads((tmp_path / r["run_id"] / "result.json").read_text()) == json.loads(json.dumps(r))
    assert results[2]["tokens_seen"]["code"] == 0 and results[2]["tokens_seen"]["web"] > 0
    assert runs_table_from_results(tmp_path)["run_id"].tolist() == ["run-000", "run-002", "run-003"]
    summary = sweep_summary(results)
    assert summary["failed_by_reason"] == {"diverged": 1, "error": 1, "oom": 1} and summary["ok"] == 3
    assert summary["failed_runs"] == ["run-001", "run-004", "run-005"] and summary["retried"] == 4

    before = _mtimes(tmp_path, [r["run_id"] for r in results])
    monkeypatch.delenv(FAULTS_ENV)
    again = run_sweep(DESIGN, TINY, data_dir, tmp_path, seed=1, workers=0)
    assert [again[i] == results[i] for i in (0, 2, 3)] == [True, True, True]
    after = _mtimes(tmp_path, [r["run_id"] for r in results])
    assert [before[i] == after[i] for i in before] == [True, False, True, True, False, False]
    assert [r["status"] for r in again[4:]] == ["ok", "ok"]  # failed runs are tried again, without faults now
    with pytest.raises(ValueError, match="duplicate"):
        run_sweep(DESIGN + DESIGN[:1], TINY, data_dir, tmp_path, seed=1, workers=0)


def test_workers_survive_crashes_and_match_in_process(
    data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    design = [DESIGN[0], DESIGN[2], DESIGN[3], DESIGN[4]]
    serial = run_sweep(design, TINY, data_dir, tmp_path / "serial", seed=5, workers=0)
    with pytest.raises(ValueError, match="workers >= 1"):
        monkeypatch.setenv(FAULTS_ENV, "run-005:crash")
        run_sweep(design, TINY, data_dir, tmp_path / "serial", seed=5, workers=0)
    monkeypatch.setenv(FAULTS_ENV, "run-004:crash@1,run-005:crash")
    pooled = run_sweep([*design, DESIGN[5]], TINY, data_dir, tmp_path / "pool", seed=5, workers=2)
    assert multiprocessing.active_children() == []
    assert [r["status"] for r in pooled] == ["ok"] * 4 + ["failed"]
    assert [r["attempts"] for r in pooled] == [1, 1, 1, 2, 2]
    crashed = pooled[4]
    assert crashed["reason"] == "crashed" and f"status {CRASH_EXIT_CODE}" in crashed["error"]
    assert json.loads((tmp_path / "pool" / "run-005" / "result.json").read_text())["reason"] == "crashed"
    for a, b in zip(serial, pooled, strict=False):  # the crashed-then-retried run-004 kept its seed
        assert a["run_id"] == b["run_id"] and a["metrics"] == b["metrics"] and a["tokens_seen"] == b["tokens_seen"]
    assert "run-005" not in runs_table_from_results(tmp_path / "pool")["run_id"].tolist()
    assert sweep_summary(pooled)["failed_by_reason"] == {"crashed": 1}


def test_a_replicate_trains_with_its_own_seed_and_is_marked(data_dir: Path, tmp_path: Path) -> None:
    from automixer.sweep.design import add_anchor_replicates
    from automixer.sweep.noise import estimate_noise

    design = add_anchor_replicates([DESIGN[0]], anchors=1, anchor_seeds=2, seed=1)
    assert [d["run_id"] for d in design] == ["run-000", "run-000-s1"] and design[1]["seed"] == 1001
    results = run_sweep(design, TINY, data_dir, tmp_path, seed=1, workers=0)
    assert [r["status"] for r in results] == ["ok", "ok"]
    assert [r["seed"] for r in results] == [1, 1001] and results[0]["weights"] == results[1]["weights"]
    assert results[0]["metrics"]["bpb_mean"] != results[1]["metrics"]["bpb_mean"]  # another seed, another run
    assert "replicate_of" not in results[0] and results[1]["replicate_of"] == "run-000"
    assert json.loads((tmp_path / "run-000-s1" / "result.json").read_text())["replicate_of"] == "run-000"
    table = runs_table_from_results(tmp_path)
    assert table["seed"].tolist() == [1, 1001]
    assert table["replicate_of"].isna().tolist() == [True, False] and table["replicate_of"][1] == "run-000"
    noise = estimate_noise(table, ["bpb_mean"])
    gap = abs(results[0]["metrics"]["bpb_mean"] - results[1]["metrics"]["bpb_mean"])
    assert noise["metrics"]["bpb_mean"]["dof"] == 1 and noise["groups"] == [["run-000", "run-000-s1"]]
    assert noise["metrics"]["bpb_mean"]["sd"] == pytest.approx(gap / 2**0.5)
    # a result written before its item was marked (a kill in between) gets marked on the rerun
    plain = json.loads((tmp_path / "run-000-s1" / "result.json").read_text())
    del plain["replicate_of"]
    (tmp_path / "run-000-s1" / "result.json").write_text(json.dumps(plain))
    again = run_sweep(design, TINY, data_dir, tmp_path, seed=1, workers=0)
    assert again[1]["replicate_of"] == "run-000" and again[1]["metrics"] == results[1]["metrics"]
    assert json.loads((tmp_path / "run-000-s1" / "result.json").read_text())["replicate_of"] == "run-000"


RESUMABLE = """
import sys
from pathlib import Path
from automixer.config import ProxyConfig
from automixer.sweep.runner import run_sweep

def report(result):
    print(result["run_id"], result["status"], flush=True)
    if result["run_id"] == "run-002":
        sys.stdin.readline()  # hold here until the test kills this process

cfg = ProxyConfig.model_validate_json(sys.argv[1])
run_sweep(eval(sys.argv[2]), cfg, Path(sys.argv[3]), Path(sys.argv[4]), seed=3, workers=0, progress=report)
"""


def test_a_killed_sweep_resumes_and_skips_finished_runs(data_dir: Path, tmp_path: Path) -> None:
    design = [DESIGN[0], DESIGN[2], DESIGN[3]]
    args = [sys.executable, "-c", RESUMABLE, TINY.model_dump_json(), repr(design), str(data_dir), str(tmp_path)]
    proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, start_new_session=True)
    try:
        lines = [proc.stdout.readline().split() for _ in range(2)]
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert lines == [["run-000", "ok"], ["run-002", "ok"]] and proc.returncode == -signal.SIGKILL
    assert not (tmp_path / "run-003" / "result.json").exists()
    before = _mtimes(tmp_path, ["run-000", "run-002"])
    seen: list[str] = []
    results = run_sweep(
        design, TINY, data_dir, tmp_path, seed=3, workers=0, progress=lambda r: seen.append(r["run_id"])
    )
    assert [r["status"] for r in results] == ["ok"] * 3 and seen == ["run-000", "run-002", "run-003"]
    assert _mtimes(tmp_path, ["run-000", "run-002"]) == before
    assert results[2]["attempts"] == 1 and (tmp_path / "run-003" / "result.json").is_file()


def test_any_engine_gets_the_runners_retry_rules(data_dir: Path, tmp_path: Path) -> None:
    from automixer.sweep.runner import Failure, attempt

    calls: list[tuple[str, int, int]] = []

    def engine(jobs, args):  # loses the first attempt of run-000, as a cluster losing a worker would
        for job in jobs:
            calls.append((job.item["run_id"], job.attempt, job.seed))
            lost = job.item["run_id"] == "run-000" and job.attempt == 1
            yield job, Failure("crashed", "worker lost") if lost else attempt(job, *args)

    results = run_sweep([DESIGN[0], DESIGN[2]], TINY, data_dir, tmp_path, seed=4, engine=engine)
    assert calls == [("run-000", 1, 4), ("run-002", 1, 4), ("run-000", 2, 4)]  # retried with the same seed
    assert [(r["status"], r["attempts"]) for r in results] == [("ok", 2), ("ok", 1)]
    calls.clear()
    assert run_sweep([DESIGN[0], DESIGN[2]], TINY, data_dir, tmp_path, seed=4, engine=engine) == results
    assert calls == []  # finished runs are skipped whatever the engine
