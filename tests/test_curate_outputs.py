"""A whole curation run over real files: exclusion shards with reasons, decontamination, WARC, bad input, catalog."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from automixer.catalog import open_catalog
from automixer.config import config_from_dict
from automixer.curate import run_curation
from automixer.shards import SHARD_SCHEMA

WEB = "web/dolma_CC-MAIN-20190717121559-20190717143559-00140.jsonl.gz"


def _humaneval_item(shared: Path) -> dict:
    with gzip.open(shared / "evalsets/HumanEval.jsonl.gz", "rt") as f:
        return json.loads(next(iter(f)))


def _corpus(shared: Path, root: Path) -> list[dict]:
    with gzip.open(shared / WEB, "rt") as f:
        web = [json.loads(line) for _, line in zip(range(150), f, strict=False)]
    item = _humaneval_item(shared)
    host = next(d for d in web if len(d["text"]) > 2000)
    planted = {
        "id": "planted-humaneval",
        "text": host["text"][:1500] + "\n" + item["prompt"] + "\n" + host["text"][1500:],
    }
    twin = {"id": "twin-web", "text": web[3]["text"]}
    rows = [{"id": d["id"], "text": d["text"]} for d in web] + [planted]
    (root / "web.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (root / "bad.jsonl").write_text('{"id": "ok1", "text": "' + "fine text " * 40 + '"}\n{not json\n\n')
    (root / "twin.jsonl").write_text(json.dumps(twin) + "\n")
    return [
        {"name": "dolma", "domain": "web", "path": str(root / "web.jsonl"), "id_field": "id"},
        {"name": "broken", "domain": "web", "path": str(root / "bad.jsonl")},
        {"name": "warc", "domain": "web", "format": "warc", "path": str(shared / "web/cc_whirlwind.warc.gz")},
        {"name": "twin", "domain": "code", "path": str(root / "twin.jsonl"), "id_field": "id"},
    ]


def _cfg(root: Path, sources: list[dict], shared: Path, scope: str = "global"):
    return config_from_dict(
        {
            "work_dir": str(root / f"work-{scope}"),
            "domains": ["code", "web"],
            "sources": sources,
            "curation": {
                "filters": {"web": ["web_quality"]},
                "dedup_scope": scope,
                "min_chars": 50,
                "decontamination": {
                    "eval_sets": [{"name": "humaneval", "path": str(shared / "evalsets/HumanEval.jsonl.gz")}]
                },
            },
        }
    )


@pytest.fixture(scope="module")
def run(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """One curation run with web filters, decontamination, a WARC source and a broken file."""
    root = tmp_path_factory.mktemp("outputs")
    sources = _corpus(shared_data, root)
    cfg = _cfg(root, sources, shared_data)
    return {"cfg": cfg, "summary": run_curation(cfg), "root": root, "sources": sources}


def test_every_drop_is_an_excluded_row_with_filter_and_reason(run: dict) -> None:
    con = open_catalog(run["cfg"].work_dir)
    by_filter = dict(con.sql("select filter, count(*) from excluded group by filter").fetchall())
    drops = run["summary"]["drops"]
    for name in ("min_chars", "web_quality", "decontamination", "exact_dedup"):
        assert by_filter.get(name, 0) == sum(drops.get(name, {}).values()), name
    reasons = con.sql("select drop_reason, source, count(*) from excluded where filter = 'web_quality' group by all")
    counts = {(r, s): n for r, s, n in reasons.fetchall()}
    assert sum(counts.values()) == sum(drops["web_quality"].values())
    assert all(source in {"dolma", "broken", "warc"} for _, source in counts)


def test_decontamination_removes_the_planted_item_and_reports_it(run: dict, shared_data: Path) -> None:
    cfg = run["cfg"]
    rows = [json.loads(line) for line in cfg.path("curation", "decontamination.jsonl").read_text().splitlines()]
    planted = [r for r in rows if r["id"].endswith("planted-humaneval") or "planted-humaneval" in r["id"]]
    assert len(planted) == 1
    item = _humaneval_item(shared_data)
    assert planted[0]["eval_set"] == "humaneval" and planted[0]["item_id"] == item["task_id"]
    assert len(planted[0]["ngram"].split()) == 13
    kept = {r["id"] for p in cfg.path("shards", "web").glob("*.parquet") for r in pq.read_table(p).to_pylist()}
    assert not any("planted-humaneval" in i for i in kept)


def test_bad_input_is_counted_by_file_and_line_and_the_run_completes(run: dict) -> None:
    cfg = run["cfg"]
    errors = [json.loads(line) for line in cfg.path("curation", "reader_errors.jsonl").read_text().splitlines()]
    bad = [e for e in errors if e["reason"] == "bad_json"]
    assert len(bad) == 1 and bad[0]["file"].endswith("bad.jsonl") and bad[0]["line"] == 2
    assert run["summary"]["drops"]["reader"]["bad_json"] == 1


def test_shards_carry_provenance_and_signals_and_load_with_datasets(run: dict) -> None:
    import datasets

    cfg = run["cfg"]
    files = sorted(str(p) for p in cfg.path("shards").glob("*/*.parquet"))
    for f in files:
        assert pq.read_schema(f).equals(SHARD_SCHEMA, check_metadata=False)
    rows = [r for f in files for r in pq.read_table(f).to_pylist()]
    web = [r for r in rows if r["domain"] == "web"]
    con = open_catalog(cfg.work_dir)
    warc = con.sql(
        "select url from documents where source = 'warc' union all select url from excluded where source = 'warc'"
    )
    assert [u for (u,) in warc.fetchall() if u.startswith("http")], "WARC documents keep their URL"
    assert all(r["url"] and ":" in r["url"] for r in web if r["source"] == "dolma")
    assert all(r["signals"]["n_words"] is not None for r in web)
    ds = datasets.load_dataset("parquet", data_files=files, split="train")
    assert ds.num_rows == len(rows) and "signals" in ds.column_names


def test_dedup_scope_domain_keeps_a_copy_per_domain(run: dict, shared_data: Path) -> None:
    global_ids = {r["id"] for p in run["cfg"].path("shards").glob("*/*.parquet") for r in pq.read_table(p).to_pylist()}
    cfg = _cfg(run["root"], run["sources"], shared_data, scope="domain")
    run_curation(cfg)
    scoped_ids = {r["id"] for p in cfg.path("shards").glob("*/*.parquet") for r in pq.read_table(p).to_pylist()}
    twin = [i for i in scoped_ids if "twin-web" in i]
    assert twin, "within-domain dedup must keep the code copy of a web document"
    assert not [i for i in global_ids if "twin-web" in i], "global dedup drops the later copy"
