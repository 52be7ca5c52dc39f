"""Train one proxy LM on a mixture for a fixed token budget; evaluate bits-per-byte on every domain.

A failure is a result, not an exception: a non-finite loss ends the run as `diverged`, a failed allocation
(torch.OutOfMemoryError, MemoryError, the CPU allocator's error) as `oom`; both write a failed result.json
with the reason and the exact tokens trained before the failure. Other exceptions propagate (the sweep
runner records them as `error`). On CPU a run is bitwise deterministic for a seed and thread count.
"""

from __future__ import annotations

import contextlib
import gc
import json
import math
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from automixer.config import ProxyConfig
from automixer.io import write_json_atomic
from automixer.proxy.data import load_arrays, load_meta
from automixer.proxy.loss import linear_cross_entropy
from automixer.proxy.model import ProxyLM, count_params

IGNORE = -100
EVAL_BATCH = 16
WARMUP_FRACTION = 0.05
MIN_LR_FRACTION = 0.1
NAN_CHECK_EVERY = 25
"""On CUDA the loss is checked for NaN/inf every this many steps (a check waits for the GPU); on CPU every step."""
COMPILE_MIN_STEPS = 2000
"""`compile: auto` compiles CUDA runs of at least this many optimiser steps (shorter ones do not repay it)."""
_OOM_TEXT = ("can't allocate memory", "not enough memory", "out of memory")


class Diverged(RuntimeError):
    """The training loss became NaN or infinite."""


def is_oom(exc: BaseException) -> bool:
    """Whether an exception is an out-of-memory failure (CUDA, the CPU allocator or Python)."""
    if isinstance(exc, MemoryError | torch.OutOfMemoryError):
        return True
    return isinstance(exc, RuntimeError) and any(text in str(exc) for text in _OOM_TEXT)


def resolve_device(name: str) -> torch.device:
    """`auto` -> CUDA when available else CPU; `cuda` without a GPU is a clear error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("proxy.device is 'cuda' but no CUDA device is available; use 'auto' or 'cpu'")
    if name not in ("cpu", "cuda"):
        raise ValueError(f"proxy.device: {name!r} is not one of auto, cpu, cuda")
    return torch.device(name)


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype of a run under `proxy.precision` (None: plain fp32)."""
    if precision == "bf16":
        return torch.bfloat16
    if precision == "auto" and device.type == "cuda" and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return None


def use_compile(setting: str, device: torch.device, steps: int) -> bool:
    """Whether a run compiles its model under `proxy.compile`."""
    if setting == "auto":
        return device.type == "cuda" and steps >= COMPILE_MIN_STEPS
    return setting == "on"


def _autocast(device: torch.device, dtype: torch.dtype | None) -> contextlib.AbstractContextManager:
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def normalize_weights(weights: dict[str, float], domains: list[str]) -> dict[str, float]:
    """Weights over every data domain, summing to 1 (missing domains get 0); invalid weights raise."""
    unknown = sorted(set(weights) - set(domains))
    if unknown:
        raise ValueError(f"mixture names unknown domain(s) {unknown}; the prepared data has {domains}")
    bad = {d: w for d, w in weights.items() if not (math.isfinite(w) and w >= 0)}
    if bad:
        raise ValueError(f"mixture weights must be finite and >= 0, got {bad}")
    total = sum(weights.values())
    if total <= 0:
        raise ValueError(f"mixture weights sum to {total}; at least one must be positive")
    return {d: weights.get(d, 0.0) / total for d in domains}


def allocate(weights: np.ndarray, assigned: np.ndarray, total_after: int) -> np.ndarray:
    """Sequences per domain for the next step so cumulative counts track weights (largest remainder)."""
    n = int(total_after - assigned.sum())  # sequences in this step
    quota = weights * total_after - assigned  # sums to n; below 0 where a domain is ahead
    counts = np.maximum(np.floor(quota), 0).astype(np.int64)
    while counts.sum() < n:  # hand the rest to the largest remainders (zero-weight domains never)
        frac = np.where(weights > 0, quota - counts, -np.inf)
        counts[int(np.argmax(frac))] += 1
    while counts.sum() > n:  # possible only after clipping: take back from the smallest remainders
        frac = np.where(counts > 0, quota - counts, np.inf)
        counts[int(np.argmin(frac))] -= 1
    return counts


