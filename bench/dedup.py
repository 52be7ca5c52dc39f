"""MinHash near-dedup benchmark: recall per planted Jaccard band, precision, and the cluster stage's peak RSS.

Real corpus (../shared/data: Common Crawl web docs, Python files, GSM8K train, LaTeX) with near-duplicates
planted by word substitutions at measured Jaccard similarity of datatrove's normalised word 5-gram shingles.
The pipeline is datatrove's signature (our scoped subclass, global scope) + buckets stages, then datatrove's
MinhashDedupCluster and our BoundedMinhashCluster on the same pair files (each in a fresh subprocess for its
peak RSS), then datatrove's MinhashDedupFilter on our `.remove` files.

    .venv/bin/python bench/dedup.py [--per-band 100] [--threshold 0.8] [--scale 40 400]
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
BANDS = [(0.5, 0.6), (0.6, 0.7), (0.7, 0.8), (0.8, 0.9), (0.9, 1.0), (1.0, 1.0)]
HALF_RANKS = 4

CLUSTER_CODE = """
import gc, json, re, sys, time
import scipy.sparse.csgraph
from loguru import logger
from datatrove.pipeline.dedup.minhash import MinhashConfig, MinhashDedupCluster
from automixer.curate.dedup import BoundedMinhashCluster
impl, src, dst, b, r = sys.argv[1:6]
logger.remove()
cls = BoundedMinhashCluster if impl == "ours" else MinhashDedupCluster
status = lambda key: int(re.search(key + r":\\s+(\\d+)", open("/proc/self/status").read()).group(1)) / 1024
gc.collect()
with open("/proc/self/clear_refs", "w") as f:  # Linux: reset the peak (VmHWM) to the current RSS
    f.write("5")
