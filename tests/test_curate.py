"""Curation: real datatrove pipeline on small slices of the shared corpora."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from automixer.config import config_from_dict
from automixer.curate import run_curation
from automixer.curate.pipeline import minhash_bands
from automixer.io import sha256_file
from automixer.shards import SHARD_SCHEMA, write_shards

WEB = "web/dolma_CC-MAIN-20190717121559-20190717143559-00140.jsonl.gz"
CODE = "code/code_corpus_python.jsonl.gz"
MATH = "math/gsm8k_train.jsonl"
N_WEB, N_CODE, N_MATH = 120, 100, 120


def _write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _passes_gopher(text: str) -> bool:
    from datatrove.data import Document
    from datatrove.pipeline.filters import GopherQualityFilter, GopherRepetitionFilter

    doc = Document(text=text, id="x")
    return GopherQualityFilter().filter(doc) is True and GopherRepetitionFilter().filter(doc) is True


def _long_web_doc(shared: Path) -> str:
    """A real web document (outside the slice curated) that passes both Gopher filters."""
    with gzip.open(shared / WEB, "rt") as f:
        texts = [json.loads(line)["text"] for line in f][N_WEB:]
    return next(t for t in texts if 400 <= len(t.split()) <= 1500 and _passes_gopher(t))


def _near_copy(text: str) -> str:
    words = text.split(" ")
    for i in (len(words) // 4, len(words) // 2, 3 * len(words) // 4):
        words[i] = "zebra"
    return " ".join(words)


def _rows(domain_dir: Path) -> list[dict]:
    return [r for p in sorted(domain_dir.glob("*.parquet")) for r in pq.read_table(p).to_pylist()]


@pytest.fixture(scope="module")
def curated(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """One curation run over web + duplicates, code and math slices."""
    root = tmp_path_factory.mktemp("curate")
    with open(shared_data / MATH) as f:
        gsm = [json.loads(next(f)) for _ in range(N_MATH)]
    math = _write_jsonl(root / "math.jsonl", [{"text": f"{r['question']}\n\n{r['answer']}"} for r in gsm])
    orig = _long_web_doc(shared_data)
    dups = [
        {"id": "orig", "text": orig},
        {"id": "exact_copy", "text": orig},
        {"id": "near_copy", "text": _near_copy(orig)},
    ]
    (root / "dups").mkdir()
    _write_jsonl(root / "dups" / "part-0.jsonl", dups)
    cfg = config_from_dict(
        {
            "work_dir": str(root / "work"),
            "sources": [
                {"name": "dolma", "domain": "web", "path": str(shared_data / WEB), "id_field": "id", "limit": N_WEB},
                {"name": "dups", "domain": "web", "path": str(root / "dups"), "id_field": "id"},
                {"name": "pycode", "domain": "code", "path": str(shared_data / CODE), "limit": N_CODE},
                {"name": "gsm8k", "domain": "math", "path": str(math)},
            ],
            "curation": {"shard_docs": 40},
        }
    )
    synth = write_shards(
        [{"id": "s0", "text": "def f(): pass", "source": "synth"}],
        cfg.path("shards", "synthetic"),
        "synthetic",
        "tasks",
        10,
    )
    summary = run_curation(cfg)
    return {"cfg": cfg, "summary": summary, "orig": orig, "math": math, "shared": shared_data, "synth": synth}


def test_shards_have_exact_schema_and_zstd(curated: dict) -> None:
    cfg = curated["cfg"]
    for domain in ("web", "code", "math"):
        files = sorted(cfg.path("shards", domain).glob("*.parquet"))
        assert files, domain
        for p in files:
            pf = pq.ParquetFile(p)
            assert pf.schema_arrow == SHARD_SCHEMA
            assert pf.metadata.num_rows <= 40
            codecs = {pf.metadata.row_group(0).column(i).compression for i in range(pf.metadata.num_columns)}
            assert codecs == {"ZSTD"}
            table = pf.read()
            assert set(table.column("domain").to_pylist()) == {domain}
    assert len(list(cfg.path("shards", "code").glob("*.parquet"))) >= 2  # shard_docs split the domain
    ids = [r["id"] for d in ("web", "code", "math") for r in _rows(cfg.path("shards", d))]
    assert len(ids) == len(set(ids))
    web_sources = {r["source"] for r in _rows(cfg.path("shards", "web"))}
    assert web_sources == {"dolma", "dups"}


def test_manifest_matches_files(curated: dict) -> None:
    cfg = curated["cfg"]
    manifest = json.loads(Path(curated["summary"]["manifest"]).read_text())
    by_path = {e["path"]: e for e in manifest["shards"]}
    files = sorted(cfg.path("shards").glob("*/*.parquet"))
    assert sorted(by_path) == sorted(p.relative_to(cfg.path("shards")).as_posix() for p in files)
    for p in files:
        entry = by_path[p.relative_to(cfg.path("shards")).as_posix()]
        table = pq.read_table(p)
        assert entry["sha256"] == sha256_file(p)
        assert entry["docs"] == table.num_rows
        assert entry["bytes"] == sum(len(t.encode()) for t in table.column("text").to_pylist())
    for d in ("web", "code", "math"):
        assert manifest["domains"][d]["docs"] == curated["summary"]["domains"][d]["docs_kept"]
    assert manifest["domains"]["synthetic"]["docs"] == 1  # synth's folder is kept and listed
    assert all(p.is_file() for p in curated["synth"])
    assert manifest["drops"] == curated["summary"]["drops"]


def test_web_quality_drops_counted_by_reason(curated: dict) -> None:
    summary, cfg = curated["summary"], curated["cfg"]
    drops = json.loads(cfg.path("curation", "drops.json").read_text())
    assert drops == summary["drops"]
    quality = drops["web_quality"]
    assert sum(quality.values()) >= 10
    assert "gopher_short_doc" in quality
    expected = {"reader", "min_chars", "web_quality", "code_quality", "math_quality", "exact_dedup", "minhash_dedup"}
    assert set(drops) == expected
    web = summary["domains"]["web"]
    assert web["docs_in"] == N_WEB + 3
    assert web["docs_kept"] < web["docs_in"] - sum(quality.values()) + 1


def test_exact_and_near_duplicates_removed_original_kept(curated: dict) -> None:
    rows = _rows(curated["cfg"].path("shards", "web"))
    ids = {r["id"] for r in rows}
    assert "dups/orig" in ids
    assert "dups/exact_copy" not in ids
    assert "dups/near_copy" not in ids
    assert sum(r["id"] == "dups/orig" for r in rows) == 1  # C4 may have trimmed lines of its text
    assert _passes_gopher(_near_copy(curated["orig"]))  # so dedup, not Gopher, removed it
    drops = curated["summary"]["drops"]
    assert drops["exact_dedup"]["exact_duplicate"] >= 1
    assert drops["minhash_dedup"]["near_duplicate"] >= 1


def test_code_and_math_bypass_gopher(curated: dict) -> None:
    """Docs the Gopher filters would drop (short lines, symbols) survive in code and math."""
    cfg, shared = curated["cfg"], curated["shared"]
    with gzip.open(shared / CODE, "rt") as f:
        code = [json.loads(next(f))["text"] for _ in range(N_CODE)]
    math = [json.loads(line)["text"] for line in curated["math"].read_text().splitlines()]
    for domain, texts in (("code", code), ("math", math)):
        long_enough = [t for t in texts if len(t.strip()) >= 200]
        would_drop = [t for t in long_enough if not _passes_gopher(t)]
        assert len(would_drop) >= 10, domain  # non-vacuous: Gopher would reject these
        kept = {r["text"] for r in _rows(cfg.path("shards", domain))}
        assert set(would_drop) <= kept, domain
        assert curated["summary"]["domains"][domain]["docs_in"] == len(texts)


def _small_cfg(root: Path, min_chars: int = 200, workers: int = 1) -> dict:
    import datasets

    def doc(tag: str) -> str:  # distinct words per source, so no cross-source near-duplicates
        return " ".join(f"{tag}{i}" for i in range(60))

    ds = datasets.Dataset.from_dict({"body": [doc("hf"), "tiny"], "key": ["h0", "h1"]})
    ds.save_to_disk(str(root / "hf_ds"))
    pq.write_table(pa.table({"text": [doc("parquet")]}), root / "p.parquet")
    _write_jsonl(root / "web.jsonl", [{"text": doc("web")}])
    return {
        "work_dir": str(root / "work"),
        "sources": [
            {"name": "web", "domain": "web", "path": str(root / "web.jsonl")},
            {
                "name": "hf",
                "domain": "code",
                "format": "hf",
                "path": str(root / "hf_ds"),
                "text_field": "body",
                "id_field": "key",
            },
            {"name": "pq", "domain": "math", "format": "parquet", "path": str(root), "glob": "*.parquet"},
        ],
        "curation": {"min_chars": min_chars, "filters": {}, "workers": workers},
    }


def test_rerun_skips_and_config_change_recomputes(tmp_path: Path) -> None:
    raw = _small_cfg(tmp_path)
    cfg = config_from_dict(raw)
    first = run_curation(cfg)
    assert not first["skipped"]
    assert first["domains"]["code"] == {"docs_in": 2, "docs_kept": 1, "shards": 1}
    assert _rows(cfg.path("shards", "code"))[0]["id"] == "hf/h0"
    assert {r["source"] for r in _rows(cfg.path("shards", "math"))} == {"pq"}
    shards = sorted(cfg.path("shards").glob("*/*.parquet"))
    before = {p: (p.stat().st_mtime_ns, sha256_file(p)) for p in shards}
    logs = {p: p.stat().st_mtime_ns for p in Path(first["run_dir"]).rglob("*")}
    second = run_curation(cfg)
    assert second["skipped"] and second["drops"] == first["drops"]
    assert {p: (p.stat().st_mtime_ns, sha256_file(p)) for p in shards} == before
    assert {p: p.stat().st_mtime_ns for p in Path(second["run_dir"]).rglob("*")} == logs

    changed = run_curation(config_from_dict({**raw, "curation": {**raw["curation"], "min_chars": 3}}))
    assert not changed["skipped"] and changed["run_dir"] != first["run_dir"]
    assert changed["domains"]["code"]["docs_kept"] == 2
    after = sorted(cfg.path("shards").glob("*/*.parquet"))
    assert not set(after) & set(shards)  # stale shards of the old config are gone
    assert not Path(first["run_dir"]).exists()


def test_bad_source_path_and_missing_field_fail_clearly(tmp_path: Path) -> None:
    raw = _small_cfg(tmp_path)
    bad_path = {**raw, "sources": [{**raw["sources"][0], "path": str(tmp_path / "nope.jsonl")}]}
    with pytest.raises(FileNotFoundError, match=r"source 'web'.*nope\.jsonl.*does not exist"):
        run_curation(config_from_dict(bad_path))
    no_match = {**raw, "sources": [{**raw["sources"][2], "glob": "*.missing"}]}
    with pytest.raises(FileNotFoundError, match=r"source 'pq'.*no input files match"):
        run_curation(config_from_dict(no_match))
    bad_field = {**raw, "sources": [{**raw["sources"][0], "text_field": "content"}]}
    with pytest.raises(ValueError, match=r"source 'web'.*no text field 'content'.*fields present: \['text'\]"):
        run_curation(config_from_dict(bad_field))
    bad_hf_field = {**raw, "sources": [{**raw["sources"][1], "text_field": "text"}]}
    with pytest.raises(ValueError, match=r"source 'hf'.*no text field 'text'"):
        run_curation(config_from_dict(bad_hf_field))
    assert not (tmp_path / "work" / "shards").exists()


def test_minhash_bands_follow_threshold() -> None:
    bands = [minhash_bands(t) for t in (0.5, 0.7, 0.8, 0.9)]
    assert all(b * r <= 112 for b, r in bands)
    rows = [r for _, r in bands]
    assert rows == sorted(rows) and rows[0] < rows[-1]
    for t, (b, r) in zip((0.5, 0.7, 0.8, 0.9), bands, strict=True):
        at, below = (1 - (1 - s**r) ** b for s in (t, t - 0.25))
        assert at >= 0.9 and below < 0.5


def test_curate_flow_completes(prefect_harness: None, tmp_path: Path) -> None:
    from flows.curate import curate_flow

    cfg = config_from_dict(_small_cfg(tmp_path, workers=2))
    state = curate_flow(cfg, return_state=True)
    assert state.is_completed()
    result = state.result()
    assert result["domains"]["web"]["docs_kept"] == 1
    assert Path(result["manifest"]).is_file()
