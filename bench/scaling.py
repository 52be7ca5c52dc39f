"""Scaling cost model: proxy training and curation throughput measured here, extrapolated to a cluster.

Proxies: automixer's own model and trainer (`build_model` + `train_loop`: fused AdamW, fused output
projection + cross-entropy, fp32 on CPU) at ~1M, 10M and 60M parameters (vocabulary 8,192, 512-token
sequences), timed for a few seconds of steps after one warm-up step, with all cores and with 1 thread.
Turned into proxy-hours for a 60-proxy sweep at 20 tokens per parameter (Chinchilla-like). No GPU is
measured: the GPU column is an ESTIMATE from H100 dense bf16 peak (989 TFLOP/s) times an assumed MFU.

Curation: the full local pipeline (reader, min_chars, web/code/math filters, exact dedup, MinHash) in one
process on every document of ../shared/data web (dolma), code and math files, stage by stage, CPU time;
plus trafilatura HTML extraction of real web pages (trafilatura's evaluation set): what HTML input adds per page.

    .venv/bin/python bench/scaling.py [--seconds 12] [--pages 100] [--skip-curation] [--json out.json]
"""

from __future__ import annotations

import argparse
import gzip
import itertools
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
sys.path.insert(0, str(ROOT))

VOCAB, SEQ, TOKENS_PER_PARAM, PROXIES = 8192, 512, 20, 60
SIZES = {
    "1M": {"d_model": 64, "n_layers": 8, "n_heads": 4},
    "10M": {"d_model": 256, "n_layers": 10, "n_heads": 8},
    "60M": {"d_model": 512, "n_layers": 18, "n_heads": 8},
}
"""Proxy shapes (parameters counted with the tied embedding once)."""
H100_BF16 = 989e12
"""H100 SXM dense bf16 tensor-core peak FLOP/s (datasheet)."""
ASSUMED_MFU = {"1M": 0.05, "10M": 0.15, "60M": 0.30}
"""Assumed model-FLOP utilisation on one H100 (bf16, torch.compile, large batches): an assumption, not a measurement.
Small models are bound by kernel launches and memory traffic, hence the low figures for 1M and 10M."""


def flops_per_token(n_params: int, d_model: int, n_layers: int, seq_len: int) -> float:
    """Training FLOPs per token: 6N plus the attention score/value matmuls (12·L·d·T), as in bench/proxy.py."""
    return 6 * n_params + 12 * n_layers * d_model * seq_len


def proxy_tokens_per_s(shape: dict, threads: int, seconds: float) -> dict:
    """Training tokens per wall second of one proxy of `shape` on CPU with `threads` intra-op threads."""
    import numpy as np
    import torch

    from automixer.config import ProxyConfig
    from automixer.proxy.model import count_params
    from automixer.proxy.train import build_model, train_loop

    torch.set_num_threads(threads)
    batch = 8 if shape["d_model"] <= 128 else 2
    cfg = ProxyConfig(**shape, seq_len=SEQ, batch_size=batch, train_tokens=batch * SEQ, precision="fp32",
                      compile="off", device="cpu")  # fmt: skip
    train = [np.random.default_rng(0).integers(0, VOCAB, 400_000, dtype=np.int64)]
    w, cpu = np.array([1.0]), torch.device("cpu")
    model = build_model(cfg, VOCAB, 0)
    t0 = time.perf_counter()
    train_loop(model, w, train, cfg, cpu, 0, {})  # warm-up step: allocator, optimizer state
    first = time.perf_counter() - t0
    steps = max(2, min(40, int(seconds / max(first, 1e-3))))
    timed = cfg.model_copy(update={"train_tokens": steps * batch * SEQ})
    t0 = time.perf_counter()
    train_loop(model, w, train, timed, cpu, 1, {})
    wall = time.perf_counter() - t0
    n = count_params(model)
    return {"params": n, "threads": threads, "steps": steps, "tokens": steps * batch * SEQ,
            "tokens_per_s": steps * batch * SEQ / wall, "flops_per_token": flops_per_token(n, shape["d_model"],
            shape["n_layers"], SEQ)}  # fmt: skip


