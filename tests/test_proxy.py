"""Proxy LM: tokenized data with a clean held-out split, exact mixture accounting, bpb, determinism, reruns."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from automixer.config import PipelineConfig, ProxyConfig, TokenizerConfig
from automixer.proxy.data import is_validation, load_arrays, natural_distribution, prepare_data, split_domain
from automixer.proxy.loss import linear_cross_entropy
from automixer.proxy.model import ProxyLM
from automixer.proxy.train import (
    COMPILE_MIN_STEPS,
    allocate,
    autocast_dtype,
    build_model,
    evaluate,
    is_oom,
    train_proxy,
    use_compile,
)
from automixer.tokenizer import EOS_TOKEN, load_tokenizer, train_tokenizer

DOMAINS = ["code", "math", "web"]
TINY = ProxyConfig(
    d_model=32,
    n_layers=1,
    n_heads=2,
    seq_len=32,
    batch_size=8,
    train_tokens=6000,
    lr=1e-2,
    val_fraction=0.1,
    val_max_bytes=1_000_000,
    threads=1,
)


@pytest.fixture(scope="module")
def prepared(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Shards, tokenizer and tokenized data of a tiny three-domain corpus."""
    from test_tokenizer import write_tiny_shards

    work = tmp_path_factory.mktemp("proxy")
    cfg = PipelineConfig(work_dir=str(work), domains=DOMAINS, tokenizer=TokenizerConfig(vocab_size=300), proxy=TINY)
    docs = write_tiny_shards(shared_data, cfg.path("shards"))
    tok_path = train_tokenizer(
        cfg.tokenizer, cfg.path("shards"), DOMAINS, cfg.path("tokenizer", "tokenizer.json"), TINY.val_fraction
    )
    meta = prepare_data(cfg, tok_path, cfg.path("data"))
    return {"cfg": cfg, "docs": docs, "tok": tok_path, "meta": meta, "data": cfg.path("data"), "work": work}


def test_prepare_data_splits_and_counts_exactly(prepared: dict) -> None:
    meta, docs, tok = prepared["meta"], prepared["docs"], load_tokenizer(prepared["tok"])
    assert meta["vocab_size"] == 300 and set(meta["domains"]) == set(DOMAINS)
    for dom in DOMAINS:
        train = [d["text"] for d in docs[dom] if not is_validation(d["id"], TINY.val_fraction)]
        val = [d["text"] for d in docs[dom] if is_validation(d["id"], TINY.val_fraction)]
        m = meta["domains"][dom]
        assert (m["train_docs"], m["val_docs"]) == (len(train), len(val)) and val
        assert m["val_bytes"] == sum(len(t.encode("utf-8")) for t in val)
        assert m["train_bytes"] == sum(len(t.encode("utf-8")) for t in train)
        arrays = {s: load_arrays(prepared["data"], [dom], s)[dom] for s in ("train", "val")}
        assert arrays["train"].dtype == np.uint16 and arrays["train"].size == m["train_tokens"]
        # the train array decodes to exactly the training documents, each preceded by EOS
        decoded = tok.decode(arrays["train"].tolist(), skip_special_tokens=False)
        assert decoded == EOS_TOKEN + "".join(t + EOS_TOKEN for t in train)
        assert not any(t in decoded for t in val)
        assert sorted(tok.decode(arrays["val"].tolist(), skip_special_tokens=False).split(EOS_TOKEN)[1:-1]) == sorted(
            val
        )
    shares = natural_distribution(meta)
    assert math.isclose(sum(shares.values()), 1.0)
    assert shares["code"] / shares["math"] == pytest.approx(
        meta["domains"]["code"]["train_tokens"] / meta["domains"]["math"]["train_tokens"]
    )


def test_prepare_data_reuses_and_validation_cap_is_exact(prepared: dict) -> None:
    meta_path = prepared["data"] / "meta.json"
    mtime = meta_path.stat().st_mtime_ns
    assert prepare_data(prepared["cfg"], prepared["tok"], prepared["data"]) == json.loads(meta_path.read_text())
    assert meta_path.stat().st_mtime_ns == mtime
    _, val = split_domain(prepared["cfg"].path("shards"), "web", 0.3, 1500)
    assert 1500 - 3 <= sum(len(t.encode("utf-8")) for t in val) <= 1500


