"""Web quality filtering speed: datatrove's Gopher quality + Gopher repetition + C4 + FineWeb blocks vs ours.

Both run in this one process, single-threaded, on the same documents: every document of
../shared/data/web/dolma_*.jsonl[.gz] plus the text trafilatura extracts from the first `--pages` HTML pages
of trafilatura_eval_pages.jsonl.gz (extraction is not timed). datatrove's four filters are applied in
sequence exactly as a pipeline would (first drop wins, C4 rewrites the text); ours is `FastWebQualityFilter`
with the same (default) options. Tokenizers are loaded before timing; caches start empty. docs/s/core is
documents per second of this process's CPU time. Parity: same keep/drop, same first reason and same text.

    .venv/bin/python bench/curation.py [--pages 100]
"""

from __future__ import annotations

import argparse
import gzip
import itertools
import json
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "web"
sys.path.insert(0, str(ROOT))


def load_documents(pages: int) -> list:
    """The dolma documents and the extracted text of the first `pages` trafilatura pages."""
    import trafilatura
    from datatrove.data import Document

    docs = []
    for path in sorted(DATA.glob("dolma_*.jsonl*")):
        with (gzip.open if path.suffix == ".gz" else open)(path, "rt", encoding="utf-8") as f:
            docs += [Document(text=json.loads(line)["text"], id=f"{path.name}/{i}") for i, line in enumerate(f)]
    with gzip.open(DATA / "trafilatura_eval_pages.jsonl.gz", "rt", encoding="utf-8") as f:
        for i, line in enumerate(itertools.islice(f, pages)):
            text = trafilatura.extract(json.loads(line)["html"])
            if text:
                docs.append(Document(text=text, id=f"trafilatura/{i}"))
    return docs


def run_chain(filters: list, docs: list) -> tuple[list[tuple], float, float]:
    """The chain's (reason, text) per document, with its CPU and wall seconds."""
    from automixer.curate.quality import apply_chain

    cpu, wall = time.process_time(), time.perf_counter()
    out = apply_chain(filters, docs)
    return out, time.process_time() - cpu, time.perf_counter() - wall


def main() -> None:
    """Time both implementations on the shared web corpus and print the comparison table."""
    from datatrove.pipeline.filters import (
        C4QualityFilter,
        FineWebQualityFilter,
        GopherQualityFilter,
        GopherRepetitionFilter,
    )
    from datatrove.utils.text import split_into_sentences, split_into_words

    from automixer.curate.quality import FastWebQualityFilter

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pages", type=int, default=100, help="trafilatura pages to extract and add")
    args = parser.parse_args()
    docs = load_documents(args.pages)
    warm = "Warm-up sentence one. Warm-up sentence two."
    split_into_words(warm), split_into_sentences(warm)  # load datatrove's spaCy tokenizer before timing
    datatrove = [GopherQualityFilter(), GopherRepetitionFilter(), C4QualityFilter(), FineWebQualityFilter()]
    ours = FastWebQualityFilter()
    ours._words(warm, "eng", {})  # load our spaCy tokenizer (its chunk cache sees only these 5 words)
    ref, ref_cpu, ref_wall = run_chain(datatrove, docs)
    new, new_cpu, new_wall = run_chain([ours], docs)
    _, warm_cpu, _ = run_chain([ours], docs)  # again: every chunk now cached, as deep into a long run
    n = len(docs)
    same = sum(a == b for a, b in zip(ref, new, strict=True)) / n
    same_decision = sum(a[0] == b[0] for a, b in zip(ref, new, strict=True)) / n
    kept = sum(r is None for r, _ in ref)
    print(f"web quality filtering, {n} docs ({kept} kept), single process, CPU time\n")
    print("| docs | datatrove docs/s/core | ours docs/s/core | speed-up | same decision+reason | same text too |")
    print("|---:|---:|---:|---:|---:|---:|")
    print(
        f"| {n} | {n / ref_cpu:.0f} | {n / new_cpu:.0f} | {ref_cpu / new_cpu:.1f}x | {same_decision:.2%} | {same:.2%} |"
    )
    print(f"\nwall: datatrove {ref_wall:.2f} s, ours {new_wall:.2f} s")
    print(f"ours on a second pass (chunk cache warm): {n / warm_cpu:.0f} docs/s/core, {ref_cpu / warm_cpu:.1f}x\n")
    print("| drop reason | datatrove | ours |\n|---|---:|---:|")
    counts_ref, counts_new = Counter(r for r, _ in ref), Counter(r for r, _ in new)
    for reason in sorted(counts_ref | counts_new, key=lambda r: (-counts_ref[r], str(r))):
        print(f"| {reason or '(kept)'} | {counts_ref[reason]} | {counts_new[reason]} |")


if __name__ == "__main__":
    main()