def proxy_table(seconds: float) -> list[dict]:
    """Measured CPU rates (all cores, 1 thread) and the 60-proxy cost at 20 tokens/parameter, per size."""
    cores = os.cpu_count() or 1
    rows = []
    for name, shape in SIZES.items():
        full = proxy_tokens_per_s(shape, cores, seconds)
        one = proxy_tokens_per_s(shape, 1, seconds)
        budget = TOKENS_PER_PARAM * full["params"]
        gpu_rate = ASSUMED_MFU[name] * H100_BF16 / full["flops_per_token"]
        rows.append({
            "size": name, "params": full["params"], "tokens_per_proxy": budget, "cores": cores,
            "cpu_tok_s_all": full["tokens_per_s"], "cpu_tok_s_1": one["tokens_per_s"],
            "gflops_1": one["tokens_per_s"] * full["flops_per_token"] / 1e9,
            "sweep_hours_here": PROXIES * budget / one["tokens_per_s"] / 3600 / cores,  # one proxy per core
            "sweep_core_hours": PROXIES * budget / one["tokens_per_s"] / 3600,
            "gpu_tok_s_est": gpu_rate, "sweep_gpu_hours_est": PROXIES * budget / gpu_rate / 3600,
        })  # fmt: skip
    return rows


def _jsonl(path: Path) -> list[dict]:
    with (gzip.open if path.suffix == ".gz" else open)(path, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def curation_inputs(work: Path) -> tuple[list[dict], dict[str, int]]:
    """Source entries for every web (dolma), code and math document of ../shared/data, and text bytes per domain."""
    (work / "in").mkdir(parents=True, exist_ok=True)
    gsm = [{"text": f"{r['question']}\n\n{r['answer']}"} for r in _jsonl(DATA / "math" / "gsm8k_train.jsonl")]
    tex = [{"text": r["text"]} for r in _jsonl(DATA / "math" / "openlogic_tex.jsonl.gz")]
    files = {
        "web": sorted((DATA / "web").glob("dolma_*.jsonl*")),
        "code": [DATA / "code" / "code_corpus_python.jsonl.gz"],
        "math": [work / "in" / "gsm8k.jsonl", work / "in" / "openlogic.jsonl"],
    }
    for path, rows in zip(files["math"], (gsm, tex), strict=True):
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    sources, sizes = [], {}
    for domain, paths in files.items():
        sizes[domain] = sum(len(r["text"].encode()) for p in paths for r in _jsonl(p))
        for i, p in enumerate(paths):
            sources.append({"name": f"{domain}{i}", "domain": domain, "path": str(p)})
    return sources, sizes


def curation_stages(work: Path) -> dict:
    """CPU and wall seconds of each curation stage run in this one process (workers=1), with doc counts."""
    from automixer.config import config_from_dict
    from automixer.curate.executors import quietly, stage_executor
    from automixer.curate.pipeline import build_stages, domain_counts, stage_stats
    from automixer.curate.sources import resolve_sources

    sources, sizes = curation_inputs(work)
    cfg = config_from_dict({"work_dir": str(work / "w"), "domains": ["code", "math", "web"], "sources": sources})
    specs = resolve_sources(cfg)
    run_dir = work / "run"
    stages, _ = build_stages(specs, cfg.curation, run_dir, 1)
    per_stage = {}
    for stage in stages:
        ex = stage_executor(cfg, stage, run_dir / "logs" / stage[0])
        cpu, wall = time.process_time(), time.perf_counter()
        quietly(ex.run, run_dir / "logs" / stage[0] / "console.log")
        per_stage[stage[0]] = {"cpu_s": time.process_time() - cpu, "wall_s": time.perf_counter() - wall}
    reader_cpu = read_only_cpu(specs)
    footprint = {
        d.name: sum(f.stat().st_size for f in d.rglob("*") if f.is_file()) for d in (run_dir / "data").iterdir()
    }
    final = stage_stats(run_dir, "final")
    kept = {k.split("/", 1)[1]: int(v) for k, v in final[-2].items() if k.startswith("docs_kept/")}
    return {"stages": per_stage, "docs_in": domain_counts(run_dir, "docs_in", "filter", 0), "bytes_in": sizes,
            "docs_kept": kept, "reader_cpu_s": reader_cpu, "footprint": footprint}  # fmt: skip


def read_only_cpu(specs: list[dict]) -> float:
    """CPU seconds to read and parse every input document once (the reader step alone, one task)."""
    from collections import deque

    from automixer.curate.steps import SourcesReader

    cpu = time.process_time()
    deque(SourcesReader(specs).run(None, rank=0, world_size=1), maxlen=0)
    return time.process_time() - cpu


def html_extraction(pages: int) -> dict:
    """Trafilatura (datatrove's block, as the WARC reader runs it, unsandboxed here) on real web pages: CPU rate."""
    from automixer.curate.extract import HtmlExtractor

    with gzip.open(DATA / "web" / "trafilatura_eval_pages.jsonl.gz", "rt", encoding="utf-8") as f:
        html = [json.loads(line)["html"] for line in itertools.islice(f, pages)]
    ex = HtmlExtractor(sandbox=False)
    ex.extract(html[0])  # imports and lazy init outside the clock
    cpu = time.process_time()
    ok = sum(1 for h in html if not ex.extract(h)[1])
    spent = time.process_time() - cpu
    mb = sum(len(h.encode()) for h in html) / 1e6
    return {"pages": len(html), "extracted": ok, "pages_per_s": len(html) / spent, "html_mb_per_s": mb / spent,
            "mean_page_kb": 1000 * mb / len(html)}  # fmt: skip


def print_proxy(rows: list[dict]) -> None:
    """The proxy cost table (measured CPU, extrapolated sweep hours, estimated GPU)."""
    cores = rows[0]["cores"]
    print(f"\nproxy training, CPU fp32 (measured, {cores} cores), 60 proxies x 20 tokens/parameter (extrapolated), "
          "one H100 (ESTIMATE: assumed MFU x 989 TFLOP/s bf16)\n")  # fmt: skip
    print(f"| size | params | tokens/proxy | CPU tok/s, {cores} threads | CPU tok/s, 1 thread | GFLOP/s, 1 thread | "
          f"60 proxies here, 1 per core (h) | 60 proxies, core-h | H100 tok/s (est.) | 60 proxies, H100-h (est.) |")  # fmt: skip
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['size']} | {r['params']:,} | {r['tokens_per_proxy'] / 1e6:,.0f}M | {r['cpu_tok_s_all']:,.0f} | "
              f"{r['cpu_tok_s_1']:,.0f} | {r['gflops_1']:.1f} | {r['sweep_hours_here']:,.0f} | "
              f"{r['sweep_core_hours']:,.0f} | {r['gpu_tok_s_est']:,.0f} (MFU {ASSUMED_MFU[r['size']]:.0%}) | "
              f"{r['sweep_gpu_hours_est']:,.2f} |")  # fmt: skip