def test_allocate_tracks_weights_within_one_sequence() -> None:
    w = np.array([0.5, 0.0, 0.3, 0.2 - 1e-3, 1e-3])
    assigned = np.zeros(5, dtype=np.int64)
    for step in range(40):
        total = (step + 1) * 7
        counts = allocate(w, assigned, total)
        assert counts.sum() == 7 and counts.min() >= 0
        assigned += counts
        assert np.abs(assigned - w * total).max() < 1 and assigned[1] == 0


def test_model_is_causal() -> None:
    torch.manual_seed(0)
    model = ProxyLM(vocab_size=50, d_model=16, n_layers=2, n_heads=2, seq_len=12)
    x = torch.randint(0, 50, (2, 12))
    y = x.clone()
    y[:, 7] = (y[:, 7] + 1) % 50
    a, b = model(x), model(y)
    assert torch.equal(a[:, :7], b[:, :7]) and not torch.allclose(a[:, 7:], b[:, 7:])


def test_train_proxy_learns_follows_the_mixture_and_reruns(prepared: dict, tmp_path: Path) -> None:
    meta, data = prepared["meta"], prepared["data"]
    weights = {"code": 0.7, "math": 0.3, "web": 0.0}
    result = train_proxy("r0", weights, TINY, data, tmp_path / "r0", seed=3)
    assert result["status"] == "ok" and result["error"] is None
    assert json.loads((tmp_path / "r0" / "result.json").read_text()) == json.loads(json.dumps(result))
    m = result["metrics"]
    assert set(m) == {f"bpb_{d}" for d in DOMAINS} | {"bpb_mean"}
    assert all(math.isfinite(v) and 0 < v < 8 for v in m.values())
    assert m["bpb_mean"] == pytest.approx(sum(m[f"bpb_{d}"] for d in DOMAINS) / 3)

    untrained = build_model(TINY, meta["vocab_size"], seed=3)
    val = load_arrays(data, DOMAINS, "val")
    before = evaluate(untrained, val, {d: meta["domains"][d]["val_bytes"] for d in DOMAINS}, 0, torch.device("cpu"))
    assert m["bpb_code"] < before["bpb_code"] - 0.5 and m["bpb_math"] < before["bpb_math"] - 0.5

    seen, total = result["tokens_seen"], sum(result["tokens_seen"].values())
    assert total == math.ceil(TINY.train_tokens / TINY.seq_len) * TINY.seq_len
    assert seen["web"] == 0 and result["epochs"]["web"] == 0
    for dom, w in weights.items():
        assert abs(seen[dom] - w * total) <= TINY.seq_len
        assert result["epochs"][dom] == pytest.approx(seen[dom] / meta["domains"][dom]["train_tokens"])
    assert result["n_params"] > 0 and result["tokens_per_s"] > 0 and result["proxy"] == TINY.model_dump()

    mtime = (tmp_path / "r0" / "result.json").stat().st_mtime_ns
    assert train_proxy("r0", weights, TINY, data, tmp_path / "r0", seed=3) == result
    assert (tmp_path / "r0" / "result.json").stat().st_mtime_ns == mtime


def test_train_proxy_is_deterministic_for_a_seed(prepared: dict, tmp_path: Path) -> None:
    weights = {"code": 1.0, "math": 1.0, "web": 2.0}  # normalised to 0.25 / 0.25 / 0.5
    a = train_proxy("a", weights, TINY, prepared["data"], tmp_path / "a", seed=7)
    b = train_proxy("b", weights, TINY, prepared["data"], tmp_path / "b", seed=7)
    c = train_proxy("c", weights, TINY, prepared["data"], tmp_path / "c", seed=8)
    assert a["weights"] == {"code": 0.25, "math": 0.25, "web": 0.5}
    assert a["metrics"] == b["metrics"] and a["tokens_seen"] == b["tokens_seen"]
    assert a["metrics"] != c["metrics"]


