"""Tasks generated from real TheAlgorithms files, across every family, are verified, gated and reproducible."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from automixer.config import FAMILY_NAMES, PipelineConfig, SynthConfig
from automixer.shards import SHARD_SCHEMA
from synth import generate_tasks, reward
from synth.discover import discover, source_from_text
from synth.render import render_task, write_synthetic_shards
from synth.task import apply_patch, read_tasks
from synth.verify import Limits, run_tests

N_ALGO_FILES = 14
MAX_TASKS = 10
WEIGHTS = {"bugfix": 4, "implement": 2, "cross_module": 1, "rename": 1, "version_pin": 1, "nondeterministic": 1}


def _algo_records(shared_data: Path) -> list[dict]:
    with gzip.open(shared_data / "code" / "code_corpus_python.jsonl.gz", "rt") as f:
        records = [json.loads(line) for line in f]
    return [r for r in records if r["repo"] == "TheAlgorithms/Python" and ">>>" in r["text"] and len(r["text"]) < 3000]


@pytest.fixture(scope="module")
def algo_dir(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder of real, small, stdlib-only TheAlgorithms files with doctests (a spread over the corpus)."""
    usable = [
        r for r in sorted(_algo_records(shared_data), key=lambda r: r["path"])
        if source_from_text(r["path"], r["text"], Path(r["path"])) is not None
    ]  # fmt: skip
    folder = tmp_path_factory.mktemp("algorithms")
    for r in usable[:: max(1, len(usable) // N_ALGO_FILES)][:N_ALGO_FILES]:
        (folder / r["path"].replace("/", "__")).write_text(r["text"])
    return folder


def _config(sources: list[str], **kw) -> SynthConfig:
    return SynthConfig(sources=sources, **{"max_tasks": MAX_TASKS, "workers": 2, "seed": 0, "families": WEIGHTS, **kw})


@pytest.fixture(scope="module")
def algo_run(algo_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("algo_tasks")
    return out / "tasks.parquet", generate_tasks(_config([str(algo_dir)]), out)


def test_every_family_yields_verified_gated_tasks(algo_run: tuple[Path, dict]) -> None:
    tasks_path, report = algo_run
    tasks = read_tasks(tasks_path)
    assert len(tasks) == report["kept"] == MAX_TASKS
    assert {t.family for t in tasks} == set(FAMILY_NAMES)
    for task in tasks:
        assert task.fail_to_pass and not set(task.fail_to_pass) & set(task.pass_to_pass)
        assert task.mutation_score >= 0.8 and task.mutants_killed <= task.mutants_total
        assert task.difficulty in {"easy", "medium", "hard"}
        assert {"python", "automixer", "synth_version", "hash_seeds"} <= set(task.provenance)
        assert task.problem_statement and task.gold_patch not in task.problem_statement


def test_every_task_fails_as_recorded_and_its_gold_patch_earns_the_reward(algo_run: tuple[Path, dict]) -> None:
    for task in read_tasks(algo_run[0]):
        broken = run_tests(task.files, task.test_command, Limits())
        kept = set(task.fail_to_pass) | set(task.pass_to_pass)
        assert sorted(t for t in kept if broken.results.get(t) != "pass") == task.fail_to_pass, task.task_id
        fixed = apply_patch(task.files, task.gold_patch)
        assert fixed != task.files
        assert reward(task, fixed) == 1, task.task_id
        assert reward(task, {}) == 0
        fake = {name: text + "\nraise SystemExit(0)\n" for name, text in fixed.items() if name.endswith(".py")}
        assert reward(task, fake) == 0


def test_report_accounts_for_every_candidate(algo_run: tuple[Path, dict]) -> None:
    _, report = algo_run
    assert report["candidates_tried"] == sum(f["tried"] for f in report["families"].values())
    for name, fam in report["families"].items():
        assert fam["tried"] == fam["kept"] + sum(fam["rejected"].values()), name
        assert sum(v["kept"] for v in fam["per_operator"].values()) == fam["kept"] == report["kept_per_family"][name]
    assert sum(report["mutation_score"].values()) == report["kept"]
    assert report["mutation_score"]["<0.8"] == 0
    assert report["stopped"] == "max_tasks"


def test_tasks_record_the_sandbox_isolation_level(algo_run: tuple[Path, dict]) -> None:
    from synth.sandbox import isolation_level

    levels = {t.isolation for t in read_tasks(algo_run[0])}
    assert levels == {isolation_level()}
    assert set(algo_run[1]["isolation"]) == levels


def test_same_seed_regenerates_byte_identical_tasks_and_rerun_skips(
    algo_dir: Path, algo_run: tuple[Path, dict], tmp_path: Path
) -> None:
    tasks_path, _ = algo_run
    report = generate_tasks(_config([str(algo_dir)], workers=1), tmp_path / "again")
    again = tmp_path / "again" / "tasks.parquet"
    assert not report["skipped"]
    assert again.read_bytes() == tasks_path.read_bytes()
    mtime = again.stat().st_mtime_ns
    cached = generate_tasks(_config([str(algo_dir)]), tmp_path / "again")
    assert cached["skipped"] and again.stat().st_mtime_ns == mtime


def test_jsonl_corpus_sources_carry_repo_and_commit(shared_data: Path) -> None:
    files, scanned = discover([str(shared_data / "code" / "code_corpus_python.jsonl.gz")])
    assert scanned > len(files) > 500
    algo = [sf for sf in files if sf.repo == "TheAlgorithms/Python"]
    assert algo and all(len(sf.commit) == 40 and sf.rel.startswith("TheAlgorithms/Python/") for sf in algo)


def test_a_copied_eval_solution_is_screened_out(shared_data: Path, tmp_path: Path) -> None:
    with gzip.open(shared_data / "evalsets" / "HumanEval.jsonl.gz", "rt") as f:
        item = next(r for r in map(json.loads, f) if r["task_id"] == "HumanEval/0")
    src = tmp_path / "src"
    src.mkdir()
    (src / "close.py").write_text(item["prompt"] + item["canonical_solution"])
    evalset = {"name": "humaneval", "path": str(shared_data / "evalsets" / "HumanEval.jsonl.gz")}
    cfg = _config([str(src)], max_tasks=2, families={"bugfix": 1.0}, eval_sets=[evalset], min_statements=1)
    report = generate_tasks(cfg, tmp_path / "out")
    assert report["kept"] == 0
    assert report["families"]["bugfix"]["rejected"]["contaminated"] >= 1
    assert report["screen"]["contaminated"]["humaneval"]["ast_hash"]["count"] >= 1


def test_render_and_write_synthetic_shards(algo_run: tuple[Path, dict], tmp_path: Path) -> None:
    tasks_path, _ = algo_run
    tasks = read_tasks(tasks_path)
    text = render_task(tasks[0])
    assert tasks[0].problem_statement.strip() in text and tasks[0].gold_patch in text
    shards = tmp_path / "shards"
    (shards / "synthetic").mkdir(parents=True)
    (shards / "synthetic" / "stale-00000.parquet").write_text("old")
    (shards / "code").mkdir()
    (shards / "code" / "keep.parquet").write_text("other domain")
    paths = write_synthetic_shards(tasks_path, shards, shard_docs=4)
    assert len(paths) == 3 and sorted((shards / "synthetic").glob("*.parquet")) == sorted(paths)
    assert (shards / "code" / "keep.parquet").read_text() == "other domain"
    table = pq.read_table(paths[0]).cast(SHARD_SCHEMA)
    assert pq.read_schema(paths[0]).remove_metadata().equals(SHARD_SCHEMA)
    assert set(table.column("domain").to_pylist()) == {"synthetic"}
    sources = {s for p in paths for s in pq.read_table(p).column("source").to_pylist()}
    assert sources == {f"synth-{f}" for f in FAMILY_NAMES}
    assert sum(pq.read_table(p).num_rows for p in paths) == len(tasks)


def test_apply_patch_refuses_a_patch_that_does_not_fit(algo_run: tuple[Path, dict]) -> None:
    task = read_tasks(algo_run[0])[0]
    with pytest.raises(ValueError, match="does not apply"):
        apply_patch(task.files, task.gold_patch.replace("\n ", "\n XX", 1))
    with pytest.raises(ValueError, match="not a unified diff"):
        apply_patch(task.files, "just text")


def test_missing_source_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="synth.sources"):
        generate_tasks(SynthConfig(sources=[str(tmp_path / "nowhere" / "*.py")]), tmp_path / "out")
    with pytest.raises(FileNotFoundError, match="corpus"):
        generate_tasks(SynthConfig(sources=[str(tmp_path / "none.jsonl.gz")]), tmp_path / "out")


def test_synthesize_flow_completes(prefect_harness, algo_dir: Path, tmp_path: Path) -> None:
    from flows.synthesize import synthesize_flow

    synth = {"sources": [str(algo_dir)], "max_tasks": 2, "families": {"bugfix": 1.0}}
    cfg = PipelineConfig(work_dir=str(tmp_path / "work"), synth=synth)
    state = synthesize_flow(cfg, return_state=True)
    assert state.is_completed(), state
    out = state.result()
    assert out["report"]["kept"] == 2
    assert [Path(p).parent for p in out["shards"]] == [cfg.path("shards", "synthetic")]
    assert pq.read_table(out["shards"][0]).num_rows == 2
    lines = cfg.path("tasks", "swebench.jsonl").read_text().splitlines()
    assert len(lines) == 2 and {"instance_id", "patch", "FAIL_TO_PASS"} <= set(json.loads(lines[0]))


def test_cli_exports_tasks_as_swebench_jsonl(algo_run: tuple[Path, dict], tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from automixer.cli import app

    out = tmp_path / "tasks.jsonl"
    result = CliRunner().invoke(app, ["export-tasks", str(algo_run[0]), str(out)])
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(records) == MAX_TASKS and all(json.loads(r["FAIL_TO_PASS"]) for r in records)
    missing = CliRunner().invoke(app, ["export-tasks", str(tmp_path / "none.parquet"), str(out)])
    assert missing.exit_code == 2 and "not found" in missing.output
