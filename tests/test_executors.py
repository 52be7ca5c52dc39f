"""Curation executors: the same datatrove stages on the local executor, on a local Ray cluster, and built for Slurm."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from automixer.config import config_from_dict
from automixer.curate import run_curation
from automixer.curate.executors import curation_tasks, slurm_script, stage_executor
from automixer.curate.pipeline import build_stages
from automixer.curate.sources import resolve_sources
from automixer.demo import build_demo_corpus
from automixer.io import sha256_file

pytestmark = pytest.mark.filterwarnings("ignore:placement_group:DeprecationWarning")  # inside datatrove's Ray executor

FILES = ("code_stdlib.jsonl.gz", "math_generated.jsonl.gz", "web_prose.jsonl.gz")


def _raw(work: Path, sources: Path, execution: dict | None = None) -> dict:
    """The tiny demo corpus (3 input files), every dedup stage on, cheap per-domain filters."""
    return {
        "work_dir": str(work),
        "domains": ["code", "math", "web"],
        "sources": [
            {"name": "code", "domain": "code", "path": str(sources / FILES[0]), "limit": 60},
            {"name": "math", "domain": "math", "path": str(sources / FILES[1]), "limit": 90},
            {"name": "web", "domain": "web", "path": str(sources / FILES[2]), "limit": 60},
        ],
        "curation": {"min_chars": 200, "workers": 3, "filters": {"code": ["code_quality"], "math": ["math_quality"]}},
        "execution": execution or {},
    }


def _shard_rows(work: Path) -> dict[str, list[dict]]:
    return {
        d.name: [r for p in sorted(d.glob("*.parquet")) for r in pq.read_table(p).to_pylist()]
        for d in sorted((work / "shards").iterdir())
        if d.is_dir()
    }


def _shard_hashes(work: Path) -> dict[str, str]:
    return {p.relative_to(work).as_posix(): sha256_file(p) for p in sorted(work.glob("shards/*/*.parquet"))}


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The same config curated by the local executor and by datatrove's Ray executor on a local Ray cluster."""
    import ray

    root = tmp_path_factory.mktemp("executors")
    build_demo_corpus(root / "src", "tiny")
    local_cfg = config_from_dict(_raw(root / "local", root / "src"))
    local = run_curation(local_cfg)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        ray_cfg = config_from_dict(_raw(root / "ray", root / "src", {"curation": "ray", "cpus_per_run": 0.5}))
        yield {"root": root, "local": local, "ray": run_curation(ray_cfg), "ray_cfg": ray_cfg}
    finally:
        ray.shutdown()


def test_ray_executor_keeps_the_same_documents_as_local(runs: dict) -> None:
    root, local, on_ray = runs["root"], runs["local"], runs["ray"]
    assert not on_ray["skipped"] and Path(on_ray["run_dir"]).name == Path(local["run_dir"]).name  # same key
    assert on_ray["domains"] == local["domains"] and on_ray["drops"] == local["drops"]
    assert on_ray["drops"]["minhash_dedup"]["near_duplicate"] > 0  # cross-task dedup stages really ran
    rows = _shard_rows(root / "ray")
    assert rows == _shard_rows(root / "local") and all(rows.values())
    assert _shard_hashes(root / "ray") == {
        k.replace("local/", "ray/"): v for k, v in _shard_hashes(root / "local").items()
    }
    logs = Path(on_ray["run_dir"]) / "logs"
    assert json.loads((logs / "filter" / "executor.json").read_text())["tasks"] == 3  # one task per input file


def test_ray_rerun_redoes_only_unfinished_tasks(runs: dict) -> None:
    """Completion markers written by Ray tasks are honoured: only the removed task runs again."""
    cfg, run_dir = runs["ray_cfg"], Path(runs["ray"]["run_dir"])
    before = _shard_hashes(runs["root"] / "ray")
    (run_dir / "_DONE").unlink()
    (run_dir / "logs" / "final" / "completions" / "00001").unlink()
    (run_dir / "data" / "final" / "00001.jsonl").unlink()
    filter_marks = {p: p.stat().st_mtime_ns for p in (run_dir / "logs" / "filter" / "completions").iterdir()}
    again = run_curation(cfg)
    assert not again["skipped"] and again["drops"] == runs["ray"]["drops"]
    assert (run_dir / "logs" / "final" / "completions" / "00001").is_file()
    assert {p: p.stat().st_mtime_ns for p in filter_marks} == filter_marks, "finished tasks were redone"
    assert _shard_hashes(runs["root"] / "ray") == before
    assert run_curation(cfg)["skipped"]


def test_tasks_are_one_per_input_file_unless_set(runs: dict) -> None:
    root = runs["root"]
    specs = resolve_sources(runs["ray_cfg"])
    assert curation_tasks(runs["ray_cfg"], specs) == 3
    assert curation_tasks(config_from_dict(_raw(root / "x", root / "src", {"curation": "ray", "tasks": 8})), specs) == 8
    local = config_from_dict(_raw(root / "x", root / "src"))
    assert curation_tasks(local, specs) == local.curation.workers


SLURM = {
    "curation": "slurm",
    "tasks": 5,
    "slurm": {
        "partition": "cpu-long",
        "time": "12:30:00",
        "cpus_per_task": 2,
        "mem_per_cpu_gb": 3,
        "venv_path": "/opt/venvs/automixer/bin/activate",
        "sbatch_args": {"account": "mixing"},
    },
}


