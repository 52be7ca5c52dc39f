"""Bounded MinHash clustering and dedup scope, against datatrove's own stages on real web documents."""

from __future__ import annotations

import gzip
import json
import random
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from datatrove.data import Document
from datatrove.pipeline.dedup.minhash import (
    MinhashBuildIndex,
    MinhashConfig,
    MinhashDedupBuckets,
    MinhashDedupCluster,
    MinhashDedupFilter,
    MinhashDedupSignature,
)
from datatrove.utils.hashing import HashConfig

from automixer.curate.dedup import BoundedMinhashCluster, ScopedMinhashSignature
from automixer.curate.pipeline import minhash_bands
from automixer.curate.steps import SplitWordTokenizer

DOLMA = "web/dolma_CC-MAIN-20190717121559-20190717143559-00140.jsonl.gz"


def _config() -> MinhashConfig:
    b, r = minhash_bands(0.8)
    return MinhashConfig(n_grams=5, num_buckets=b, hashes_per_bucket=r, hash_config=HashConfig(precision=64))


def _edit(text: str, rng: random.Random, n_edits: int) -> str:
    words = text.split()
    for i in rng.sample(range(len(words)), n_edits):
        words[i] = f"zqx{rng.randrange(10**9)}"
    return " ".join(words)


@pytest.fixture(scope="module")
def corpus(shared_data: Path) -> dict:
    """Three ranks of real web docs; rank 2 ends with 20 exact copies, 20 one-word edits and a chain of 3."""
    with gzip.open(shared_data / DOLMA, "rt") as f:
        texts = [t for t in (json.loads(line)["text"] for line in f) if len(t.split()) >= 300][:150]
    rng = random.Random(0)
    ranks = [
        [Document(t, f"r{i % 3}/{i}", metadata={"domain": "web"}) for i, t in enumerate(texts) if i % 3 == r]
        for r in range(3)
    ]
    planted = [texts[i] for i in range(20)] + [_edit(texts[i], rng, 1) for i in range(20, 40)]
    chain_mid = _edit(texts[40], rng, 1)
    planted += [chain_mid, _edit(chain_mid, rng, 1)]
    start = len(ranks[2])
    ranks[2] += [Document(t, f"p{i}", metadata={"domain": "web"}) for i, t in enumerate(planted)]
    return {"ranks": ranks, "start": start, "planted": {(2, start + i) for i in range(len(planted))}}


def _sigs(folder: Path, ranks: list[list[Document]], cfg: MinhashConfig, scope: str = "global") -> None:
    step = ScopedMinhashSignature(str(folder), cfg, language=SplitWordTokenizer(), scope=scope)
    for r, docs in enumerate(ranks):
        step.run(iter(docs), r, len(ranks))


def _buckets(sigs: Path, out: Path, cfg: MinhashConfig, index: Path | None = None) -> None:
    step = MinhashDedupBuckets(str(sigs), str(out), index_folder=str(index) if index else None, config=cfg)
    for b in range(cfg.num_buckets):
        step.run(None, b, cfg.num_buckets)


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())} if folder.exists() else {}


def _removed(folder: Path) -> set[tuple[int, int]]:
    return {(int(p.stem), int(d)) for p in folder.glob("*.remove") for d in np.fromfile(p, dtype="<u4")}


