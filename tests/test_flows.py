"""The flows through a real Prefect backend: artifacts, retried task failures, caching that agrees with the
completion markers, and a sweep killed midway that resumes without retraining its finished proxies."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from uuid import UUID

import pytest

from automixer.config import PipelineConfig, config_from_dict, dump_config
from automixer.demo import build_demo_corpus, demo_config
from flows.common import RETRY_DELAY_ENV, TASK_FAULTS_ENV

N_RUNS = 6
KILLED_SWEEP = """
import sys
from flows.sweep import sweep_flow
sweep_flow(sys.argv[1])
"""


def artifacts_of(flow_run_id: UUID) -> list:
    """The artifacts a flow run created."""
    from prefect_api import read_artifacts

    return read_artifacts({"flow_run_id": {"any_": [str(flow_run_id)]}})


def task_runs_of(flow_run_id: UUID) -> dict[str, object]:
    """The task runs of one flow run, by task name (the last one of each name)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.objects import TaskRun

    body = {"task_runs": {"flow_run_id": {"any_": [str(flow_run_id)]}}, "limit": 200, "offset": 0}
    with get_client(sync_client=True) as client:
        runs = TaskRun.model_validate_list(
            client.request("POST", "/task_runs/filter", json={**body, "sort": "EXPECTED_START_TIME_ASC"}).json()
        )
    return {r.name.rsplit("-", 1)[0]: r for r in runs}


def _mtimes(paths: list[Path]) -> dict[Path, int]:
    return {p: p.stat().st_mtime_ns for p in paths}


@pytest.fixture(scope="module")
def curated(tmp_path_factory: pytest.TempPathFactory, prefect_harness) -> tuple[PipelineConfig, Path, object]:
    """A tiny three-domain config written as YAML, curated once by the curate flow given its path."""
    from flows.curate import curate_flow

    work = tmp_path_factory.mktemp("flows")
    build_demo_corpus(work / "sources", "tiny")
    raw = demo_config(work, "tiny", mixtures_dir=str(work / "mixtures")).model_dump(mode="json")
    raw["domains"] = ["code", "math", "web"]
    raw["propose"].update(predictor="linear", bootstrap=5)
    raw["propose"]["constraints"]["max_weight"] = {}
    raw["sweep"]["n_runs"] = N_RUNS
    cfg = config_from_dict(raw)
    path = work / "automixer.yaml"
    dump_config(cfg, path)
    state = curate_flow(str(path), return_state=True)
    return cfg, path, state


def test_curation_records_its_figures_as_an_artifact(curated) -> None:
    cfg, _, state = curated
    assert state.is_completed(), state
    (artifact,) = artifacts_of(state.state_details.flow_run_id)
    assert artifact.key == "automixer-curate" and artifact.type == "markdown"
    kept = state.result()["domains"]
    for dom, counts in kept.items():
        dropped = counts["docs_in"] - counts["docs_kept"]
        assert f"| {dom} | {counts['docs_in']} | {counts['docs_kept']} | {dropped} |" in artifact.data
    assert "| minhash_dedup | near_duplicate |" in artifact.data


def test_a_curation_rerun_is_cached_and_keeps_the_shards(curated) -> None:
    from flows.curate import curate_flow

    cfg, path, _ = curated
    shards = sorted(cfg.path("shards").glob("*/*.parquet"))
    before = _mtimes(shards)
    first = curate_flow(str(path), return_state=True)  # runs the task: curation finds its run finished
    again = curate_flow(str(path), return_state=True)  # the cache key now has a record: the task is skipped
    assert first.is_completed() and again.is_completed()
    assert task_runs_of(first.state_details.flow_run_id)["run-curation"].state.name == "Completed"
    assert task_runs_of(again.state_details.flow_run_id)["run-curation"].state.name == "Cached"
    assert again.result()["domains"] == first.result()["domains"]
    assert sorted(cfg.path("shards").glob("*/*.parquet")) == shards and _mtimes(shards) == before