def test_slurm_executors_are_built_from_the_slurm_config(runs: dict, tmp_path: Path) -> None:
    from datatrove.executor import SlurmPipelineExecutor

    cfg = config_from_dict(_raw(tmp_path / "w", runs["root"] / "src", SLURM))
    specs = resolve_sources(cfg)
    stages, _ = build_stages(specs, cfg.curation, tmp_path / "run", curation_tasks(cfg, specs))
    tasks = {name: n for name, _, n, _ in stages}
    assert tasks["filter"] == tasks["final"] == 5 and tasks["minhash_cluster"] == 1
    for stage in stages:
        ex = stage_executor(cfg, stage, tmp_path / "run" / "logs" / stage[0], job_name="automixer-test")
        assert isinstance(ex, SlurmPipelineExecutor)
        assert (ex.partition, ex.time, ex.cpus_per_task, ex.mem_per_cpu_gb) == ("cpu-long", "12:30:00", 2, 3)
        assert (ex.tasks, ex.job_name, ex.skip_completed) == (stage[2], f"automixer-test-{stage[0]}", True)
        script = slurm_script(ex)
        for line in (
            "--partition=cpu-long",
            "--time=12:30:00",
            "--cpus-per-task=2",
            "--mem-per-cpu=3G",
            "--account=mixing",
            f"--array=0-{stage[2] - 1}",
            f"--job-name=automixer-test-{stage[0]}",
        ):
            assert f"#SBATCH {line}\n" in script, (line, script)  # fmt: skip
        assert "source /opt/venvs/automixer/bin/activate" in script and "launch_pickled_pipeline" in script


def test_slurm_without_sbatch_fails_before_any_work(runs: dict, tmp_path: Path, monkeypatch) -> None:
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    cfg = config_from_dict(_raw(tmp_path / "w", runs["root"] / "src", SLURM))
    with pytest.raises(RuntimeError, match=r"`sbatch` is not on PATH.*Slurm login node"):
        run_curation(cfg)
    assert not list((tmp_path / "w").glob("curation/run-*/logs/*/completions/*"))
    assert not (tmp_path / "w" / "shards").exists()
    assert os.environ["PATH"] == str(empty)


FAKE_SBATCH = """#!/bin/bash
# Stands in for Slurm's sbatch: records the arguments and the script, answers like sbatch does.
n=$(( $(ls "$FAKE_SLURM" | wc -l) + 100 ))
mkdir -p "$FAKE_SLURM/$n" && printf '%s\\n' "$@" > "$FAKE_SLURM/$n/args" && cp "${@: -1}" "$FAKE_SLURM/$n/script"
echo "Submitted batch job $n"
"""


def _play_array_jobs(jobs: Path) -> None:
    """Run each submitted pipeline job's array tasks here, in submission order, as the compute nodes would."""
    import signal

    import dill

    usr1 = signal.getsignal(signal.SIGUSR1)
    try:
        for job in sorted(jobs.iterdir(), key=lambda p: int(p.name)):
            script = (job / "script").read_text()
            if "launch_pickled_pipeline" not in script:
                continue  # datatrove's stats-merging job
            pik = script.rsplit("launch_pickled_pipeline ", 1)[1].split()[0]
            last = int(script.split("#SBATCH --array=0-", 1)[1].split()[0])
            for i in range(last + 1):  # each array task starts from the pickle, as a fresh process would
                with open(pik, "rb") as f:
                    executor = dill.load(f)
                os.environ["SLURM_ARRAY_TASK_ID"] = str(i)
                executor.run()
    finally:
        os.environ.pop("SLURM_ARRAY_TASK_ID", None)
        signal.signal(signal.SIGUSR1, usr1)


def test_slurm_submits_a_dependent_chain_and_a_rerun_collects_it(runs: dict, tmp_path: Path, monkeypatch) -> None:
    """Slurm itself is replaced by a recording `sbatch`; the pickled executors it was handed then run here."""
    bin_dir, jobs = tmp_path / "bin", tmp_path / "jobs"
    bin_dir.mkdir(), jobs.mkdir()
    (bin_dir / "sbatch").write_text(FAKE_SBATCH)
    (bin_dir / "scontrol").write_text("#!/bin/bash\necho localhost\n")  # `scontrol show hostnames`
    for tool in ("sbatch", "scontrol"):
        (bin_dir / tool).chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_SLURM", str(jobs))
    monkeypatch.setenv("SLURM_NODELIST", "localhost")
    cfg = config_from_dict(_raw(tmp_path / "w", runs["root"] / "src", {"curation": "slurm"}))
    first = run_curation(cfg)
    submitted = first["submitted"]["jobs"]
    assert list(submitted) == ["filter", "exact_sigs", "exact_find", "minhash_sigs", "minhash_buckets",
                               "minhash_cluster", "final"] and not list((tmp_path / "w").glob("shards/*/*"))  # fmt: skip
    ids = list(submitted.values())
    for before, job in zip(ids, ids[1:], strict=False):
        assert f"--dependency=afterok:{before}" in (jobs / job / "args").read_text().split()
    assert "#SBATCH --partition=cpu\n" in (jobs / ids[0] / "script").read_text()
    with pytest.raises(RuntimeError, match="have not finished"):
        run_curation(cfg)  # the jobs are still queued: no second submission
    _play_array_jobs(jobs)
    collected = run_curation(cfg)
    assert collected["domains"] == runs["local"]["domains"] and collected["drops"] == runs["local"]["drops"]
    assert _shard_rows(tmp_path / "w") == _shard_rows(runs["root"] / "local")