@pytest.fixture(scope="module")
def dups(corpus: dict, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Datatrove bucket (pair) files of the planted corpus."""
    tmp, cfg = tmp_path_factory.mktemp("mh"), _config()
    _sigs(tmp / "sigs", corpus["ranks"], cfg)
    _buckets(tmp / "sigs", tmp / "buckets", cfg)
    return tmp / "buckets"


def _cluster(cls: type, dups: Path, out: Path, **kw: object) -> dict[str, bytes]:
    cls(str(dups), str(out), config=_config(), save_cluster_id=True, save_cluster_size=True, **kw).run()
    return _files(out)


def test_same_clusters_as_datatrove_and_keeps_first(corpus: dict, dups: Path, tmp_path: Path) -> None:
    ours = _cluster(BoundedMinhashCluster, dups, tmp_path / "ours")
    theirs = _cluster(MinhashDedupCluster, dups, tmp_path / "theirs")
    same = [n for n in theirs if not n.endswith(".remove")]
    assert same and {n: ours.get(n) for n in same} == {n: theirs[n] for n in same}  # clusters + sizes, byte for byte
    assert sorted(ours) == sorted(theirs)
    count = {n: len(b) for n, b in ours.items() if n.endswith(".remove")}
    assert count == {n: len(b) for n, b in theirs.items() if n.endswith(".remove")}
    members: dict[int, list[tuple[int, int]]] = {}
    for p in (tmp_path / "theirs").glob("*.clusters"):
        for doc, cid in np.fromfile(p, dtype="<u4").reshape(-1, 2):
            members.setdefault(int(cid), []).append((int(p.stem), int(doc)))
    not_first = {node for nodes in members.values() for node in sorted(nodes)[1:]}
    assert _removed(tmp_path / "ours") == not_first >= corpus["planted"]  # the later copies go


def test_chunked_union_is_exact(dups: Path, tmp_path: Path) -> None:
    whole = _cluster(BoundedMinhashCluster, dups, tmp_path / "whole")
    for chunk in (1, 3):
        assert _cluster(BoundedMinhashCluster, dups, tmp_path / f"c{chunk}", chunk_pairs=chunk) == whole


def test_filter_reads_our_remove_files(corpus: dict, dups: Path, tmp_path: Path) -> None:
    BoundedMinhashCluster(str(dups), str(tmp_path / "rm"), config=_config()).run()
    kept = list(MinhashDedupFilter(str(tmp_path / "rm")).run(iter(corpus["ranks"][2]), 2, 3))
    removed = {d for f, d in _removed(tmp_path / "rm") if f == 2}
    assert [d.id for d in kept] == [d.id for i, d in enumerate(corpus["ranks"][2]) if i not in removed]
    assert len(removed) >= len(corpus["planted"]) and not any(d.id.startswith("p") for d in kept)


def test_index_matches_remove_the_same_docs_as_datatrove(corpus: dict, tmp_path: Path) -> None:
    cfg = _config()
    _sigs(tmp_path / "base_sigs", corpus["ranks"][:2], cfg)
    for b in range(cfg.num_buckets):
        MinhashBuildIndex(str(tmp_path / "base_sigs"), str(tmp_path / "index"), "base", config=cfg).run(
            None, b, cfg.num_buckets
        )
    _sigs(tmp_path / "new_sigs", corpus["ranks"][2:], cfg)
    _buckets(tmp_path / "new_sigs", tmp_path / "buckets", cfg, index=tmp_path / "index")
    BoundedMinhashCluster(str(tmp_path / "buckets"), str(tmp_path / "ours"), config=cfg).run()
    MinhashDedupCluster(str(tmp_path / "buckets"), str(tmp_path / "theirs"), config=cfg).run()
    ours = _removed(tmp_path / "ours")
    assert ours == _removed(tmp_path / "theirs")
    in_index = {(0, corpus["start"] + i) for i in range(40) if i % 3 != 2}  # copies of rank 0/1 docs
    assert in_index <= ours


def test_global_scope_signatures_are_datatrove_bytes(corpus: dict, tmp_path: Path) -> None:
    cfg, docs = _config(), corpus["ranks"][0][:30]
    _sigs(tmp_path / "ours", [docs], cfg)
    MinhashDedupSignature(str(tmp_path / "dt"), cfg, language=SplitWordTokenizer()).run(iter(docs), 0, 1)
    for b in range(cfg.num_buckets):
        name = f"bucket_{b:03d}/00000.minhash.sig"
        assert (tmp_path / "ours" / name).read_bytes() == (tmp_path / "dt" / name).read_bytes()


@pytest.mark.parametrize("scope", ["global", "domain"])
def test_scope_domain_only_clusters_within_a_domain(corpus: dict, tmp_path: Path, scope: str) -> None:
    texts = [d.text for d in corpus["ranks"][0][:20]]
    docs = [Document(t, f"w{i}", metadata={"domain": "web"}) for i, t in enumerate(texts)]
    docs += [Document(t, f"m{i}", metadata={"domain": "math"}) for i, t in enumerate(texts[:5])]  # cross-domain
    docs += [Document(t, f"v{i}", metadata={"domain": "web"}) for i, t in enumerate(texts[5:8])]  # same domain
    cfg = _config()
    _sigs(tmp_path / "sigs", [docs], cfg, scope=scope)
    _buckets(tmp_path / "sigs", tmp_path / "b", cfg)
    BoundedMinhashCluster(str(tmp_path / "b"), str(tmp_path / "rm"), config=cfg).run()
    removed = {docs[d].id for _, d in _removed(tmp_path / "rm")}
    expected = {"v0", "v1", "v2"} | ({f"m{i}" for i in range(5)} if scope == "global" else set())
    assert removed == expected


def _replicate(dups: Path, out: Path, times: int, files: int = 3) -> None:
    """The same pair files `times` over, each copy under new file ids (a corpus `times` as large)."""
    out.mkdir()
    for p in sorted(dups.glob("*.dups")):
        rows = np.fromfile(p, dtype="<u4").reshape(-1, 4)
        copies = []
        for k in range(times):
            c = rows.copy()
            c[:, [0, 2]] += np.uint32(k * files)
            copies.append(c)
        np.concatenate(copies).tofile(out / p.name)


def _peak_bytes(step: object) -> int:
    tracemalloc.start()
    try:
        step.run()  # type: ignore[attr-defined]
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_memory_per_duplicate_is_a_fraction_of_datatrove(dups: Path, tmp_path: Path) -> None:
    import scipy.sparse.csgraph  # noqa: F401  (imported before measuring: module memory is not the stage's)

    _replicate(dups, tmp_path / "big", 300)
    cfg = _config()
    ours = _peak_bytes(BoundedMinhashCluster(str(tmp_path / "big"), str(tmp_path / "o"), config=cfg, chunk_pairs=4096))
    theirs = _peak_bytes(MinhashDedupCluster(str(tmp_path / "big"), str(tmp_path / "t"), config=cfg))
    assert _files(tmp_path / "o").keys() == _files(tmp_path / "t").keys()
    assert ours * 4 < theirs, (ours, theirs)
