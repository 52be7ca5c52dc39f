"""Shared fixtures: paths to the shared test data and an isolated Prefect test harness."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = (ROOT / ".." / "shared" / "data").resolve()

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The shared real-data folder (tests and benchmarks only); skips when absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(scope="session")
def prefect_harness():
    """A real, temporary Prefect backend for the whole test session."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):  # a loaded 2-core CI box can need more than 30 s
        yield


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory, prefect_harness):
    """The whole pipeline run once on the tiny demo preset, with 2 sweep rounds and one anchor replicate."""
    from automixer.demo import build_demo_corpus, demo_config
    from flows.pipeline import pipeline_flow

    work = tmp_path_factory.mktemp("demo-tiny")
    build_demo_corpus(work / "sources", "tiny")
    cfg = demo_config(work, "tiny", mixtures_dir=str(work / "mixtures"))
    sweep = cfg.sweep.model_copy(update={"rounds": 2, "anchors": 1, "anchor_seeds": 2})
    cfg = cfg.model_copy(update={"sweep": sweep})
    state = pipeline_flow(cfg, return_state=True)
    return cfg, state