def print_curation(cur: dict, html: dict | None) -> None:
    """Per-stage CPU and per-core throughput of the measured run, and HTML extraction."""
    docs, mb = sum(cur["docs_in"].values()), sum(cur["bytes_in"].values()) / 1e6
    cpu = sum(s["cpu_s"] for s in cur["stages"].values())
    print(f"\ncuration, one process, {docs:,} docs / {mb:.1f} MB of text in, "
          f"{sum(cur['docs_kept'].values()):,} kept (measured)\n")  # fmt: skip
    print("| stage | CPU s | share | MB/s/core |\n|---|---:|---:|---:|")
    for name, s in cur["stages"].items():
        print(f"| {name} | {s['cpu_s']:.2f} | {s['cpu_s'] / cpu:.0%} | {mb / max(s['cpu_s'], 1e-9):,.1f} |")
    print(f"| **all** | {cpu:.2f} | 100% | **{mb / cpu:.2f}** ({docs / cpu:,.0f} docs/s/core) |")
    print(f"\nreading + parsing alone (one pass): {mb / cur['reader_cpu_s']:.1f} MB/s/core")
    print("intermediate bytes per input document: " + ", ".join(
        f"{k} {v / docs:,.0f}" for k, v in sorted(cur["footprint"].items())))  # fmt: skip
    if html:
        print(f"HTML extraction (trafilatura): {html['pages_per_s']:.1f} pages/s/core, {html['html_mb_per_s']:.2f} MB "
              f"of HTML/s/core (mean page {html['mean_page_kb']:.0f} kB, {html['extracted']}/{html['pages']} with "
              "text)")  # fmt: skip