@pytest.fixture(scope="module")
def killed_then_resumed(curated, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Kill a sweep flow process once two proxies have finished, then rerun it with a tokenize failure injected."""
    from prefect.settings import PREFECT_API_URL

    from flows.sweep import sweep_flow

    cfg, path, _ = curated
    env = {**os.environ, "PREFECT_API_URL": PREFECT_API_URL.value(), RETRY_DELAY_ENV: "0"}
    log = (tmp_path_factory.mktemp("killed") / "sweep.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-c", KILLED_SWEEP, str(path)], env=env, stdout=log, stderr=log, start_new_session=True
    )
    runs = cfg.path("sweep", "runs")

    def finished() -> list[Path]:
        return [p for p in runs.glob("*/result.json") if json.loads(p.read_text())["status"] == "ok"]

    deadline = time.monotonic() + 240
    try:
        while len(finished()) < 2:
            assert time.monotonic() < deadline, "the sweep did not finish two proxies in time"
            with pytest.raises(subprocess.TimeoutExpired):  # the poll interval: fails if the process ended
                proc.wait(timeout=0.25)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        log.close()
    before = _mtimes(finished())
    mp = pytest.MonkeyPatch()
    mp.setenv(TASK_FAULTS_ENV, "tokenize@1")
    mp.setenv(RETRY_DELAY_ENV, "0")
    try:
        state = sweep_flow(str(path), return_state=True)
    finally:
        mp.undo()
    return {"cfg": cfg, "before": before, "state": state, "returncode": proc.returncode}


def test_a_killed_sweep_resumes_without_retraining_finished_proxies(killed_then_resumed) -> None:
    cfg, before, state = (killed_then_resumed[k] for k in ("cfg", "before", "state"))
    assert killed_then_resumed["returncode"] == -signal.SIGKILL
    assert 2 <= len(before) < N_RUNS
    assert state.is_completed(), state
    assert state.result()["ok"] == N_RUNS
    assert _mtimes(list(before)) == before  # finished proxies were not trained again
    results = sorted(cfg.path("sweep", "runs").glob("*/result.json"))
    assert len(results) == N_RUNS and all(json.loads(p.read_text())["attempts"] == 1 for p in results)


def test_a_failed_task_is_retried_by_prefect(killed_then_resumed) -> None:
    state = killed_then_resumed["state"]
    tokenize = task_runs_of(state.state_details.flow_run_id)["tokenize"]
    assert tokenize.state.is_completed() and tokenize.run_count == 2  # failed once (injected), then retried


def test_sweep_and_propose_flows_record_their_figures(killed_then_resumed) -> None:
    from flows.propose import propose_flow

    state = killed_then_resumed["state"]
    (sweep_art,) = artifacts_of(state.state_details.flow_run_id)
    assert sweep_art.key == "automixer-sweep" and f"| finished ok | {N_RUNS} |" in sweep_art.data
    proposed = propose_flow(str(killed_then_resumed["cfg"].path("automixer.yaml")), return_state=True)
    assert proposed.is_completed(), proposed
    (art,) = artifacts_of(proposed.state_details.flow_run_id)
    spec = proposed.result()["spec"]
    assert art.key == "automixer-propose" and "CV Spearman" in art.data and "90% CI" in art.data
    for dom, w in spec["weights"].items():
        assert f"| {dom} | {w:.4f} |" in art.data


def test_synthesis_and_pipeline_tables_hold_their_figures() -> None:
    from automixer.artifacts import pipeline_markdown, synthesis_markdown

    report = {
        "kept": 5,
        "candidates_tried": 9,
        "families": {"off_by_one": {"kept": 3, "tried": 4}, "swap": {"kept": 2, "tried": 5}},
    }
    text = synthesis_markdown(report)
    assert "| off_by_one | 3 | 4 |" in text and "| swap | 2 | 5 |" in text and "| **all** | 5 | 9 |" in text
    assert "disabled" in synthesis_markdown(None)
    spec = {"name": "p", "weights": {"code": 0.25, "web": 0.75}, "target": "bpb_mean", "predicted_target": 2.5,
            "provenance": {"cv_spearman": 0.9}}  # fmt: skip
    text = pipeline_markdown({"curate": 1.25, "sweep": 30.0}, spec)
    assert "| curate | 1.2 |" in text and "code 0.250, web 0.750" in text and "CV Spearman 0.900" in text


def test_a_slurm_submission_is_reported_as_submitted_not_curated() -> None:
    from automixer.artifacts import curation_markdown

    text = curation_markdown({"submitted": {"jobs": {"read": "101", "final": "104"}}, "domains": {}, "drops": {}})
    assert "submitted to Slurm" in text and "104" in text and "curated" not in text.replace("Curation", "")
