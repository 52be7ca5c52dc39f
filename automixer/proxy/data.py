"""Held-out split and tokenized token arrays (one train and one validation array per domain)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from automixer.io import atomic_path, sha256_file, stable_hash, write_json_atomic

if TYPE_CHECKING:
    from tokenizers import Tokenizer

    from automixer.config import PipelineConfig

ENCODE_CHUNK_BYTES = 8 << 20
"""Text handed to one `encode_batch` call (bounds memory; the tokenizer parallelises inside a call)."""


def is_validation(doc_id: str, fraction: float) -> bool:
    """Whether a document belongs to the held-out validation split (deterministic, by id hash)."""
    digest = hashlib.sha256(b"automixer-val\0" + str(doc_id).encode()).digest()
    return int.from_bytes(digest[:8], "big") < fraction * 2.0**64


def token_dtype(vocab_size: int) -> type[np.unsignedinteger]:
    """The smallest unsigned dtype that holds every token id."""
    return np.uint16 if vocab_size <= 1 << 16 else np.uint32


def _chunks(texts: list[str], max_bytes: int) -> Iterator[list[str]]:
    """Split texts into consecutive lists of about `max_bytes` characters."""
    chunk: list[str] = []
    size = 0
    for text in texts:
        chunk.append(text)
        size += len(text)
        if size >= max_bytes:
            yield chunk
            chunk, size = [], 0
    if chunk:
        yield chunk


def encode_docs(tok: Tokenizer, texts: list[str], eos: int, dtype: type) -> np.ndarray:
    """Tokenize documents into one array: EOS, doc 1, EOS, doc 2, EOS, ... (every doc has an EOS before it)."""
    encode = getattr(tok, "encode_batch_fast", tok.encode_batch)
    parts = [np.array([eos], dtype=dtype)]
    sep = np.array([eos], dtype=dtype)
    for chunk in _chunks(texts, ENCODE_CHUNK_BYTES):
        for enc in encode(chunk, add_special_tokens=False):
            parts.append(np.asarray(enc.ids, dtype=dtype))
            parts.append(sep)
    return np.concatenate(parts)


def _save_npy(path: Path, arr: np.ndarray) -> None:
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.save(f, arr)


def split_domain(shards_dir: Path, domain: str, val_fraction: float, val_max_bytes: int) -> tuple[list, list]:
    """A domain's training texts (shard order) and capped validation texts (hash order)."""
    from automixer.shards import read_domain_texts

    table = read_domain_texts(shards_dir, domain)
    train, val = [], []
    for doc_id, text in zip(table.column("id").to_pylist(), table.column("text").to_pylist(), strict=True):
        (val if is_validation(doc_id, val_fraction) else train).append((doc_id, text))
    if not train or not val:
        raise ValueError(
            f"domain {domain!r} has {len(train)} training and {len(val)} validation documents; "
            f"both must be non-empty (add data or change proxy.val_fraction = {val_fraction})"
        )
    val.sort(key=lambda r: stable_hash("val-order", r[0]))
    capped, left = [], val_max_bytes
    for doc_id, text in val:
        if left <= 0:
            break
        raw = text.encode("utf-8")
        if len(raw) > left:
            text = raw[:left].decode("utf-8", errors="ignore")
        capped.append((doc_id, text))
        left -= len(text.encode("utf-8"))
    return [t for _, t in train], [t for _, t in capped]


def shards_fingerprint(shards_dir: Path, domains: list[str]) -> str:
    """A digest of the domains' shard files (names, sizes, modification times): changes when shards do."""
    parts = []
    for dom in domains:
        for f in sorted(Path(shards_dir, dom).glob("*.parquet")):
            st = f.stat()
            parts.append(f"{dom}/{f.name}:{st.st_size}:{st.st_mtime_ns}")
    return stable_hash(*parts)


def _meta_key(cfg: PipelineConfig, tok_sha: str) -> dict:
    return {
        "tokenizer_sha256": tok_sha,
        "shards_fingerprint": shards_fingerprint(cfg.path("shards"), cfg.domains),
        "val_fraction": cfg.proxy.val_fraction,
        "val_max_bytes": cfg.proxy.val_max_bytes,
        "domain_order": list(cfg.domains),
    }


def prepare_data(cfg: PipelineConfig, tokenizer_path: Path, out_dir: Path) -> dict:
    """Tokenize every domain into `<d>.train.npy` / `<d>.val.npy` plus `meta.json`; skip if already done."""
    from automixer.tokenizer import eos_id, load_tokenizer

    out_dir = Path(out_dir)
    key = _meta_key(cfg, sha256_file(tokenizer_path))
    meta_path = out_dir / "meta.json"
    if meta_path.is_file():
        meta = json.loads(meta_path.read_text())
        if all(meta.get(k) == v for k, v in key.items()):
            return meta
    tok = load_tokenizer(tokenizer_path)
    vocab = tok.get_vocab_size(with_added_tokens=True)
    eos, dtype = eos_id(tok), token_dtype(vocab)
    domains: dict[str, dict] = {}
    for dom in cfg.domains:
        train, val = split_domain(cfg.path("shards"), dom, cfg.proxy.val_fraction, cfg.proxy.val_max_bytes)
        train_ids = encode_docs(tok, train, eos, dtype)
        val_ids = encode_docs(tok, val, eos, dtype)
        _save_npy(out_dir / f"{dom}.train.npy", train_ids)
        _save_npy(out_dir / f"{dom}.val.npy", val_ids)
        domains[dom] = {
            "train_tokens": int(train_ids.size),
            "train_docs": len(train),
            "train_bytes": sum(len(t.encode("utf-8")) for t in train),
            "val_tokens": int(val_ids.size),
            "val_docs": len(val),
            "val_bytes": sum(len(t.encode("utf-8")) for t in val),
        }
    meta = {"domains": domains, "vocab_size": vocab, "eos_id": eos, "dtype": np.dtype(dtype).name, **key}
    write_json_atomic(meta_path, meta)
    return meta


def load_meta(data_dir: Path) -> dict:
    """Read `meta.json` of a prepared data folder, with a clear error if it is missing."""
    path = Path(data_dir) / "meta.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found; run the tokenize/prepare-data step first")
    return json.loads(path.read_text())


def load_arrays(data_dir: Path, domains: list[str], split: str) -> dict[str, np.ndarray]:
    """Memory-map one split's token arrays (`train` or `val`) of the given domains."""
    arrays = {}
    for dom in domains:
        path = Path(data_dir) / f"{dom}.{split}.npy"
        if not path.is_file():
            raise FileNotFoundError(f"{path} not found; rerun prepare_data")
        arrays[dom] = np.load(path, mmap_mode="r")
    return arrays


def natural_distribution(meta: dict) -> dict[str, float]:
    """Each domain's share of all training tokens."""
    counts = {d: float(v["train_tokens"]) for d, v in meta["domains"].items()}
    total = sum(counts.values())
    if total <= 0:
        raise ValueError("meta.json lists no training tokens")
    return {d: c / total for d, c in counts.items()}