def test_train_proxy_records_divergence_and_rejects_bad_mixtures(prepared: dict, tmp_path: Path) -> None:
    wild = TINY.model_copy(update={"lr": 1e6})
    result = train_proxy("nan", {"code": 1.0, "math": 1.0}, wild, prepared["data"], tmp_path / "nan", seed=0)
    assert result["status"] == "failed" and result["reason"] == "diverged" and result["metrics"] == {}
    assert sum(result["tokens_seen"].values()) == result["steps"] * wild.batch_size * wild.seq_len
    assert json.loads((tmp_path / "nan" / "result.json").read_text())["status"] == "failed"
    with pytest.raises(ValueError, match="unknown domain"):
        train_proxy("x", {"code": 1.0, "poetry": 1.0}, TINY, prepared["data"], tmp_path / "x", seed=0)
    with pytest.raises(ValueError, match=">= 0"):
        train_proxy("y", {"code": 1.0, "math": -0.5}, TINY, prepared["data"], tmp_path / "y", seed=0)
    with pytest.raises(FileNotFoundError, match="meta.json"):
        train_proxy("z", {"code": 1.0}, TINY, tmp_path / "nodata", tmp_path / "z", seed=0)


def test_precision_and_compile_settings_resolve_per_device() -> None:
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert autocast_dtype("auto", cpu) is None and autocast_dtype("fp32", cuda) is None
    assert autocast_dtype("bf16", cpu) is torch.bfloat16
    assert autocast_dtype("auto", cuda) is (torch.bfloat16 if torch.cuda.is_available() else None)
    assert not use_compile("auto", cpu, 10**6) and not use_compile("off", cuda, 10**6)
    assert use_compile("auto", cuda, COMPILE_MIN_STEPS) and not use_compile("auto", cuda, COMPILE_MIN_STEPS - 1)
    assert use_compile("on", cpu, 1)
    assert is_oom(MemoryError()) and is_oom(torch.OutOfMemoryError("CUDA out of memory"))
    assert not is_oom(RuntimeError("shape mismatch")) and not is_oom(ValueError("out of memory"))


def test_bf16_autocast_trains_on_cpu(prepared: dict, tmp_path: Path) -> None:
    cfg = TINY.model_copy(update={"precision": "bf16", "train_tokens": 3000})
    fp32 = train_proxy(
        "f", {"code": 1.0}, TINY.model_copy(update={"train_tokens": 3000}), prepared["data"], tmp_path / "f", 0
    )
    bf16 = train_proxy("b", {"code": 1.0}, cfg, prepared["data"], tmp_path / "b", seed=0)
    assert (bf16["status"], bf16["precision"], fp32["precision"]) == ("ok", "bf16", "fp32")
    assert bf16["metrics"] != fp32["metrics"]  # really computed in bf16
    assert bf16["metrics"]["bpb_code"] == pytest.approx(fp32["metrics"]["bpb_code"], rel=0.05)


def test_out_of_memory_is_a_failed_result(prepared: dict, tmp_path: Path) -> None:
    huge = TINY.model_copy(update={"batch_size": 2**45, "train_tokens": 2**45 * TINY.seq_len})
    result = train_proxy("oom", {"code": 1.0, "web": 1.0}, huge, prepared["data"], tmp_path / "oom", seed=0, attempt=2)
    assert (result["status"], result["reason"], result["attempts"], result["steps"]) == ("failed", "oom", 2, 0)
    assert result["tokens_seen"] == {d: 0 for d in DOMAINS} and result["n_params"] > 0
    assert json.loads((tmp_path / "oom" / "result.json").read_text())["reason"] == "oom"


@pytest.mark.parametrize("chunk", [1 << 24, 40])
def test_fused_loss_matches_cross_entropy(chunk: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        "automixer.proxy.loss.CHUNK_ELEMENTS", chunk
    )  # 40: two rows of the 20-token vocabulary at a time
    gen = torch.Generator().manual_seed(0)
    h = torch.randn(37, 8, generator=gen, requires_grad=True)
    w = torch.randn(20, 8, generator=gen, requires_grad=True)
    y = torch.randint(0, 20, (37,), generator=gen)
    ref = F.cross_entropy(F.linear(h, w), y)
    (ref * 3).backward()
    want = h.grad.clone(), w.grad.clone()
    h.grad = w.grad = None
    got = linear_cross_entropy(h, w, y)
    (got * 3).backward()
    assert got.item() == pytest.approx(ref.item(), rel=1e-6)
    torch.testing.assert_close((h.grad, w.grad), want, rtol=1e-5, atol=1e-6)
