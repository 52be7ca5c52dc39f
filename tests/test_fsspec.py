"""Storage through fsspec: mixtures, the shards manifest and a whole curation run on `memory://`, no local disk."""

from __future__ import annotations

import uuid
from pathlib import Path

import fsspec
import pyarrow.parquet as pq
import pytest
import yaml

from automixer.config import config_from_dict
from automixer.curate import run_curation
from automixer.demo import build_demo_corpus
from automixer.export import write_export
from automixer.io import (
    UrlPath,
    atomic_path,
    glob,
    is_file,
    join,
    location,
    read_structured,
    read_text,
    sha256_file,
    write_json_atomic,
)
from automixer.mixture import MixtureSpec, read_mixture, write_mixture
from automixer.shards import build_manifest, read_domain_texts, read_parquet, write_shards

MEM = fsspec.filesystem("memory")


@pytest.fixture
def mem_root():
    """A fresh `memory://` prefix, removed afterwards."""
    prefix = f"/automixer-test-{uuid.uuid4().hex[:8]}"
    yield f"memory://{prefix}"
    if MEM.exists(prefix):
        MEM.rm(prefix, recursive=True)


@pytest.fixture
def no_local_writes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run the test from an empty folder, so a URL mistaken for a relative path shows up as a new entry there."""
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    return cwd


def test_locations_parse_urls_paths_and_pathlib_folded_urls(tmp_path: Path) -> None:
    assert location("s3://bucket/work") == UrlPath("s3://bucket/work")
    assert join("s3://bucket/work", "shards", "code") == "s3://bucket/work/shards/code"
    assert location(Path("memory://x") / "y") == "memory://x/y"  # pathlib folds `//`; the URL is recovered
    assert location(f"file://{tmp_path}") == tmp_path  # file:// is a local path: atomic rename applies
    assert isinstance(join(str(tmp_path), "a"), Path) and join("memory://r/a/b").parent == "memory://r/a"
    assert location("relative/dir") == Path("relative/dir")


def test_failed_write_leaves_nothing_and_a_finished_one_is_whole(mem_root: str) -> None:
    target = join(mem_root, "out", "x.json")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed mid-write")
    assert not is_file(target)
    write_json_atomic(target, {"a": 1})
    assert read_structured(target, "test file") == {"a": 1}


def test_mixture_write_read_and_export_on_memory(mem_root: str, no_local_writes: Path) -> None:
    spec = MixtureSpec(name="prop", weights={"code": 0.4, "web": 0.6}, target="bpb_mean", provenance={"seed": 1})
    path = write_mixture(spec, join(mem_root, "mixtures"))
    assert path == f"{mem_root}/mixtures/prop.yaml" and is_file(path)
    assert read_mixture(path) == spec
    out = write_export(spec, "yaml", f"{mem_root}/exports/prop.yaml", total_tokens=1000)
    assert read_mixture(out).weights == spec.weights
    assert yaml.safe_load(read_text(out))["provenance"]["export"]["total_tokens"] == 1000
    assert not list(no_local_writes.iterdir())


def test_shards_and_manifest_on_memory(mem_root: str, no_local_writes: Path) -> None:
    shards = join(mem_root, "shards")
    docs = {d: [{"id": f"{d}{i}", "text": f"{d} text number {i}."} for i in range(7)] for d in ("code", "web")}
    for d, rows in docs.items():
        written = write_shards(rows, join(shards, d), d, f"{d}-part", shard_docs=3)
        assert [p.name for p in written] == [f"{d}-part-{i:05d}.parquet" for i in range(3)]
    manifest = build_manifest(shards, extra={"drops": {}})
    assert read_structured(join(shards, "manifest.json"), "manifest") == manifest
    assert manifest["domains"]["code"] == {"docs": 7, "tokens": 35, "bytes": sum(len(r["text"]) for r in docs["code"]),
                                           "shards": 3}  # fmt: skip
    first = manifest["shards"][0]
    assert first["path"] == "code/code-part-00000.parquet"
    assert first["sha256"] == sha256_file(join(shards, first["path"]))
    assert read_domain_texts(shards, "web").column("id").to_pylist() == [f"web{i}" for i in range(7)]
    assert not list(no_local_writes.iterdir())


def _curation_cfg(work_dir: str, sources: Path) -> dict:
    return {
        "work_dir": work_dir,
        "domains": ["code", "math", "web"],
        "sources": [
            {"name": "code", "domain": "code", "path": str(sources / "code_stdlib.jsonl.gz"), "limit": 40},
            {"name": "math", "domain": "math", "path": str(sources / "math_generated.jsonl.gz"), "limit": 60},
            {"name": "web", "domain": "web", "path": str(sources / "web_prose.jsonl.gz"), "limit": 40},
        ],
        "curation": {"min_chars": 200, "filters": {"code": ["code_quality"], "math": ["math_quality"]}},
    }


def _rows(shard_files: list) -> list[dict]:
    return [r for p in shard_files for r in read_parquet(p).to_pylist()]


def test_curation_run_on_memory_matches_local_disk(mem_root: str, no_local_writes: Path, tmp_path: Path) -> None:
    build_demo_corpus(tmp_path / "src", "tiny")
    local = run_curation(config_from_dict(_curation_cfg(str(tmp_path / "local"), tmp_path / "src")))
    cfg = config_from_dict(_curation_cfg(f"{mem_root}/work", tmp_path / "src"))
    remote = run_curation(cfg)
    assert remote["run_dir"].startswith(f"{mem_root}/work/curation/run-") and not remote["skipped"]
    assert remote["domains"] == local["domains"] and remote["drops"] == local["drops"]
    assert remote["drops"]["minhash_dedup"]["near_duplicate"] > 0 and remote["drops"]["min_chars"]
    work = join(mem_root, "work")
    for domain in ("code", "math", "web"):
        ours = _rows(glob(join(work, "shards", domain), "*.parquet"))
        theirs = [r for p in sorted((tmp_path / "local" / "shards" / domain).glob("*.parquet")) for r in
                  pq.read_table(p).to_pylist()]  # fmt: skip
        assert ours == theirs and ours
    manifest = read_structured(join(work, "shards", "manifest.json"), "manifest")
    assert manifest["drops"] == remote["drops"] and sum(d["docs"] for d in manifest["domains"].values()) == sum(
        d["docs_kept"] for d in remote["domains"].values()
    )
    assert glob(join(work, "curation", "excluded"), "*.parquet")
    assert is_file(join(work, "curation", "drops.json")) and is_file(join(work, "curation", "reader_errors.jsonl"))
    assert glob(remote["run_dir"], "logs/filter/completions/*")  # datatrove's markers live there too
    assert run_curation(cfg)["skipped"]  # a rerun finds the finished run on the object store
    assert not list(no_local_writes.iterdir())
