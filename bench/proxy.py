"""Proxy training throughput: our trainer vs a plain PyTorch loop on the same model, data and threads.

Data: real documents of ../shared/data (Python files, GSM8K + LaTeX math, Common Crawl web), written as
shards, a BPE tokenizer trained on them and tokenized with `prepare_data`, as the pipeline does (cached
under --work). Model: the demo's proxy (d_model 64, 2 layers, 4 heads, seq_len 128, batch 16, vocab 1024).

`ours` is our trainer, `build_model` + `train_loop` (what `train_proxy` times as `train_s`): mixture-
proportional sampling inside the timed loop, LR schedule, gradient clipping, NaN check, fused AdamW, the
fused output-projection + cross-entropy. `plain` is the textbook loop on the same freshly built model:
`for x, y in batches: loss = CE(model(x), y); loss.backward(); opt.step(); opt.zero_grad()` with a default
`torch.optim.AdamW`, over the very batches our trainer draws (same seed), sampled before its clock starts.
Both clocks (wall and this process's CPU time) run from model construction to the end of the last step.
Runs alternate ours/plain --repeats times; the table shows medians. FLOPs per token are 6·N + 12·L·d·T
(PaLM appendix B: N parameters with the tied embedding once, the attention score and value matmuls
forward and backward); the ceiling is the best torch.matmul FLOP/s over square sizes, same dtype and
threads. On CUDA the table also shows MFU against the GPU's dense bf16 peak.

    .venv/bin/python bench/proxy.py [--threads 1] [--tokens 200000] [--repeats 3] [--bf16] [--compile]
    .venv/bin/python bench/proxy.py --sweep 60 --workers 2   # also time a default 60-proxy demo sweep
"""

from __future__ import annotations

import argparse
import gzip
import json
import math
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from automixer.config import PipelineConfig, ProxyConfig, TokenizerConfig  # noqa: E402
from automixer.proxy import train as T  # noqa: E402
from automixer.proxy.data import load_arrays, load_meta, natural_distribution, prepare_data  # noqa: E402

DOMAINS = ["code", "math", "web"]
DEMO_PROXY = {"d_model": 64, "n_layers": 2, "n_heads": 4, "seq_len": 128, "batch_size": 16, "val_max_bytes": 50_000}
PEAK_BF16 = {"H100": 989e12, "H200": 989e12, "A100": 312e12, "L4": 121e12, "A10": 125e12}
"""Dense bf16 tensor-core peak FLOP/s by GPU name fragment (vendor datasheets, SXM parts)."""


def _jsonl(path: Path, limit: int) -> list[dict]:
    with (gzip.open if path.suffix == ".gz" else open)(path, "rt", encoding="utf-8") as f:
        return [json.loads(line) for _, line in zip(range(limit), f, strict=False)]


