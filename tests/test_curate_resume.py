"""Curation killed with SIGKILL at several points and restarted ends with the same shards as an uninterrupted run."""

from __future__ import annotations

import gzip
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from automixer.io import sha256_file

WEB = "web/dolma_CC-MAIN-20190717121559-20190717143559-00140.jsonl.gz"
CODE = "code/code_corpus_python.jsonl.gz"
RUN = "import sys; from automixer.config import load_config; from automixer.curate import run_curation; run_curation(load_config(sys.argv[1]))"


def _sources(shared: Path, folder: Path) -> list[dict]:
    folder.mkdir()
    with gzip.open(shared / WEB, "rt") as f:
        web = [json.loads(line) for line in f][:400]
    with gzip.open(shared / CODE, "rt") as f:
        code = [json.loads(line) for _, line in zip(range(300), f, strict=False)]
    (folder / "web.jsonl").write_text("".join(json.dumps({"id": d["id"], "text": d["text"]}) + "\n" for d in web))
    (folder / "code.jsonl").write_text(
        "".join(json.dumps({"id": f"{d['repo']}/{d['path']}", "text": d["text"]}) + "\n" for d in code)
    )
    return [
        {"name": "web", "domain": "web", "path": str(folder / "web.jsonl")},
        {"name": "code", "domain": "code", "path": str(folder / "code.jsonl")},
    ]


def _config(path: Path, work: Path, sources: list[dict]) -> Path:
    raw = {"work_dir": str(work), "domains": ["code", "web"], "sources": sources, "curation": {"shard_docs": 50}}
    path.write_text(yaml.safe_dump(raw))
    return path


def _shards(work: Path) -> dict[str, str]:
    return {p.relative_to(work).as_posix(): sha256_file(p) for p in sorted(work.glob("shards/*/*.parquet"))}


def _run_until(cfg: Path, cond: Callable[[], bool], timeout: float = 120.0) -> bool:
    """Start curation in a subprocess and SIGKILL it as soon as `cond()` holds; True if it was killed."""
    proc = subprocess.Popen([sys.executable, "-c", RUN, str(cfg)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + timeout
    while proc.poll() is None and time.monotonic() < deadline:
        if cond():
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
            return True
        time.sleep(0.01)  # polling a condition on disk, not a timing assumption
    proc.wait()
    return False


def test_sigkill_at_each_stage_then_resume_gives_identical_shards(shared_data, tmp_path):
    sources = _sources(shared_data, tmp_path / "src")
    ref_work, work = tmp_path / "ref", tmp_path / "killed"
    subprocess.run([sys.executable, "-c", RUN, str(_config(tmp_path / "ref.yaml", ref_work, sources))], check=True)
    reference = _shards(ref_work)
    assert reference and all(k.startswith("shards/") for k in reference)

    cfg = _config(tmp_path / "killed.yaml", work, sources)

    def stage_done(stage: str) -> Callable[[], bool]:
        return lambda: any(work.glob(f"curation/run-*/logs/{stage}/completions/*"))

    points = [stage_done("filter"), stage_done("minhash_sigs"), stage_done("minhash_buckets"), stage_done("final")]
    points.append(lambda: any(work.glob("shards/*/*.parquet")))
    killed = [_run_until(cfg, point) for point in points]
    assert sum(killed) >= 3, f"the runs finished before most kill points: {killed}"
    subprocess.run([sys.executable, "-c", RUN, str(cfg)], check=True)
    assert _shards(work) == reference
    assert not list(work.glob("shards/*/.*.tmp")), "temp files left behind"


@pytest.mark.parametrize("stage", ["minhash_sigs"])
def test_resume_skips_finished_stages(shared_data, tmp_path, stage):
    sources = _sources(shared_data, tmp_path / "src")
    work = tmp_path / "w"
    cfg = _config(tmp_path / "c.yaml", work, sources)
    assert _run_until(cfg, lambda: any(work.glob(f"curation/run-*/logs/{stage}/completions/*")))
    (filter_done,) = work.glob("curation/run-*/logs/filter/completions/*")
    before = filter_done.stat().st_mtime_ns
    subprocess.run([sys.executable, "-c", RUN, str(cfg)], check=True)
    assert filter_done.stat().st_mtime_ns == before, "the finished filter stage was redone"
