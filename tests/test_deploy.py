"""Deployments from prefect.yaml: schedules registered as declared, and a served deployment run to Completed."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from automixer.config import config_from_dict, dump_config
from automixer.deploy import build_deployments, declarations, load_entrypoint, make_runner

ROOT = Path(__file__).resolve().parents[1]
DECLARED = {
    "curate-nightly": ("curate", ["0 2 * * *"]),
    "synthesize-weekly": ("synthesize", ["0 4 * * 0"]),
    "sweep-on-demand": ("sweep", []),
    "propose-on-demand": ("propose", []),
    "pipeline-on-demand": ("automixer-pipeline", []),
}


@pytest.fixture()
def propose_config(tmp_path: Path) -> Path:
    """A config whose work_dir holds a made-up runs table of 10 runs over three domains, and its YAML path."""
    rng = np.random.default_rng(0)
    w = rng.dirichlet([1, 1, 1], size=10)
    bpb = 3.0 - 0.8 * w[:, 0] - 0.3 * w[:, 1] + 0.02 * rng.standard_normal(10)
    table = pd.DataFrame({"run_id": [f"run-{i:03d}" for i in range(10)], "bpb_mean": bpb})
    for j, d in enumerate(["code", "math", "web"]):
        table[f"weight_{d}"] = w[:, j]
    (tmp_path / "sweep").mkdir()
    table.to_parquet(tmp_path / "sweep" / "runs.parquet")
    cfg = config_from_dict(
        {
            "work_dir": str(tmp_path),
            "domains": ["code", "math", "web"],
            "propose": {"name": "served", "predictor": "linear", "bootstrap": 0, "mixtures_dir": str(tmp_path / "mx")},
        }
    )
    path = tmp_path / "automixer.yaml"
    dump_config(cfg, path)
    return path


def test_prefect_yaml_declares_the_deployments() -> None:
    raw = yaml.safe_load((ROOT / "prefect.yaml").read_text())
    decls = declarations(ROOT / "prefect.yaml")
    assert [d["name"] for d in decls] == list(DECLARED)
    for decl in decls:
        flow = load_entrypoint(decl["entrypoint"])
        assert flow.name == DECLARED[decl["name"]][0]
        assert [s["cron"] for s in decl["schedules"]] == DECLARED[decl["name"]][1]
        assert set(decl["parameters"]) == {"config"} and decl["work_pool"]["name"] == "automixer-pool"
    assert raw["pull"][0]["prefect.deployments.steps.set_working_directory"]["directory"] == "{{ $AUTOMIXER_HOME }}"
    with pytest.raises(ValueError, match="no deployment named"):
        build_deployments(only=["nightly-typo"])


def test_schedules_are_registered_as_declared(prefect_harness, propose_config: Path) -> None:
    from prefect.client.orchestration import get_client

    deployments = build_deployments(propose_config)
    with get_client(sync_client=True) as client:
        for dep in deployments:
            dep.apply()
            flow_name, crons = DECLARED[dep.name]
            got = client.read_deployment_by_name(f"{flow_name}/{dep.name}")
            assert [s.schedule.cron for s in got.schedules] == crons
            assert all(s.active and s.schedule.timezone == "UTC" for s in got.schedules)
            assert got.parameters == {"config": str(propose_config.resolve())}
            assert got.entrypoint == f"flows.{dep.name.split('-')[0]}.{dep.name.split('-')[0]}_flow"


def test_a_served_deployment_runs_to_completed(prefect_harness, propose_config: Path) -> None:
    from prefect.client.orchestration import get_client
    from prefect.deployments import run_deployment
    from test_flows import artifacts_of

    runner = make_runner(build_deployments(propose_config, only=["propose-on-demand"]))
    scheduled = run_deployment("propose/propose-on-demand", timeout=0)  # scheduled now, not yet run
    assert scheduled.state.is_scheduled()
    asyncio.run(runner.start(run_once=True))  # picks the run up and returns when it has finished
    with get_client(sync_client=True) as client:
        run = client.read_flow_run(scheduled.id)
    assert run.state.is_completed(), run.state
    spec = yaml.safe_load((propose_config.parent / "mx" / "served.yaml").read_text())
    assert abs(sum(spec["weights"].values()) - 1) < 1e-6 and spec["weights"]["code"] > spec["weights"]["web"]
    (artifact,) = artifacts_of(run.id)
    assert artifact.key == "automixer-propose" and "CV Spearman" in artifact.data


def test_serve_help_explains_local_serving_and_work_pools() -> None:
    from typer.testing import CliRunner

    from automixer.cli import app

    out = CliRunner().invoke(app, ["serve", "--help"], terminal_width=200)
    assert out.exit_code == 0
    text = " ".join(out.output.split())
    for phrase in ("automixer serve -c my.yaml", "prefect deploy --all", "prefect worker start", "work-pool create"):
        assert phrase in text


def test_deploying_to_a_work_pool_registers_every_deployment(prefect_harness, propose_config: Path) -> None:
    """The `prefect deploy` path: every declared deployment lands in a work pool with its schedules."""
    import prefect
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate

    pool = "automixer-test-pool"

    async def create_pool() -> None:
        async with get_client() as client:
            await client.create_work_pool(WorkPoolCreate(name=pool, type="process"), overwrite=True)

    asyncio.run(create_pool())
    ids = prefect.deploy(
        *build_deployments(propose_config), work_pool_name=pool, build=False, push=False, print_next_steps_message=False
    )
    assert len(ids) == len(DECLARED)

    async def read() -> list:
        async with get_client() as client:
            return [await client.read_deployment(i) for i in ids]

    crons = {d.name: sorted(s.schedule.cron for s in d.schedules) for d in asyncio.run(read())}
    assert crons == {name: sorted(c) for name, (_, c) in DECLARED.items()}