def real_docs(limit: int) -> dict[str, list[str]]:
    """Up to `limit` real documents per domain from ../shared/data."""
    web = sorted((DATA / "web").glob("dolma_*.jsonl*"))
    math_docs = [f"{r['question']}\n{r['answer']}" for r in _jsonl(DATA / "math" / "gsm8k_train.jsonl", limit // 2)]
    math_docs += [r["text"] for r in _jsonl(DATA / "math" / "openlogic_tex.jsonl.gz", limit - len(math_docs))]
    return {
        "code": [r["text"] for r in _jsonl(DATA / "code" / "code_corpus_python.jsonl.gz", limit)],
        "math": math_docs,
        "web": [r["text"] for p in web for r in _jsonl(p, limit)][:limit],
    }


def prepared_data(work: Path, docs_per_domain: int) -> PipelineConfig:
    """Shards, tokenizer and token arrays of the real corpus under `work` (reused when present)."""
    from automixer.shards import write_shards
    from automixer.tokenizer import train_tokenizer

    cfg = PipelineConfig(
        work_dir=str(work),
        domains=DOMAINS,
        tokenizer=TokenizerConfig(vocab_size=1024, sample_bytes=4_000_000),
        proxy=ProxyConfig(**DEMO_PROXY),
    )
    if not (cfg.path("data") / "meta.json").is_file():
        for dom, texts in real_docs(docs_per_domain).items():
            rows = [{"id": f"{dom}-{i}", "text": t} for i, t in enumerate(texts) if t.strip()]
            write_shards(rows, cfg.path("shards", dom), dom, "part", shard_docs=5000)
        tok = train_tokenizer(cfg.tokenizer, cfg.path("shards"), DOMAINS, cfg.path("tokenizer.json"), 0.05)
        prepare_data(cfg, tok, cfg.path("data"))
    return cfg


def planned_batches(cfg: ProxyConfig, data_dir: Path, mix: dict[str, float], seed: int) -> list[tuple]:
    """The exact (x, y) batches `train_proxy` draws for this mixture and seed."""
    train = list(load_arrays(data_dir, list(mix), "train").values())
    w = np.array(list(mix.values()))
    total = math.ceil(cfg.train_tokens / cfg.seq_len)
    rng, assigned, out = np.random.default_rng(seed), np.zeros(len(w), dtype=np.int64), []
    for step in range(math.ceil(total / cfg.batch_size)):
        counts = T.allocate(w, assigned, min(total, (step + 1) * cfg.batch_size))
        assigned += counts
        out.append(T.sample_batch(train, counts, rng, cfg.seq_len))
    return out


def _clocks() -> tuple[float, float]:
    return time.perf_counter(), time.process_time()


def _elapsed(t0: tuple[float, float], device: torch.device) -> tuple[float, float]:
    _sync(device)
    return time.perf_counter() - t0[0], time.process_time() - t0[1]


def plain_loop(cfg: ProxyConfig, vocab: int, batches: list[tuple], seed: int, device: torch.device) -> tuple:
    """Wall and CPU seconds of the textbook training loop (model construction included) over the batches."""
    batches = [(x.to(device), y.to(device)) for x, y in batches]
    _sync(device)
    t0 = _clocks()
    model = T.build_model(cfg, vocab, seed).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr)
    for x, y in batches:
        loss = F.cross_entropy(model(x).flatten(0, 1), y.flatten())
        loss.backward()
        opt.step()
        opt.zero_grad()
    return _elapsed(t0, device)


def ours(cfg: ProxyConfig, data_dir: Path, mix: dict[str, float], seed: int, device: torch.device) -> tuple:
    """Wall and CPU seconds of our trainer (model construction included, as `train_s`), and its info."""
    train = list(load_arrays(data_dir, list(mix), "train").values())
    t0 = _clocks()
    model = T.build_model(cfg, load_meta(data_dir)["vocab_size"], seed).to(device)
    info = T.train_loop(model, np.array(list(mix.values())), train, cfg, device, seed, {})
    return (*_elapsed(t0, device), info)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def matmul_ceiling(device: torch.device, dtype: torch.dtype) -> tuple[float, int]:
    """Best torch.matmul FLOP/s over square sizes (and the size that reached it) on this device and threads."""
    best = (0.0, 0)
    for n in (256, 512, 1024, 2048) + ((4096, 8192) if device.type == "cuda" else ()):
        a, b = torch.randn(n, n, device=device, dtype=dtype), torch.randn(n, n, device=device, dtype=dtype)
        torch.matmul(a, b)
        reps = max(3, int(2e10 / (2 * n**3)))
        times = []
        for _ in range(3):
            _sync(device)
            t0 = time.perf_counter()
            for _ in range(reps):
                torch.matmul(a, b)
            _sync(device)
            times.append((time.perf_counter() - t0) / reps)
        best = max(best, (2 * n**3 / min(times), n))
    return best


def flops_per_token(cfg: ProxyConfig, n_params: int) -> float:
    """Training FLOPs per token: 6N plus the attention matmuls (12·L·d·T)."""
    return 6 * n_params + 12 * cfg.n_layers * cfg.d_model * cfg.seq_len


def compare(cfg: ProxyConfig, data_dir: Path, mix: dict, repeats: int, device: torch.device) -> dict:
    """Alternate ours and the plain loop; tokens per wall second and per CPU second of each repeat."""
    meta = load_meta(data_dir)
    batches = planned_batches(cfg, data_dir, mix, seed=0)
    tokens = sum(x.numel() for x, _ in batches)
    ours(cfg.model_copy(update={"train_tokens": 4 * cfg.seq_len * cfg.batch_size}), data_dir, mix, 0, device)
    plain_loop(cfg, meta["vocab_size"], batches[:4], 0, device)  # warm-up of both
    rows: dict[str, list[tuple[float, float]]] = {"plain": [], "ours": []}
    for _ in range(repeats):
        wall, cpu, info = ours(cfg, data_dir, mix, 0, device)
        assert int(info["seqs"].sum()) * cfg.seq_len == tokens, info
        rows["ours"].append((tokens / wall, tokens / cpu))
        wall, cpu = plain_loop(cfg, meta["vocab_size"], batches, 0, device)
        rows["plain"].append((tokens / wall, tokens / cpu))
    n_params = sum(p.numel() for p in T.build_model(cfg, meta["vocab_size"], 0).parameters())
    precision = "bf16" if T.autocast_dtype(cfg.precision, device) else "fp32"
    return {"rows": rows, "tokens": tokens, "n_params": n_params, "precision": precision}


def print_table(cfg: ProxyConfig, runs: dict[str, dict], ceiling: tuple[float, int], device: torch.device) -> None:
    """One markdown table: tokens/s (wall and CPU), ratios to the plain loop, FLOP/s vs the ceiling (and MFU)."""
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    peak = next((v for k, v in PEAK_BF16.items() if k in name), None) if device.type == "cuda" else None
    base = [statistics.median(r[k] for r in runs["fp32"]["rows"]["plain"]) for k in (0, 1)]
    print(
        "| trainer | tokens/s wall | vs plain | paired ratios | tokens/CPU-s | vs plain | GFLOP/s | of matmul ceiling |"
        + (" MFU |" if peak else "")
    )
    print("|---" * (8 + bool(peak)) + "|")
    for label, run in runs.items():
        fpt = flops_per_token(cfg, run["n_params"])
        for who in ("plain", "ours") if label == "fp32" else ("ours",):
            wall, cpu = (statistics.median(r[k] for r in run["rows"][who]) for k in (0, 1))
            paired = [o[0] / p[0] for o, p in zip(run["rows"][who], run["rows"]["plain"], strict=True)]
            cells = [
                f"{who}, {run['precision'] if who == 'ours' else 'fp32'}"
                + (" compiled" if label == "compiled" else ""),
                f"{wall:,.0f}",
                f"**{wall / base[0]:.2f}×**",
                " ".join(f"{r:.2f}" for r in paired),
                f"{cpu:,.0f}",
                f"**{cpu / base[1]:.2f}×**",
                f"{wall * fpt / 1e9:.2f}",
                f"{wall * fpt / ceiling[0]:.1%}",
            ]
            if peak:
                cells.append(f"{wall * fpt / peak:.2%}")
            print("| " + " | ".join(cells) + " |")
    run = runs["fp32"]
    print(
        f"\n{name}, {torch.get_num_threads()} thread(s); N = {run['n_params']:,} parameters, {run['tokens']:,} "
        f"tokens per run, {flops_per_token(cfg, run['n_params']):,.0f} FLOPs/token (6N + 12LdT); "
        f"matmul ceiling {ceiling[0] / 1e9:.1f} GFLOP/s (n = {ceiling[1]}); medians of alternating repeats"
    )


def time_sweep(cfg: PipelineConfig, n: int, workers: int) -> None:
    """Time a demo-preset sweep of `n` proxies (training and evaluation; tokenization excluded)."""
    import resource

    from automixer.sweep.design import sample_mixtures
    from automixer.sweep.runner import run_sweep, sweep_summary

    design = sample_mixtures(natural_distribution(load_meta(cfg.path("data"))), n, 1.0, 0.0, seed=0)
    proxy = cfg.proxy.model_copy(update={"threads": 1})
    cpu0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    with tempfile.TemporaryDirectory() as runs:
        t0 = time.perf_counter()
        results = run_sweep(design, proxy, cfg.path("data"), Path(runs), seed=0, workers=workers)
        summary = sweep_summary(results, t0)
    cpu1 = resource.getrusage(resource.RUSAGE_CHILDREN)  # the workers, joined by run_sweep
    cpu = cpu1.ru_utime + cpu1.ru_stime - cpu0.ru_utime - cpu0.ru_stime
    print(
        f"\nsweep: {n} proxies x {proxy.train_tokens:,} tokens, {workers} workers: {summary['elapsed_s']:.0f} s wall, "
        f"{cpu:.0f} CPU-s in the workers ({cpu / workers:.0f} s on {workers} cores of our own); "
        f"{summary['ok']} ok, {summary['failed']} failed; goal for 60: <= 600 s on 2 cores"
    )


def main() -> None:
    """Parse arguments, run the comparison and print the table."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--tokens", type=int, default=200_000, help="token budget of each run")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--docs", type=int, default=3000, help="real documents per domain")
    ap.add_argument("--bf16", action="store_true", help="add a row for our trainer under bf16 autocast")
    ap.add_argument("--compile", action="store_true", help="add a row for our trainer with torch.compile")
    ap.add_argument("--sweep", type=int, default=0, help="also time a sweep of this many demo proxies")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "automixer-bench-proxy")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    cfg = prepared_data(args.work, args.docs)
    device = T.resolve_device("auto")
    proxy = cfg.proxy.model_copy(update={"train_tokens": args.tokens, "threads": args.threads})
    mix = natural_distribution(load_meta(cfg.path("data")))
    runs = {
        "fp32": compare(proxy.model_copy(update={"precision": "fp32"}), cfg.path("data"), mix, args.repeats, device)
    }
    if args.bf16 or device.type == "cuda":
        runs["bf16"] = compare(
            proxy.model_copy(update={"precision": "bf16"}), cfg.path("data"), mix, args.repeats, device
        )
    if args.compile:
        runs["compiled"] = compare(
            proxy.model_copy(update={"compile": "on"}), cfg.path("data"), mix, args.repeats, device
        )
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    print_table(proxy, runs, matmul_ceiling(device, dtype), device)
    if args.sweep:
        time_sweep(cfg, args.sweep, args.workers)


if __name__ == "__main__":
    main()
