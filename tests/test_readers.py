"""Readers on real files: WARC edge cases, HTML extraction quality, HF datasets, and every kind of bad input."""

from __future__ import annotations

import gzip
import json
import re
import tracemalloc
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from automixer.curate.readers import Problem, read_jsonl
from automixer.curate.source_reader import SourcesReader, read_reader_errors
from automixer.curate.sources import SourceError, check_source

PAGES = "web/trafilatura_eval_pages.jsonl.gz"


def _spec(base: Path, files: list[str], fmt: str = "jsonl", **kw: object) -> dict:
    spec = {"name": "src", "domain": "web", "format": fmt, "text_field": "text", "id_field": None, "limit": -1}
    return {**spec, "base": str(base), "files": files, **kw}


def _run(specs: list[dict], errors: Path | None = None, **kw: object) -> tuple[list, dict[str, int]]:
    reader = SourcesReader(specs, errors_folder=str(errors) if errors else None, **kw)
    docs = list(reader.run())
    drops = {
        k.removeprefix("dropped_"): int(v.total) for k, v in reader.stats.stats.items() if k.startswith("dropped_")
    }
    return docs, drops


def _words(text: str) -> set[str]:
    return set(re.findall(r"\w+", text.lower()))


# --- WARC -------------------------------------------------------------------------------------------


def test_warc_whirlwind_extracts_main_text_that_the_wet_confirms(shared_data: Path) -> None:
    docs, drops = _run([_spec(shared_data / "web", ["cc_whirlwind.warc.gz", "cc_whirlwind.warc.wet.gz"], "warc")])
    assert drops == {}
    html_doc, wet_doc = docs
    assert html_doc.metadata["url"] == wet_doc.metadata["url"] == "https://an.wikipedia.org/wiki/Escopete"
    assert html_doc.metadata["warc_record_id"] == "<urn:uuid:2aabeff2-67f5-4608-8466-e87c6296e2b6>"
    assert "<" not in html_doc.text and "Escopete" in html_doc.text
    ours, wet = _words(html_doc.text), _words(wet_doc.text)
    assert len(ours & wet) / len(ours) >= 0.95  # every word we kept is on the page Common Crawl converted
    assert len(html_doc.text) < len(wet_doc.text)  # and the menus/boilerplate of the WET text are gone


def test_warc_revisit_records_are_counted_not_read(shared_data: Path, tmp_path: Path) -> None:
    docs, drops = _run([_spec(shared_data / "web", ["warcio_example.warc.gz"], "warc")], tmp_path / "err")
    assert [d.metadata["url"] for d in docs] == ["http://example.com/"]
    assert "illustrative examples" in docs[0].text
    assert drops == {"warc_revisit": 1}
    (err,) = read_reader_errors(tmp_path / "err")
    assert err["reason"] == "warc_revisit" and err["line"] == 4 and err["file"].endswith("warcio_example.warc.gz")


def test_warc_chunked_transfer_encoding_is_decoded(shared_data: Path) -> None:
    spec = _spec(shared_data / "web", ["warcio_example-iana.org-chunked.warc"], "warc")
    (raw,) = SourcesReader([spec]).documents(0, spec)
    assert raw.text.startswith("<!doctype html>") and raw.text.rstrip().endswith("</html>")
    assert "001c37" not in raw.text  # the chunk-size line of the raw record
    (doc,), drops = _run([spec])
    assert drops == {} and doc.metadata["url"] == "http://www.iana.org/"
    assert "Management of the DNS Root Zone" in doc.text
    assert not [line for line in doc.text.splitlines() if re.fullmatch(r"\s*[0-9a-fA-F]{1,8}\s*", line)]


def test_html_extraction_quality_on_gold_pages(shared_data: Path) -> None:
    """First 30 trafilatura eval pages: share of gold `with` snippets found and `without` snippets absent."""
    spec = _spec(shared_data, [PAGES], text_field="html", html=True, limit=30)
    docs, drops = _run([spec])
    with gzip.open(shared_data / PAGES, "rt") as f:
        gold = [json.loads(next(f)) for _ in range(30)]
    by_line = {d.metadata["line"]: d.text for d in docs}
    found = sum(s in by_line.get(i + 1, "") for i, g in enumerate(gold) for s in g["with"])
    absent = sum(s not in by_line.get(i + 1, "") for i, g in enumerate(gold) for s in g["without"])
    n_with, n_without = sum(len(g["with"]) for g in gold), sum(len(g["without"]) for g in gold)
    assert len(docs) + sum(drops.values()) == 30
    assert all(d.metadata["url"] == gold[d.metadata["line"] - 1]["url"] for d in docs)
    assert found / n_with >= 0.85, (found, n_with)  # measured 0.92 (68/74)
    assert absent / n_without >= 0.85, (absent, n_without)  # measured 0.92 (72/78)