def sample_batch(
    arrays: list[np.ndarray], counts: np.ndarray, rng: np.random.Generator, seq_len: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Windows of seq_len + 1 tokens at random offsets: inputs and next-token targets, each (B, T)."""
    rows = []
    span = np.arange(seq_len + 1)
    for arr, n in zip(arrays, counts, strict=True):
        if n:
            starts = rng.integers(0, arr.size - seq_len, size=int(n))
            rows.append(np.asarray(arr[starts[:, None] + span], dtype=np.int64))  # (n, T + 1)
    batch = torch.from_numpy(np.concatenate(rows))
    return batch[:, :-1], batch[:, 1:]


def lr_at(step: int, steps: int, peak: float) -> float:
    """Linear warmup, then cosine decay to MIN_LR_FRACTION * peak."""
    warmup = max(1, round(WARMUP_FRACTION * steps))
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = (step - warmup) / max(1, steps - warmup)
    return peak * (MIN_LR_FRACTION + (1 - MIN_LR_FRACTION) * 0.5 * (1 + math.cos(math.pi * progress)))


@torch.no_grad()
def evaluate(
    model: ProxyLM,
    val: dict[str, np.ndarray],
    val_bytes: dict[str, int],
    eos: int,
    device: torch.device,
    dtype: torch.dtype | None = None,
) -> dict[str, float]:
    """Held-out bits per byte per domain (EOS targets excluded) and their mean, as `bpb_<d>`/`bpb_mean`."""
    model.eval()
    seq_len, metrics = model.seq_len, {}
    for dom, arr in val.items():
        n_win = math.ceil((arr.size - 1) / seq_len)
        ids = np.full(n_win * seq_len + 1, eos, dtype=np.int64)
        ids[: arr.size] = arr
        targets = np.where(ids[1:] == eos, IGNORE, ids[1:])  # documents' tokens only are scored
        x = torch.from_numpy(ids[:-1].reshape(n_win, seq_len))  # (N, T)
        y = torch.from_numpy(targets.reshape(n_win, seq_len))  # (N, T)
        nats = 0.0
        for i in range(0, n_win, EVAL_BATCH):
            xb, yb = x[i : i + EVAL_BATCH].to(device), y[i : i + EVAL_BATCH].to(device)
            with _autocast(device, dtype):
                logits = model(xb)  # (b, T, V)
            nats += F.cross_entropy(
                logits.float().flatten(0, 1), yb.flatten(), ignore_index=IGNORE, reduction="sum"
            ).item()
        metrics[f"bpb_{dom}"] = nats / (math.log(2) * val_bytes[dom])
    metrics["bpb_mean"] = sum(metrics.values()) / len(val)
    model.train()
    return metrics


def build_model(cfg: ProxyConfig, vocab_size: int, seed: int) -> ProxyLM:
    """A freshly initialised proxy; the same seed gives the same weights."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return ProxyLM(vocab_size, cfg.d_model, cfg.n_layers, cfg.n_heads, cfg.seq_len)


def make_optimizer(model: torch.nn.Module, lr: float) -> torch.optim.AdamW:
    """AdamW (betas 0.9/0.95, weight decay 0.1 on matrices only) with its fused kernel (CPU and CUDA)."""
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    groups = [{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=lr, betas=(0.9, 0.95), fused=True)


def compiled_or_eager(
    model: ProxyLM, batch: tuple[int, int], device: torch.device, dtype: torch.dtype | None
) -> Callable:
    """torch.compile(model.hidden) if it compiles and runs forward and backward here, else model.hidden (warns)."""
    fwd = torch.compile(model.hidden)
    try:
        probe = torch.zeros(batch, dtype=torch.long, device=device)  # (B, T)
        with _autocast(device, dtype):
            hidden = fwd(probe)
        hidden.float().sum().backward()  # compiles the backward too; the gradients are discarded
    except Exception as exc:
        if is_oom(exc):
            raise
        warnings.warn(f"torch.compile failed, training eagerly: {type(exc).__name__}: {exc}", stacklevel=2)
        fwd = model.hidden
    model.zero_grad(set_to_none=True)
    return fwd


def train_loop(
    model: ProxyLM,
    w: np.ndarray,
    train: list[np.ndarray],
    cfg: ProxyConfig,
    device: torch.device,
    seed: int,
    info: dict,
) -> dict:
    """Train `model` on mixture weights `w` over the token budget; fill and return `info`.

    `info` gets `steps`, `compiled` and `seqs` (sequences trained per domain of `train`, counted after each
    applied update): it is filled as training goes, so it stays exact when Diverged or an OOM ends it early.
    """
    total_seqs = math.ceil(cfg.train_tokens / cfg.seq_len)
    steps = math.ceil(total_seqs / cfg.batch_size)
    dtype = autocast_dtype(cfg.precision, device)
    fwd: Callable = model.hidden
    if use_compile(cfg.compile, device, steps):
        fwd = compiled_or_eager(model, (min(cfg.batch_size, total_seqs), cfg.seq_len), device, dtype)
    info["compiled"] = fwd != model.hidden
    opt = make_optimizer(model, cfg.lr)
    rng = np.random.default_rng(seed)
    check_every = 1 if device.type == "cpu" else NAN_CHECK_EVERY
    nonfinite = torch.zeros((), dtype=torch.bool, device=device)
    assigned = info.setdefault("seqs", np.zeros(len(train), dtype=np.int64))
    info.setdefault("steps", 0)
    for step in range(steps):
        counts = allocate(w, assigned, min(total_seqs, (step + 1) * cfg.batch_size))
        x, y = sample_batch(train, counts, rng, cfg.seq_len)
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        for group in opt.param_groups:
            group["lr"] = lr_at(step, steps, cfg.lr)
        with _autocast(device, dtype):
            loss = linear_cross_entropy(fwd(x).flatten(0, 1), model.embed.weight, y.flatten())  # fwd: (B, T, C)
        nonfinite |= ~torch.isfinite(loss.detach())
        if (step % check_every == check_every - 1 or step == steps - 1) and nonfinite.item():
            raise Diverged(f"training loss became NaN or infinite by step {step + 1}/{steps}")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0, foreach=True)
        opt.step()
        assigned += counts
        info["steps"] = step + 1
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return info


def _load_result(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _release(device: torch.device) -> None:
    """Give memory of a failed run back (the allocator's cache on CUDA)."""
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


def _fit(mix: dict[str, float], cfg: ProxyConfig, meta: dict, data_dir: Path, device: torch.device, seed: int) -> dict:
    """Build, train and evaluate one proxy; return the run's status, reason, metrics and accounting fields."""
    domains = list(mix)
    train = list(load_arrays(data_dir, domains, "train").values())
    val = load_arrays(data_dir, domains, "val")
    for dom, arr in zip(domains, train, strict=True):
        if mix[dom] > 0 and arr.size <= cfg.seq_len:
            raise ValueError(f"domain {dom!r} has {arr.size} training tokens, fewer than seq_len + 1")
    dtype = autocast_dtype(cfg.precision, device)
    out: dict = {"status": "ok", "reason": None, "error": None, "metrics": {}, "n_params": None}
    out["precision"] = "bf16" if dtype is torch.bfloat16 else "fp32"
    info: dict = {"steps": 0, "compiled": False, "seqs": np.zeros(len(domains), dtype=np.int64)}
    t0 = time.perf_counter()
    try:
        model = build_model(cfg, meta["vocab_size"], seed).to(device)
        out["n_params"] = count_params(model)
        train_loop(model, np.array([mix[d] for d in domains]), train, cfg, device, seed, info)
        out["train_s"] = time.perf_counter() - t0
        val_bytes = {d: meta["domains"][d]["val_bytes"] for d in domains}
        metrics = evaluate(model, val, val_bytes, meta["eos_id"], device, dtype)
        bad = sorted(k for k, v in metrics.items() if not math.isfinite(v))
        if bad:
            raise Diverged(f"non-finite held-out loss for {bad}")
        out["metrics"] = metrics
    except Diverged as exc:
        out.update(status="failed", reason="diverged", error=f"diverged: {exc}")
    except (MemoryError, RuntimeError) as exc:  # torch.OutOfMemoryError is a RuntimeError
        if not is_oom(exc):
            raise
        out.update(status="failed", reason="oom", error=f"oom: {type(exc).__name__}: {str(exc)[:500]}")
    if out["status"] != "ok":
        model = None
        _release(device)
    out.setdefault("train_s", time.perf_counter() - t0)
    seen = {d: int(n) * cfg.seq_len for d, n in zip(domains, info.pop("seqs"), strict=True)}
    out.update(info, tokens_seen=seen)
    out["epochs"] = {d: seen[d] / meta["domains"][d]["train_tokens"] for d in domains}
    out["tokens_per_s"] = sum(seen.values()) / out["train_s"] if out["train_s"] > 0 else 0.0
    return out


def train_proxy(
    run_id: str,
    weights: dict[str, float],
    cfg: ProxyConfig,
    data_dir: Path,
    out_dir: Path,
    seed: int,
    attempt: int = 1,
) -> dict:
    """Train one proxy on a mixture, evaluate held-out bpb per domain, write `out_dir/result.json`.

    A finished ok result is returned as is. `attempt` (1 for the first try) is recorded as `attempts`.
    """
    result_path = Path(out_dir) / "result.json"
    done = _load_result(result_path) if result_path.is_file() else None
    if done and done.get("status") == "ok":
        return done
    meta = load_meta(data_dir)
    mix = normalize_weights(weights, list(meta["domains"]))
    device = resolve_device(cfg.device)
    prev_threads = torch.get_num_threads()
    t0 = time.perf_counter()
    try:
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        fitted = _fit(mix, cfg, meta, Path(data_dir), device, seed)
    finally:
        torch.set_num_threads(prev_threads)
    result = {
        "run_id": run_id,
        "weights": mix,
        "seed": seed,
        "device": str(device),
        "proxy": cfg.model_dump(),
        **fitted,
        "attempts": attempt,
        "wall_s": time.perf_counter() - t0,
    }
    write_json_atomic(result_path, result)
    return result
