"""Tasks generated from the stdlib and from real TheAlgorithms files are verified bug fixes, end to end."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from automixer.config import PipelineConfig, SynthConfig
from automixer.shards import SHARD_SCHEMA
from synth import generate_tasks, reward
from synth.discover import discover, load_source, stdlib_root
from synth.render import render_task, write_synthetic_shards
from synth.task import apply_patch, read_tasks
from synth.verify import Limits, run_tests

N_ALGO_FILES = 8


@pytest.fixture(scope="module")
def algo_dir(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder of real, small, stdlib-only TheAlgorithms files with doctests (a spread over the corpus)."""
    records = []
    with gzip.open(shared_data / "code" / "code_corpus_python.jsonl.gz", "rt") as f:
        for line in f:
            r = json.loads(line)
            if r["repo"] == "TheAlgorithms/Python" and ">>>" in r["text"] and len(r["text"]) < 2500:
                records.append(r)
    folder = tmp_path_factory.mktemp("algorithms")
    usable = []
    for r in sorted(records, key=lambda r: r["path"]):
        path = folder / r["path"].replace("/", "__")
        path.write_text(r["text"])
        if load_source(path.name, path) is None:
            path.unlink()
        else:
            usable.append(path)
    chosen = set(usable[:: max(1, len(usable) // N_ALGO_FILES)][:N_ALGO_FILES])
    for path in usable:
        if path not in chosen:
            path.unlink()
    return folder


def _generate(sources: list[str], out: Path, max_tasks: int, seed: int, workers: int = 2) -> tuple[Path, dict]:
    report = generate_tasks(SynthConfig(sources=sources, max_tasks=max_tasks, workers=workers, seed=seed), out)
    return out / "tasks.parquet", report


@pytest.fixture(scope="module")
def algo_run(algo_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    return _generate([str(algo_dir)], tmp_path_factory.mktemp("algo_tasks"), 5, 0)


@pytest.fixture(scope="module")
def stdlib_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    return _generate(["stdlib"], tmp_path_factory.mktemp("stdlib_tasks"), 3, 1)


def _original_text(source_path: str, algo_dir: Path) -> str:
    label, rel = source_path.split("/", 1)
    root = stdlib_root() if label == "stdlib" else algo_dir
    return (root / rel).read_text(encoding="utf-8")


def test_stdlib_discovery_skips_tests_gui_and_network() -> None:
    files, scanned = discover(["stdlib"])
    rels = {sf.rel: sf for sf in files}
    assert scanned > len(files) > 5
    assert "median" in rels["stdlib/statistics.py"].functions
    assert not [r for r in rels if any(p in r.split("/") for p in ("test", "idlelib", "tkinter", "turtle.py"))]
    assert sum(len(sf.functions) for sf in files) > 100


@pytest.mark.parametrize("run_name", ["stdlib_run", "algo_run"])
def test_every_kept_task_is_a_verified_bug_fix(run_name: str, request: pytest.FixtureRequest, algo_dir: Path) -> None:
    tasks_path, report = request.getfixturevalue(run_name)
    tasks = read_tasks(tasks_path)
    assert len(tasks) == report["kept"] >= 2
    for task in tasks:
        module_file = f"{task.module}.py"
        assert task.fail_to_pass and not set(task.fail_to_pass) & set(task.pass_to_pass)
        broken = run_tests(task.files, task.test_command, Limits())
        assert sorted(t for t, s in broken.results.items() if s != "pass") == task.fail_to_pass
        fixed = apply_patch(task.files, task.gold_patch)
        assert fixed[module_file] == _original_text(task.source_path, algo_dir)
        assert fixed[module_file] != task.files[module_file]
        assert reward(task, fixed) == 1
        assert reward(task, {}) == 0
        assert reward(task, {module_file: task.files[module_file] + "\nraise SystemExit(0)\n"}) == 0


def test_report_accounts_for_every_candidate(algo_run: tuple[Path, dict]) -> None:
    tasks_path, report = algo_run
    assert report["kept"] == pq.read_table(tasks_path).num_rows == 5
    assert report["candidates_tried"] == report["kept"] + sum(report["rejected"].values())
    assert sum(v["kept"] for v in report["per_operator"].values()) == report["kept"]
    assert sum(v["tried"] for v in report["per_operator"].values()) == report["candidates_tried"]
    assert report["stopped"] == "max_tasks"


def test_tasks_record_the_sandbox_isolation_level(algo_run: tuple[Path, dict]) -> None:
    from synth.sandbox import isolation_level, netns_prefix
    from synth.task import read_tasks

    tasks_path, _ = algo_run
    levels = {t.isolation for t in read_tasks(tasks_path)}
    assert levels == {isolation_level()}
    assert ("+netns" in levels.pop()) == bool(netns_prefix())


def test_same_seed_gives_identical_tasks_whatever_the_workers_and_rerun_skips(
    algo_dir: Path, algo_run: tuple[Path, dict], tmp_path: Path
) -> None:
    tasks_path, _ = algo_run
    again, report = _generate([str(algo_dir)], tmp_path / "again", 5, 0, workers=3)
    assert not report["skipped"]
    assert pq.read_table(again).equals(pq.read_table(tasks_path))
    mtime = again.stat().st_mtime_ns
    _, cached = _generate([str(algo_dir)], tmp_path / "again", 5, 0)
    assert cached["skipped"] and again.stat().st_mtime_ns == mtime


def test_render_and_write_synthetic_shards(algo_run: tuple[Path, dict], tmp_path: Path) -> None:
    tasks_path, _ = algo_run
    tasks = read_tasks(tasks_path)
    text = render_task(tasks[0])
    assert tasks[0].fail_to_pass[0] in text and tasks[0].gold_patch in text
    assert f"def {tasks[0].function.split('.')[-1]}" in text
    shards = tmp_path / "shards"
    (shards / "synthetic").mkdir(parents=True)
    (shards / "synthetic" / "stale-00000.parquet").write_text("old")
    (shards / "code").mkdir()
    (shards / "code" / "keep.parquet").write_text("other domain")
    paths = write_synthetic_shards(tasks_path, shards, shard_docs=2)
    assert len(paths) == 3 and sorted((shards / "synthetic").glob("*.parquet")) == sorted(paths)
    assert (shards / "code" / "keep.parquet").read_text() == "other domain"
    table = pq.read_table(paths[0]).cast(SHARD_SCHEMA)
    assert pq.read_schema(paths[0]).remove_metadata().equals(SHARD_SCHEMA)
    assert set(table.column("domain").to_pylist()) == {"synthetic"}
    assert set(table.column("source").to_pylist()) == {"synth-bugfix"}
    assert sum(pq.read_table(p).num_rows for p in paths) == len(tasks)


def test_apply_patch_refuses_a_patch_that_does_not_fit(algo_run: tuple[Path, dict]) -> None:
    task = read_tasks(algo_run[0])[0]
    with pytest.raises(ValueError, match="does not apply"):
        apply_patch(task.files, task.gold_patch.replace("\n-", "\n-XX", 1))
    with pytest.raises(ValueError, match="not a unified diff"):
        apply_patch(task.files, "just text")


def test_missing_source_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="synth.sources"):
        generate_tasks(SynthConfig(sources=[str(tmp_path / "nowhere" / "*.py")]), tmp_path / "out")


def test_synthesize_flow_completes(prefect_harness, algo_dir: Path, tmp_path: Path) -> None:
    from flows.synthesize import synthesize_flow

    cfg = PipelineConfig(work_dir=str(tmp_path / "work"), synth={"sources": [str(algo_dir)], "max_tasks": 2})
    state = synthesize_flow(cfg, return_state=True)
    assert state.is_completed(), state
    out = state.result()
    assert out["report"]["kept"] == 2
    assert [Path(p).parent for p in out["shards"]] == [cfg.path("shards", "synthetic")]
    assert pq.read_table(out["shards"][0]).num_rows == 2