def print_extrapolation(cur: dict, html: dict | None) -> None:
    """Core-hours, documents and intermediate bytes at 1 TB and 100 TB of input text (web-sized documents)."""
    docs, mb = sum(cur["docs_in"].values()), sum(cur["bytes_in"].values()) / 1e6
    rate = mb / sum(s["cpu_s"] for s in cur["stages"].values())  # MB/s/core, whole pipeline
    doc_bytes = cur["bytes_in"]["web"] / max(cur["docs_in"].get("web", 1), 1)
    print(f"\nextrapolated (web documents of {doc_bytes / 1e3:.1f} kB mean; per-core rates above)\n")
    print(
        "| input text | docs | pipeline core-h | + HTML extraction core-h | MinHash sigs | exact sigs | "
        "text copies (filtered + final) | re-reading per extra task |\n|---|---:|---:|---:|---:|---:|---:|---:|"
    )
    for tb in (1, 100):
        n, total_mb = tb * 1e12 / doc_bytes, tb * 1e6
        html_h = n / html["pages_per_s"] / 3600 if html else 0.0  # one HTML page per document
        per = {k: v / docs * n for k, v in cur["footprint"].items()}  # signatures: a fixed size per document
        per.update({k: cur["footprint"].get(k, 0) / (mb * 1e6) * tb * 1e12 for k in ("filtered", "final")})  # text
        reread = total_mb / (mb / cur["reader_cpu_s"]) / 3600
        print(f"| {tb} TB | {n / 1e9:,.2f} B | {total_mb / rate / 3600:,.0f} | {html_h:,.0f} | "
              f"{per.get('minhash_sigs', 0) / 1e12:,.2f} TB | {per.get('exact_sigs', 0) / 1e12:,.3f} TB | "
              f"{(per.get('filtered', 0) + per.get('final', 0)) / 1e12:,.2f} TB | {reread:,.0f} core-h |")  # fmt: skip


def main() -> None:
    """Measure, print the tables, optionally save the figures as JSON."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=12.0, help="timed training seconds per size and thread count")
    ap.add_argument("--pages", type=int, default=100, help="HTML pages to extract")
    ap.add_argument("--skip-curation", action="store_true")
    ap.add_argument("--json", type=Path, help="also write every figure here")
    args = ap.parse_args()
    t0 = time.perf_counter()
    load = os.getloadavg()
    print(f"{os.cpu_count()} cores; load average at start {load[0]:.1f} (other jobs share this machine)")
    out: dict = {"load_at_start": load[0], "proxy": proxy_table(args.seconds)}
    print_proxy(out["proxy"])
    if not args.skip_curation:
        with tempfile.TemporaryDirectory() as tmp:
            out["curation"] = curation_stages(Path(tmp))
        out["html"] = html_extraction(args.pages)
        print_curation(out["curation"], out["html"])
        print_extrapolation(out["curation"], out["html"])
    print(f"\n(bench wall time {time.perf_counter() - t0:.0f} s)")
    if args.json:
        args.json.write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
