"""Decontamination against the real HumanEval, MBPP, GSM8K and MATH files, on real web and math text."""

from __future__ import annotations

import gzip
import json
import pickle
import random
import tracemalloc
from pathlib import Path

import pytest
from datatrove.data import Document

from automixer.curate.decontam import (
    DecontaminationFilter,
    EvalSet,
    NgramIndex,
    load_eval_set,
    normalized_words,
)

DOLMA = "web/dolma_CC-MAIN-20190717121559-20190717143559-00140.jsonl.gz"


@pytest.fixture(scope="module")
def evalsets(shared_data: Path) -> dict[str, EvalSet]:
    """HumanEval and the GSM8K test split, loaded with auto-detected formats."""
    ev = shared_data / "evalsets"
    return {"humaneval": load_eval_set(ev / "HumanEval.jsonl.gz"), "gsm8k": load_eval_set(ev / "gsm8k_test.jsonl")}


@pytest.fixture(scope="module")
def web(shared_data: Path) -> list[str]:
    """The real Common Crawl documents."""
    with gzip.open(shared_data / DOLMA, "rt") as f:
        return [json.loads(line)["text"] for line in f]


@pytest.mark.parametrize(
    ("name", "fmt", "count", "first_id"),
    [
        ("HumanEval.jsonl.gz", "humaneval", 164, "HumanEval/0"),
        ("sanitized-mbpp.json", "mbpp", 427, "2"),
        ("MbppPlus_evalplus_2023-11.jsonl", "mbpp_plus", 399, "Mbpp/2"),
        ("gsm8k_test.jsonl", "gsm8k", 1319, "0"),
        ("meh_math_oai_test.jsonl", "math", 500, "test/precalculus/807.json"),
    ],
)
def test_loaders_detect_each_format(shared_data: Path, name: str, fmt: str, count: int, first_id: str) -> None:
    es = load_eval_set(shared_data / "evalsets" / name)
    assert (es.name, len(es.items), es.items[0][0]) == (fmt, count, first_id)
    assert all(len(text.split()) >= 5 for _, text in es.items)
    assert load_eval_set(shared_data / "evalsets" / name, format=fmt, name="x").name == "x"


def test_loader_errors(shared_data: Path, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="local files"):
        load_eval_set(tmp_path / "missing.jsonl")
    with pytest.raises(ValueError, match="unknown eval-set record"):
        load_eval_set(shared_data / "math" / "openlogic_tex.jsonl.gz")
    with pytest.raises(ValueError, match="not one of"):
        load_eval_set(shared_data / "evalsets" / "gsm8k_test.jsonl", format="squad")


def _run(filt: DecontaminationFilter, docs: list[Document], rank: int = 0, world: int = 1) -> list[str]:
    return [d.id for d in filt.run(iter(docs), rank, world)]


def test_planted_items_are_removed_and_reported(evalsets: dict, web: list[str], tmp_path: Path) -> None:
    rng = random.Random(0)
    he, gsm = evalsets["humaneval"].items, evalsets["gsm8k"].items
    picks = [("humaneval", *he[i]) for i in rng.sample(range(len(he)), 8)]
    picks += [("gsm8k", *gsm[i]) for i in rng.sample(range(len(gsm)), 8)]
    docs, planted = [Document(t, f"web/{i}", metadata={"source": "dolma"}) for i, t in enumerate(web[:200])], {}
    for k, (es, item_id, text) in enumerate(picks):
        host = web[300 + k]
        cut = len(host) // 2
        body = text if k % 2 else f"{host[:cut]}\n{text}\n{host[cut:]}"  # verbatim, or inside a real web page
        docs.append(Document(body, f"planted/{k}", metadata={"source": "plant"}))
        planted[f"planted/{k}"] = (es, item_id, " ".join(normalized_words(text)))
    filt = DecontaminationFilter(list(evalsets.values()), report_path=tmp_path / "report.jsonl")
    kept = _run(filt, docs)
    assert kept == [f"web/{i}" for i in range(200)]
    rows = [json.loads(line) for line in (tmp_path / "report.jsonl").read_text().splitlines()]
    assert {r["id"]: (r["eval_set"], r["item_id"]) for r in rows} == {k: v[:2] for k, v in planted.items()}
    for r in rows:
        assert len(r["ngram"].split()) == 13 and r["ngram"] in planted[r["id"]][2] and r["source"] == "plant"
    assert filt.stats["dropped_contaminated_gsm8k"].total == 8


def test_clean_real_docs_are_kept(evalsets: dict, web: list[str], shared_data: Path) -> None:
    with open(shared_data / "math" / "gsm8k_train.jsonl") as f:
        train = [json.loads(line) for line in f]
    docs = [Document(t, f"w{i}") for i, t in enumerate(web)]
    docs += [Document(f"{r['question']}\n{r['answer']}", f"g{i}") for i, r in enumerate(train)]
    kept = set(_run(DecontaminationFilter(list(evalsets.values())), docs))
    assert sum(k.startswith("w") for k in kept) >= 0.99 * len(web)
    assert sum(k.startswith("g") for k in kept) >= 0.99 * len(train)


def test_n_is_configurable(evalsets: dict, web: list[str]) -> None:
    words = evalsets["gsm8k"].items[5][1].split()
    doc = Document(f"{web[0][:2000]} {' '.join(words[:10])} {web[1][:2000]}", "d")  # a 10-word overlap
    assert _run(DecontaminationFilter([evalsets["gsm8k"]], n=13), [doc]) == ["d"]
    assert _run(DecontaminationFilter([evalsets["gsm8k"]], n=8), [doc]) == []


def test_huge_document_is_scanned_in_windows(evalsets: dict, web: list[str]) -> None:
    index = NgramIndex([evalsets["humaneval"]])
    filler = "\n".join(web)
    item_id, item = evalsets["humaneval"].items[42]
    text = filler * (50_000_000 // len(filler)) + item + filler[:1000]  # 50 MB, the item at the very end
    tracemalloc.start()
    try:
        found = index.first_match(text)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert found is not None and index.refs[found[0]] == ("humaneval", item_id)
    assert peak < 40_000_000  # one window of words, not the 50 MB document's
    small = filler[:5000] + item
    for window in (997, 4096):  # the item straddles window boundaries
        hit = index.first_match(small, window=window)
        assert hit is not None and index.refs[hit[0]][1] == item_id


def test_report_per_rank_and_atomic(evalsets: dict, web: list[str], tmp_path: Path) -> None:
    item = evalsets["gsm8k"].items[0][1]
    docs = [Document(item, "bad"), Document(web[0], "ok"), Document(web[1], "ok2")]
    filt = pickle.loads(pickle.dumps(DecontaminationFilter([evalsets["gsm8k"]], report_path=tmp_path / "r.jsonl")))
    assert _run(filt, docs, rank=1, world=2) == ["ok", "ok2"]
    assert json.loads((tmp_path / "r.00001.jsonl").read_text())["item_id"] == "0"
    gen = filt.run(iter(docs), 0, 2)
    assert next(gen).id == "ok"
    gen.close()  # a task stopped midway leaves no report behind
    assert not (tmp_path / "r.00000.jsonl").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    filt.report_path = str(tmp_path / "${rank}.jsonl")
    _run(filt, docs, rank=3, world=4)
    assert (tmp_path / "00003.jsonl").is_file()