# --- HF datasets and ordinary files -----------------------------------------------------------------


def test_hf_local_dataset_and_plain_files_carry_provenance(tmp_path: Path) -> None:
    import datasets

    datasets.Dataset.from_dict({"body": ["alpha text", "beta text"], "k": ["a", "b"]}).save_to_disk(tmp_path / "ds")
    pq.write_table(pa.table({"text": ["p0", "p1"], "url": ["https://x.org/0", None]}), tmp_path / "p.parquet")
    (tmp_path / "a.jsonl").write_text('{"text": "j0"}\n\n{"text": "j1", "url": "https://y.org"}\n')
    with gzip.open(tmp_path / "b.jsonl.gz", "wt") as f:
        f.write('{"text": "g0"}\n')
    hf = {**_spec(tmp_path / "ds", [], "hf", text_field="body", id_field="k"), "load_from_disk": True, "name": "hf"}
    docs, drops = _run([hf, _spec(tmp_path, ["p.parquet"], "parquet"), _spec(tmp_path, ["a.jsonl", "b.jsonl.gz"])])
    assert drops == {}
    assert [d.text for d in docs] == ["alpha text", "beta text", "p0", "p1", "j0", "j1", "g0"]
    assert [d.id for d in docs[:2]] == ["hf/a", "hf/b"]
    assert docs[2].metadata["url"] == "https://x.org/0" and docs[3].metadata["row"] == 1
    assert docs[5].metadata["line"] == 3 and docs[5].metadata["url"] == "https://y.org"
    assert docs[6].metadata["path"] == str(tmp_path / "b.jsonl.gz")