base = status("VmRSS")
t = time.perf_counter()
cls(src, dst, config=MinhashConfig(num_buckets=int(b), hashes_per_bucket=int(r))).run()
print(json.dumps({"base_mb": base, "peak_mb": status("VmHWM"), "s": time.perf_counter() - t}))
"""


def _jsonl(path: Path) -> list[dict]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def load_base(rng: random.Random) -> list[str]:
    """Real documents of at least 50 words, exact duplicates (after whitespace collapsing) dropped, shuffled."""
    texts = [r["text"] for p in sorted((DATA / "web").glob("dolma_*.jsonl*")) for r in _jsonl(p)]
    texts += [r["text"] for r in _jsonl(DATA / "code" / "code_corpus_python.jsonl.gz")]
    texts += [r["text"] for r in _jsonl(DATA / "math" / "openlogic_tex.jsonl.gz")]
    texts += [f"{r['question']}\n{r['answer']}" for r in _jsonl(DATA / "math" / "gsm8k_train.jsonl")]
    seen, out = set(), []
    for t in texts:
        key = " ".join(t.split())
        if len(key.split()) >= 50 and key not in seen:
            seen.add(key)
            out.append(t)
    rng.shuffle(out)
    return out


def jaccard(a: np.ndarray, b: np.ndarray) -> float:
    """Jaccard similarity of two shingle-hash sets."""
    a, b = np.unique(a), np.unique(b)
    return len(np.intersect1d(a, b, assume_unique=True)) / max(1, len(np.union1d(a, b)))


def plant(text: str, band: tuple[float, float], rng: random.Random, shingles) -> tuple[str, float] | None:
    """A copy of `text` with its true shingle Jaccard inside `band` (substituted words), or None."""
    words = text.split()
    if band[0] == 1.0:  # same shingle set, different bytes: whitespace and case change only
        copy = " ".join(words).upper() if rng.random() < 0.5 else "\n".join(words)
        return copy, jaccard(shingles(text), shingles(copy))
    base, target = shingles(text), rng.uniform(*band)
    order = rng.sample(range(len(words)), len(words))
    fresh = [f"zq{rng.getrandbits(40):010x}" for _ in words]

    def edited(k: int) -> str:
        w = list(words)
        for i in order[:k]:
            w[i] = fresh[i]
        return " ".join(w)

    lo, hi = 1, len(words)  # largest k with J(k) >= target
    while lo < hi:
        mid = (lo + hi + 1) // 2
        lo, hi = (mid, hi) if jaccard(base, shingles(edited(mid))) >= target else (lo, mid - 1)
    for k in (lo, lo + 1):
        copy = edited(k)
        j = jaccard(base, shingles(copy))
        if band[0] <= j < band[1]:
            return copy, j
    return None


def build_half(texts: list[str], per_band: int, rng: random.Random, shingles, tag: str) -> tuple[list[dict], list]:
    """Base docs plus planted near-duplicates; returns the docs and (band, source id, planted id, J) per pair."""
    docs = [{"id": f"{tag}b{i}", "text": t} for i, t in enumerate(texts)]
    eligible = [d for d in docs if 200 <= len(d["text"].split()) <= 4000]
    rng.shuffle(eligible)
    pairs, sources = [], iter(eligible)
    for band in BANDS:
        made = 0
        while made < per_band:
            src = next(sources)
            got = plant(src["text"], band, rng, shingles)
            if got:
                pid = f"{tag}p{len(pairs)}"
                docs.append({"id": pid, "text": got[0]})
                pairs.append((band, src["id"], pid, got[1]))
                made += 1
    rng.shuffle(docs)
    return docs, pairs


def write_ranks(docs: list[dict], folder: Path, first_rank: int) -> dict[tuple[int, int], str]:
    """Spread docs over HALF_RANKS JSONL files; returns (rank, index in rank) -> doc id."""
    where = {}
    folder.mkdir(parents=True, exist_ok=True)
    for r in range(HALF_RANKS):
        part = docs[r::HALF_RANKS]
        with open(folder / f"{first_rank + r:05d}.jsonl", "w") as f:
            f.writelines(json.dumps({"id": d["id"], "text": d["text"]}) + "\n" for d in part)
        where.update({(first_rank + r, i): d["id"] for i, d in enumerate(part)})
    return where


def run_quiet(fn, log: Path) -> float:
    """Run `fn` with its (and its worker processes') console output sent to `log`; returns seconds."""
    from loguru import logger

    t = time.perf_counter()
    sys.stdout.flush(), sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with open(log, "a") as f:
        os.dup2(f.fileno(), 1), os.dup2(f.fileno(), 2)
        try:
            fn()
        finally:
            os.dup2(saved[0], 1), os.dup2(saved[1], 2)
            os.close(saved[0]), os.close(saved[1])
    logger.remove()
    return time.perf_counter() - t


def signatures_and_buckets(work: Path, cfg, n_ranks: int) -> float:
    """Signature stage over all rank files (2 workers), then the buckets stage per scale; returns seconds."""
    from datatrove.executor import LocalPipelineExecutor
    from datatrove.pipeline.dedup.minhash import MinhashDedupBuckets
    from datatrove.pipeline.readers import JsonlReader

    from automixer.curate.dedup import ScopedMinhashSignature
    from automixer.curate.steps import SplitWordTokenizer

    sig = ScopedMinhashSignature(str(work / "sigs2x"), cfg, language=SplitWordTokenizer())
    ex = LocalPipelineExecutor(
        [JsonlReader(str(work / "corpus"), add_file_path=False), sig],
        tasks=n_ranks,
        workers=2,
        logging_dir=str(work / "logs"),
    )
    took = run_quiet(ex.run, work / "console.log")
    for b in range(cfg.num_buckets):  # 1x = the first half's rank files
        (work / "sigs1x" / f"bucket_{b:03d}").mkdir(parents=True)
        for r in range(HALF_RANKS):
            name = f"bucket_{b:03d}/{r:05d}.minhash.sig"
            shutil.copy(work / "sigs2x" / name, work / "sigs1x" / name)
    for scale in ("1x", "2x"):
        step = MinhashDedupBuckets(str(work / f"sigs{scale}"), str(work / f"dups{scale}"), config=cfg)
        took += run_quiet(
            lambda s=step: [s.run(None, b, cfg.num_buckets) for b in range(cfg.num_buckets)], work / "console.log"
        )
    return took


def cluster(impl: str, dups: Path, out: Path, cfg) -> dict:
    """Run one cluster implementation in a fresh interpreter; its peak RSS, baseline RSS and seconds."""
    args = [
        sys.executable,
        "-c",
        CLUSTER_CODE,
        impl,
        str(dups),
        str(out),
        str(cfg.num_buckets),
        str(cfg.hashes_per_bucket),
    ]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    res = subprocess.run(args, capture_output=True, text=True, env=env, check=True)
    return json.loads(res.stdout.strip().splitlines()[-1])


def removed(folder: Path) -> set[tuple[int, int]]:
    """(rank, doc index) of every document a `.remove` folder drops."""
    return {(int(p.stem), int(d)) for p in folder.glob("*.remove") for d in np.fromfile(p, dtype="<u4")}


def replicate(dups: Path, out: Path, times: int, ranks: int) -> int:
    """The pair files `times` over under fresh rank ids (a corpus `times` as large); returns the pair count."""
    out.mkdir()
    total = 0
    for p in sorted(dups.glob("*.dups")):
        rows = np.fromfile(p, dtype="<u4").reshape(-1, 4)
        reps = [rows + np.array([k * ranks, 0, k * ranks, 0], dtype=np.uint32) for k in range(times)]
        np.concatenate(reps).tofile(out / p.name)
        total += len(rows) * times
    return total


def nodes(dups: Path) -> int:
    """Documents that appear in at least one duplicate pair."""
    keys = [np.fromfile(p, dtype="<u8").reshape(-1, 2) for p in dups.glob("*.dups")]
    return len(np.unique(np.concatenate(keys))) if keys else 0


def clusters(dups: Path, out: Path, cfg) -> dict[tuple[int, int], int]:
    """(rank, doc index) -> cluster id, from our stage with `save_cluster_id` (same clusters as datatrove's)."""
    from automixer.curate.dedup import BoundedMinhashCluster

    run_quiet(BoundedMinhashCluster(str(dups), str(out), config=cfg, save_cluster_id=True).run, out.parent / "log")
    cid = {}
    for p in out.glob("*.clusters"):
        cid.update({(int(p.stem), int(d)): int(c) for d, c in np.fromfile(p, dtype="<u4").reshape(-1, 2)})
    return cid


def evaluate(rm: set, cid: dict, where: dict, pairs: list, texts: dict, shingles) -> dict:
    """Recall per band (pair in one cluster), precision (removed docs in a planted pair), unplanted removals."""
    pos = {doc_id: key for key, doc_id in where.items()}
    in_pair = {pos[d] for _, src, dup, _ in pairs for d in (src, dup)}
    recall = {}
    for band in BANDS:
        hits = [cid.get(pos[s], -1) == cid.get(pos[d], -2) for b, s, d, _ in pairs if b == band]
        recall[band] = sum(hits) / len(hits)
    members: dict[int, list] = {}
    for key, c in cid.items():
        members.setdefault(c, []).append(key)
    natural = 0
    for key in rm - in_pair:  # removed although not planted: is it a real near-duplicate of a cluster mate?
        own = shingles(texts[where[key]])
        natural += max(jaccard(own, shingles(texts[where[m]])) for m in members[cid[key]] if m != key) >= 0.5
    return {"recall": recall, "precision": len(rm & in_pair) / max(1, len(rm)), "removed": len(rm), "natural": natural}


def filter_check(work: Path, rm: set, ranks: int) -> int:
    """Run datatrove's MinhashDedupFilter on our `.remove` files; the number of documents it drops."""
    from datatrove.data import Document
    from datatrove.pipeline.dedup.minhash import MinhashDedupFilter

    dropped = 0
    for r in range(ranks):
        docs = [Document(d["text"], d["id"]) for d in _jsonl(work / "corpus" / f"{r:05d}.jsonl")]
        kept = list(MinhashDedupFilter(str(work / "rm_ours_2x")).run(iter(docs), r, ranks))
        dropped += len(docs) - len(kept)
    assert dropped == len(rm), (dropped, len(rm))
    return dropped


def p_detect(j: float, b: int, r: int) -> float:
    """LSH probability that a pair at Jaccard `j` shares at least one of `b` bands of `r` hashes."""
    return 1.0 - (1.0 - j**r) ** b


def print_quality(cfg, pairs: dict, res: dict, n_docs: dict, threshold: float) -> None:
    """The recall-per-band and precision table."""
    b, r = cfg.num_buckets, cfg.hashes_per_bucket
    print(f"\nMinHash near-dedup, threshold {threshold} -> minhash_bands = {b} bands x {r} hashes, word 5-grams")
    print(
        f"1x = {n_docs['1x']:,} docs ({len(pairs['1x'])} planted), 2x = {n_docs['2x']:,} ({len(pairs['2x'])} planted)"
    )
    print("recall: planted pair in one cluster (datatrove's and ours: identical clusters)\n")
    print("| true Jaccard band | pairs 1x / 2x | mean true J | LSH P(detect) at mean J | recall 1x | recall 2x |")
    print("|---|---|---|---|---|---|")
    for band in BANDS:
        js = [j for bd, _, _, j in pairs["2x"] if bd == band]
        n1 = sum(bd == band for bd, *_ in pairs["1x"])
        label = "= 1.0" if band[0] == 1.0 else f"[{band[0]:.1f}, {band[1]:.1f})"
        rec = " | ".join(f"{res[('ours', s)]['recall'][band]:.3f}" for s in ("1x", "2x"))
        print(f"| {label} | {n1} / {len(js)} | {np.mean(js):.3f} | {p_detect(float(np.mean(js)), b, r):.3f} | {rec} |")
    at8 = " | ".join(f"{np.mean([res[('ours', s)]['recall'][bd] for bd in BANDS[3:]]):.3f}" for s in ("1x", "2x"))
    print(f"| J >= 0.8 (mean of its bands) | | | | {at8} |")
    print("\n| removal (keep rule differs) | datatrove 1x | ours 1x | datatrove 2x | ours 2x |\n|---|---|---|---|---|")
    cells = [res[(i, s)] for s in ("1x", "2x") for i in ("datatrove", "ours")]
    print(
        "| precision: removed docs in a planted pair / removed | "
        + " | ".join(f"{c['precision']:.4f}" for c in cells)
        + " |"
    )
    print("| removed docs | " + " | ".join(str(c["removed"]) for c in cells) + " |")
    print(
        "| unplanted removals with true J >= 0.5 to a cluster mate / all unplanted | "
        + " | ".join(f"{c['natural']} / {c['removed'] - round(c['precision'] * c['removed'])}" for c in cells)
        + " |"
    )


def print_memory(mem: list) -> None:
    """The cluster-stage memory table; marginal: bytes per extra doc-with-a-dup since the row above."""
    print(
        "\nCluster stage in a fresh interpreter: peak RSS (VmHWM reset after imports), rise over the post-import RSS\n"
    )
    print(
        "| corpus | dup pairs | docs with a dup | datatrove peak MB (rise) | ours peak MB (rise) | rise ratio "
        "| marginal B/doc datatrove | marginal B/doc ours | datatrove s | ours s |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    prev = None
    for label, n_pairs, n_nodes, dt, us in mem:
        rise = (dt["peak_mb"] - dt["base_mb"], us["peak_mb"] - us["base_mb"])
        marg = [
            "" if prev is None or n_nodes - prev[0] < 10_000 else f"{(x - y) * 2**20 / max(1, n_nodes - prev[0]):.0f}"
            for x, y in zip(rise, prev[1] if prev else rise, strict=True)
        ]
        print(
            f"| {label} | {n_pairs:,} | {n_nodes:,} | {dt['peak_mb']:.0f} ({rise[0]:+.1f}) | {us['peak_mb']:.0f} "
            f"({rise[1]:+.1f}) | {rise[0] / max(rise[1], 0.1):.1f}x | {marg[0]} | {marg[1]} | {dt['s']:.2f} | {us['s']:.2f} |"
        )
        prev = (n_nodes, rise)


def main() -> None:
    """Build the planted corpus, run the pipeline at 1x and 2x (and scaled pair files), print the tables."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--per-band", type=int, default=100, help="planted pairs per band per half corpus")
    ap.add_argument("--threshold", type=float, default=0.8)
    ap.add_argument("--scale", type=int, nargs="*", default=[40, 400], help="replicate the 2x pair files")
    args = ap.parse_args()
    from datatrove.pipeline.dedup.minhash import MinhashConfig, MinhashDedupSignature
    from datatrove.utils.hashing import HashConfig

    from automixer.curate.pipeline import minhash_bands
    from automixer.curate.steps import SplitWordTokenizer

    t0, rng = time.perf_counter(), random.Random(0)
    b, r = minhash_bands(args.threshold)
    cfg = MinhashConfig(n_grams=5, num_buckets=b, hashes_per_bucket=r, hash_config=HashConfig(precision=64))
    with tempfile.TemporaryDirectory(prefix="bench_dedup_") as tmp:
        work = Path(tmp)
        shingles = MinhashDedupSignature(str(work / "unused"), cfg, language=SplitWordTokenizer()).get_shingles
        base = load_base(rng)
        half = len(base) // 2
        docs_a, pairs_a = build_half(base[:half], args.per_band, rng, shingles, "a")
        docs_b, pairs_b = build_half(base[half:], args.per_band, rng, shingles, "b")
        where = write_ranks(docs_a, work / "corpus", 0)
        where.update(write_ranks(docs_b, work / "corpus", HALF_RANKS))
        t_plant = time.perf_counter() - t0
        t_sig = signatures_and_buckets(work, cfg, 2 * HALF_RANKS)
        pairs = {"1x": pairs_a, "2x": pairs_a + pairs_b}
        n_docs = {"1x": len(docs_a), "2x": len(docs_a) + len(docs_b)}
        res, mem = {}, []
        texts = {d["id"]: d["text"] for d in docs_a + docs_b}
        for scale in ("1x", "2x"):
            dups = work / f"dups{scale}"
            runs = {impl: cluster(impl, dups, work / f"rm_{impl}_{scale}", cfg) for impl in ("datatrove", "ours")}
            cid = clusters(dups, work / f"cl_{scale}", cfg)
            for impl in runs:
                rm = removed(work / f"rm_{impl}_{scale}")
                res[(impl, scale)] = evaluate(rm, cid, where, pairs[scale], texts, shingles)
            n_pairs = sum(p.stat().st_size for p in dups.glob("*.dups")) // 16
            mem.append((f"{scale} ({n_docs[scale]:,} docs)", n_pairs, nodes(dups), runs["datatrove"], runs["ours"]))
        filter_check(work, removed(work / "rm_ours_2x"), 2 * HALF_RANKS)
        for times in args.scale:
            big = work / f"dups_x{times}"
            n_pairs = replicate(work / "dups2x", big, times, 2 * HALF_RANKS)
            runs = {impl: cluster(impl, big, work / f"rm_{impl}_x{times}", cfg) for impl in ("datatrove", "ours")}
            assert len(removed(work / f"rm_ours_x{times}")) == len(removed(work / f"rm_datatrove_x{times}"))
            label = f"2x pair files x{times} (~{n_docs['2x'] * times:,} docs)"
            mem.append((label, n_pairs, nodes(big), runs["datatrove"], runs["ours"]))
        print_quality(cfg, pairs, res, n_docs, args.threshold)
        print_memory(mem)
        total = time.perf_counter() - t0
        print(f"\nplanting {t_plant:.0f} s, signatures + buckets {t_sig:.0f} s, total {total:.0f} s (2 workers)")


if __name__ == "__main__":
    main()
