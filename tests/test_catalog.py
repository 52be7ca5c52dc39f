"""DuckDB views over a work directory, queried with real DuckDB over real files."""

from __future__ import annotations

import json

import pytest

from automixer.catalog import list_views, open_catalog
from automixer.shards import build_manifest, write_shards


def _write_result(work, run_id: str, status: str, weights: dict, metrics: dict) -> None:
    d = work / "sweep" / "runs" / run_id
    d.mkdir(parents=True)
    result = {
        "run_id": run_id,
        "status": status,
        "error": None if status == "ok" else "boom",
        "weights": weights,
        "metrics": metrics,
        "tokens_seen": {},
        "epochs": {},
        "seed": 0,
        "wall_s": 2.0,
    }
    (d / "result.json").write_text(json.dumps(result))


def test_all_views(tmp_path) -> None:
    work = tmp_path / "work"
    code = [{"id": f"c{i}", "text": f"def f{i}(x):\n    return x + {i}\n"} for i in range(5)]
    web = [{"id": f"w{i}", "text": f"It's a sentence number {i}."} for i in range(3)]
    write_shards(code, work / "shards" / "code", "code", "code", shard_docs=2)
    write_shards(web, work / "shards" / "web", "web", "web", shard_docs=10)
    build_manifest(work / "shards")
    (work / "curation").mkdir()
    drops = {"GopherQualityFilter": {"dropped": 7, "dropped_gopher_short_doc": 4}, "ExactDedup": 2}
    (work / "curation" / "drops.json").write_text(json.dumps(drops))
    _write_result(work, "run-000", "ok", {"code": 0.5, "web": 0.5}, {"bpb_code": 1.0, "bpb_web": 2.0, "bpb_mean": 1.5})
    _write_result(work, "run-001", "ok", {"code": 0.2, "web": 0.8}, {"bpb_code": 1.4, "bpb_web": 1.8, "bpb_mean": 1.6})
    _write_result(work, "run-002", "failed", {"code": 0.9, "web": 0.1}, {})

    con = open_catalog(work)
    assert list_views(con) == ["documents", "drops", "manifest", "run_status", "runs", "shards"]
    by_domain = con.execute("SELECT domain, count(*), count(DISTINCT filename) FROM shards GROUP BY 1 ORDER BY 1")
    assert by_domain.fetchall() == [("code", 5, 3), ("web", 3, 1)]
    tokens = con.execute("SELECT sum(tokens) FROM manifest WHERE domain = 'web'").fetchone()[0]
    assert tokens == con.execute("SELECT sum(n_tokens) FROM shards WHERE domain = 'web'").fetchone()[0] > 0
    rows = con.execute("SELECT filter, reason, count FROM drops ORDER BY filter, reason").fetchall()
    assert rows == [
        ("ExactDedup", "total", 2),
        ("GopherQualityFilter", "dropped", 7),
        ("GopherQualityFilter", "dropped_gopher_short_doc", 4),
    ]
    best = con.execute("SELECT run_id, weight_code FROM runs ORDER BY bpb_mean LIMIT 1").fetchone()
    assert best == ("run-000", 0.5)
    assert con.execute("SELECT count(*) FROM runs").fetchone()[0] == 2
    assert con.execute("SELECT status, count(*) FROM run_status GROUP BY 1 ORDER BY 1").fetchall() == [
        ("failed", 1),
        ("ok", 2),
    ]


def test_only_existing_views(tmp_path) -> None:
    (tmp_path / "curation").mkdir()
    records = [{"filter": "min_chars", "reason": "too_short", "count": 3}]
    (tmp_path / "curation" / "drops.json").write_text(json.dumps(records))
    con = open_catalog(tmp_path)
    assert list_views(con) == ["drops"]
    assert con.execute("SELECT * FROM drops").fetchall() == [("min_chars", "too_short", 3)]
    with pytest.raises(FileNotFoundError, match="work directory"):
        open_catalog(tmp_path / "missing")
