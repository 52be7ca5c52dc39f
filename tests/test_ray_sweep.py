"""The proxy sweep on a real local Ray cluster (prefect-ray): the same run results as the local runner for the
same seeds, and a dead Ray worker retried and recorded like a dead local worker."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from automixer.config import PipelineConfig, config_from_dict
from automixer.demo import build_demo_corpus, demo_config
from automixer.sweep.runner import FAULTS_ENV

N_RUNS = 3


@pytest.fixture(scope="module")
def ray_cluster():
    """A two-CPU local Ray cluster on the loopback interface, started by the test and shut down after it."""
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, _node_ip_address="127.0.0.1", log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def prepared_work(tmp_path_factory: pytest.TempPathFactory) -> PipelineConfig:
    """A tiny three-domain corpus, curated and tokenized once (shards, tokenizer, data)."""
    from automixer import stages
    from automixer.curate import run_curation

    work = tmp_path_factory.mktemp("ray-base")
    build_demo_corpus(work / "sources", "tiny")
    raw = demo_config(work, "tiny").model_dump(mode="json")
    raw["domains"] = ["code", "math", "web"]
    raw["propose"]["constraints"]["max_weight"] = {}
    raw["sweep"].update(n_runs=N_RUNS, workers=1)
    cfg = config_from_dict(raw)
    run_curation(cfg)
    stages.tokenize(cfg)
    return cfg


def _copy(base: PipelineConfig, work: Path, **execution) -> PipelineConfig:
    """The base config on a new work_dir holding copies of its shards, tokenizer and data."""
    for part in ("shards", "tokenizer", "data"):
        shutil.copytree(base.path(part), work / part)
    raw = base.model_dump(mode="json")
    raw["work_dir"] = str(work)
    raw["execution"].update(execution)
    return config_from_dict(raw)


def _api(route: str, body: dict) -> list[dict]:
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        return client.request("POST", route, json={"limit": 200, "offset": 0, **body}).json()


def _flow_runs_under(task_run_id) -> list[dict]:
    """The subflow runs whose parent is this (wrapper) task run."""
    return _api("/flow_runs/filter", {"flow_runs": {"parent_task_run_id": {"any_": [str(task_run_id)]}}})


def _task_runs(flow_run_id: str) -> list[dict]:
    return _api("/task_runs/filter", {"task_runs": {"flow_run_id": {"any_": [flow_run_id]}}})


def _results(cfg: PipelineConfig) -> dict[str, dict]:
    return {p.parent.name: json.loads(p.read_text()) for p in sorted(cfg.path("sweep", "runs").glob("*/result.json"))}


def test_ray_options_ask_for_cpus_only_on_a_cpu_cluster(ray_cluster) -> None:
    from automixer.config import ExecutionConfig
    from automixer.sweep.ray_engine import run_options

    opts = run_options(ExecutionConfig(sweep="ray", cpus_per_run=1, gpus_per_run=1))
    assert opts == {"num_cpus": 1, "num_gpus": 0, "max_retries": 0}  # this cluster has no GPU


def test_a_ray_sweep_gives_the_local_runners_results(ray_cluster, prefect_harness, prepared_work, tmp_path) -> None:
    from test_flows import task_runs_of

    from flows.sweep import sweep_flow

    local = _copy(prepared_work, tmp_path / "local")
    on_ray = _copy(prepared_work, tmp_path / "ray", sweep="ray")
    assert sweep_flow(local)["ok"] == N_RUNS
    state = sweep_flow(on_ray, return_state=True)
    assert state.is_completed(), state
    assert state.result()["ok"] == N_RUNS
    a, b = _results(local), _results(on_ray)
    assert list(a) == list(b) == [f"run-{i:03d}" for i in range(N_RUNS)]
    for run_id in a:
        assert b[run_id]["status"] == "ok" and b[run_id]["seed"] == a[run_id]["seed"]
        assert b[run_id]["weights"] == a[run_id]["weights"] and b[run_id]["tokens_seen"] == a[run_id]["tokens_seen"]
        for metric, value in a[run_id]["metrics"].items():
            assert b[run_id]["metrics"][metric] == pytest.approx(value, abs=1e-6)
    parent = task_runs_of(state.state_details.flow_run_id)
    assert "train-proxies" not in parent  # the local task did not run: the Ray subflow did
    (subflow,) = _flow_runs_under(parent["proxy-runs-ray"].id)
    attempts = [r for r in _task_runs(subflow["id"]) if r["name"].startswith("proxy-run-")]
    assert len(attempts) == N_RUNS and all(r["state_type"] == "COMPLETED" for r in attempts)
    assert on_ray.path("sweep", "runs.parquet").is_file()


def test_a_dead_ray_worker_is_retried_then_recorded(
    ray_cluster, prefect_harness, prepared_work, tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from flows.sweep import sweep_flow

    cfg = _copy(prepared_work, tmp_path / "faults", sweep="ray")
    monkeypatch.setenv(FAULTS_ENV, "run-001:crash@1,run-002:crash")
    out = sweep_flow(cfg)
    results = _results(cfg)
    assert out["ok"] == 2 and [r["status"] for r in results.values()] == ["ok", "ok", "failed"]
    assert [r["attempts"] for r in results.values()] == [1, 2, 2]
    assert results["run-002"]["reason"] == "crashed" and "Ray task" in results["run-002"]["error"]
    monkeypatch.delenv(FAULTS_ENV)
    before = {k: v for k, v in results.items() if v["status"] == "ok"}
    sweep_flow(cfg)  # the rerun trains only the failed run
    after = _results(cfg)
    assert after["run-002"]["status"] == "ok" and all(after[k] == v for k, v in before.items())
