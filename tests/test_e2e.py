"""End to end: the demo's parent flow on the tiny preset, through a real Prefect backend."""

from __future__ import annotations

import json
import math
from pathlib import Path

import yaml


def test_pipeline_completes_and_writes_a_valid_mixture(tiny_run):
    cfg, state = tiny_run
    assert state.is_completed(), state
    out = state.result()
    spec = yaml.safe_load(Path(out["proposal"]["path"]).read_text())
    weights = spec["weights"]
    assert set(weights) == set(cfg.domains)
    assert abs(sum(weights.values()) - 1.0) < 1e-6
    c = cfg.propose.constraints
    for dom, lo in c.min_weight.items():
        assert weights[dom] >= lo - 1e-9
    for dom, hi in c.max_weight.items():
        assert weights[dom] <= hi + 1e-9
    prov = spec["provenance"]
    assert math.isfinite(prov["cv_spearman"]) and -1 <= prov["cv_spearman"] <= 1
    assert math.isfinite(spec["predicted_target"])
    assert set(out["timings"]) == {"curate", "synthesize", "sweep", "propose"}


def test_every_stage_left_its_files(tiny_run):
    cfg, _ = tiny_run
    manifest = json.loads(cfg.path("shards", "manifest.json").read_text())
    assert set(manifest["domains"]) == set(cfg.domains)
    results = sorted(cfg.path("sweep", "runs").glob("*/result.json"))
    assert len(results) == cfg.sweep.n_runs + cfg.sweep.anchors * (cfg.sweep.anchor_seeds - 1)
    ok = [json.loads(p.read_text()) for p in results]
    assert all(r["status"] == "ok" for r in ok)
    assert all(set(r["metrics"]) >= {f"bpb_{d}" for d in cfg.domains} for r in ok)


def test_rerun_skips_finished_work(tiny_run):
    from flows.sweep import sweep_flow

    cfg, _ = tiny_run
    results = sorted(cfg.path("sweep", "runs").glob("*/result.json"))
    before = {p: p.stat().st_mtime_ns for p in results}
    sweep_flow(cfg)
    assert {p: p.stat().st_mtime_ns for p in results} == before


def test_iterative_sweep_plans_a_round_by_expected_improvement(tiny_run, tmp_path):
    import shutil

    from automixer.config import config_from_dict
    from automixer.sweep.design import read_design
    from flows.sweep import sweep_flow

    cfg, _ = tiny_run
    work = tmp_path / "rounds"
    for part in ("shards", "tokenizer", "data"):
        shutil.copytree(cfg.path(part), work / part)
    raw = cfg.model_dump(mode="json")
    raw["work_dir"] = str(work)
    raw["sweep"].update(rounds=2, anchors=1, anchor_seeds=2)
    cfg2 = config_from_dict(raw)
    out = sweep_flow(cfg2)
    design = read_design(cfg2.path("sweep", "design.json"))
    second = [it for it in design if it.get("round", 1) == 2]
    assert [it["run_id"] for it in second] == ["run-004", "run-005", "run-006", "run-007"]
    assert len(design) == 9 and out["runs"] == 9 and out["ok"] == 9  # 8 mixtures + 1 anchor replicate
    c = cfg2.propose.constraints
    for it in second:  # chosen inside the proposal's feasible set
        assert it["weights"]["synthetic"] <= c.max_weight["synthetic"] + 1e-9
        assert all(it["weights"][d] >= lo - 1e-9 for d, lo in c.min_weight.items())
    first = [it["weights"] for it in design if it.get("round", 1) == 1]
    assert all(sum(abs(w[d] - v) for d, v in it["weights"].items()) > 1e-6 for it in second for w in first)
    results = sorted(cfg2.path("sweep", "runs").glob("*/result.json"))
    before = {p: p.stat().st_mtime_ns for p in results}
    sweep_flow(cfg2)  # rerun: nothing planned or trained again
    assert read_design(cfg2.path("sweep", "design.json")) == design
    assert {p: p.stat().st_mtime_ns for p in results} == before