def test_offline_hub_id_fails_at_once_with_local_instructions(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from automixer.config import config_from_dict
    from automixer.curate import run_curation

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    raw = {
        "work_dir": str(tmp_path / "w"),
        "sources": [{"name": "m", "domain": "math", "format": "hf", "path": "org/ds"}],
    }
    with pytest.raises(SourceError, match=r"source 'm'.*'org/ds'.*offline.*save_to_disk.*format: parquet"):
        run_curation(config_from_dict(raw))
    assert not (tmp_path / "w" / "curation").exists()
    raw["sources"][0]["path"] = str(tmp_path / "missing_ds")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        run_curation(config_from_dict(raw))


# --- bad input --------------------------------------------------------------------------------------


def _good(i: int) -> bytes:
    return json.dumps({"text": f"document number {i}"}).encode() + b"\n"


def test_bad_jsonl_lines_are_skipped_and_counted_with_file_and_line(tmp_path: Path) -> None:
    lines = [_good(0), b'{"text": "unterminated\n', _good(2), b'{"text": "bad \xff byte"}\n', b'{"body": "x"}\n']
    lines += [b"[1, 2]\n", b'{"text": 5}\n', _good(7)]
    (tmp_path / "bad.jsonl").write_bytes(b"".join(lines))
    (tmp_path / "empty.jsonl").write_bytes(b"")
    gzip.open(tmp_path / "empty.jsonl.gz", "wb").close()
    files = ["bad.jsonl", "empty.jsonl", "empty.jsonl.gz"]
    docs, drops = _run([_spec(tmp_path, files)], tmp_path / "err")
    assert [d.text for d in docs] == ["document number 0", "document number 2", "document number 7"]
    assert drops == {"bad_json": 2, "invalid_utf8": 1, "missing_text_field": 1, "bad_text_type": 1, "empty_file": 2}
    errs = {(e["reason"], Path(e["file"]).name, e["line"]) for e in read_reader_errors(tmp_path / "err")}
    assert {
        ("bad_json", "bad.jsonl", 2),
        ("invalid_utf8", "bad.jsonl", 4),
        ("missing_text_field", "bad.jsonl", 5),
    } < errs
    assert {("empty_file", "empty.jsonl", None), ("empty_file", "empty.jsonl.gz", None)} < errs


def test_truncated_gzip_keeps_lines_before_the_cut(tmp_path: Path) -> None:
    whole = gzip.compress(b"".join(_good(i) + b" " * 200 for i in range(2000)), compresslevel=1)
    (tmp_path / "cut.jsonl.gz").write_bytes(whole[: len(whole) // 2])
    (tmp_path / "next.jsonl").write_bytes(_good(0) * 3)
    problems: list[Problem] = []
    kept = [r.text for r in read_jsonl(tmp_path / "cut.jsonl.gz", "text", None, problems.append)]
    assert 0 < len(kept) < 2000 and kept == [f"document number {i}" for i in range(len(kept))]
    assert [(p.reason, p.line) for p in problems] == [("truncated_gzip", len(kept) + 1)]
    docs, drops = _run([_spec(tmp_path, ["cut.jsonl.gz", "next.jsonl"])])
    assert len(docs) == len(kept) + 3 and drops == {"truncated_gzip": 1}  # the run goes on to the next file


def test_50mb_document_is_skipped_without_holding_it(tmp_path: Path) -> None:
    big = tmp_path / "big.jsonl"
    with open(big, "wb") as f:
        f.write(_good(0) + b'{"text": "' + b"a" * (50 * 2**20) + b'"}\n' + _good(2))
    problems: list[Problem] = []
    tracemalloc.start()
    kept = [r.text for r in read_jsonl(big, "text", None, problems.append)]
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert kept == ["document number 0", "document number 2"]
    assert [(p.reason, p.line) for p in problems] == [("doc_too_large", 2)]
    assert peak < 16 * 2**20  # never the 50 MB line, at most the 10 MB limit plus a 1 MB drain buffer
    pq.write_table(pa.table({"text": ["small", "b" * (11 * 2**20)]}), tmp_path / "big.parquet")
    docs, drops = _run([_spec(tmp_path, ["big.parquet"], "parquet")])
    assert [d.text for d in docs] == ["small"] and drops == {"doc_too_large": 1}


def test_parquet_with_wrong_schema_is_rejected_per_file(tmp_path: Path) -> None:
    pq.write_table(pa.table({"body": ["no text column"]}), tmp_path / "a_wrong.parquet")
    pq.write_table(pa.table({"text": [1, 2]}), tmp_path / "b_int.parquet")
    (tmp_path / "c_garbage.parquet").write_bytes(b"not parquet at all")
    pq.write_table(pa.table({"text": ["fine"]}), tmp_path / "d_ok.parquet")
    files = ["a_wrong.parquet", "b_int.parquet", "c_garbage.parquet", "d_ok.parquet"]
    docs, drops = _run([_spec(tmp_path, files, "parquet")], tmp_path / "err")
    assert [d.text for d in docs] == ["fine"]
    assert drops == {"bad_schema": 2, "bad_parquet": 1}
    errs = read_reader_errors(tmp_path / "err")
    assert [(Path(e["file"]).name, e["reason"]) for e in errs] == [
        ("a_wrong.parquet", "bad_schema"),
        ("b_int.parquet", "bad_schema"),
        ("c_garbage.parquet", "bad_parquet"),
    ]
    assert "no text field 'text'; fields present: ['body']" in errs[0]["detail"]


def test_config_that_cannot_work_fails_before_work(tmp_path: Path) -> None:
    (tmp_path / "wrong.jsonl").write_text("".join(json.dumps({"content": f"doc {i}"}) + "\n" for i in range(5)))
    with pytest.raises(SourceError, match=r"source 'src'.*'missing_text_field'.*wrong\.jsonl:1.*no text field 'text'"):
        check_source(_spec(tmp_path, ["wrong.jsonl"]))
    (tmp_path / "junk.jsonl").write_text("not json\n" * 3)
    (tmp_path / "ok.jsonl").write_text(json.dumps({"text": "fine"}) + "\n")
    check_source(_spec(tmp_path, ["junk.jsonl", "ok.jsonl"]))  # one bad file does not make the source unusable
    with pytest.raises(SourceError, match=r"'bad_json'"):
        check_source(_spec(tmp_path, ["junk.jsonl"]))
    pq.write_table(pa.table({"body": ["x"]}), tmp_path / "w.parquet")
    with pytest.raises(SourceError, match=r"'bad_schema'.*Set `text_field`"):
        check_source(_spec(tmp_path, ["w.parquet"], "parquet"))


def test_parallel_tasks_read_each_document_once_and_count_problems_once(shared_data: Path, tmp_path: Path) -> None:
    from datatrove.executor import LocalPipelineExecutor
    from datatrove.pipeline.writers import JsonlWriter

    (tmp_path / "mixed.jsonl").write_bytes(b"".join([_good(i) for i in range(9)] + [b"{bad\n"]))
    specs = [
        _spec(tmp_path, ["mixed.jsonl"]),
        _spec(shared_data / "web", ["warcio_example.warc.gz", "warcio_example-iana.org-chunked.warc"], "warc"),
    ]
    steps = [SourcesReader(specs, str(tmp_path / "err")), JsonlWriter(str(tmp_path / "out"), compression=None)]
    LocalPipelineExecutor(steps, tasks=2, workers=2, logging_dir=str(tmp_path / "logs")).run()
    out = [json.loads(line) for p in sorted((tmp_path / "out").glob("*.jsonl")) for line in p.read_text().splitlines()]
    assert len(out) == 11 and len({d["id"] for d in out}) == 11
    assert {d["metadata"]["url"] for d in out if "url" in d["metadata"]} == {
        "http://example.com/",
        "http://www.iana.org/",
    }
    assert sorted(e["reason"] for e in read_reader_errors(tmp_path / "err")) == ["bad_json", "warc_revisit"]
