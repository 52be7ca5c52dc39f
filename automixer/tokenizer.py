"""The byte-level BPE tokenizer shared by every proxy: trained offline on training documents, or loaded."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from automixer.config import TokenizerConfig
from automixer.io import atomic_path, sha256_file, stable_hash

if TYPE_CHECKING:
    from tokenizers import Tokenizer

EOS_TOKEN = "<|endoftext|>"
"""Separator appended after every document; the only special token of a trained tokenizer."""

EOS_CANDIDATES = (EOS_TOKEN, "</s>", "<|eos|>", "<eos>", "<|end_of_text|>")
"""End-of-document tokens recognised in a tokenizer supplied through `tokenizer.path`."""


def eos_id(tok: Tokenizer) -> int:
    """The id of the tokenizer's end-of-document token, or a ValueError if it has none."""
    for name in EOS_CANDIDATES:
        idx = tok.token_to_id(name)
        if idx is not None:
            return idx
    raise ValueError(f"tokenizer has no end-of-document token; expected one of {list(EOS_CANDIDATES)}")


def load_tokenizer(path: str | Path) -> Tokenizer:
    """Load a tokenizer.json, with a clear error when it is missing or unreadable."""
    from tokenizers import Tokenizer

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"tokenizer not found: {path}; run `automixer tokenize` (or set tokenizer.path)")
    try:
        tok = Tokenizer.from_file(str(path))
    except Exception as exc:  # tokenizers raises a bare Exception on malformed JSON
        raise ValueError(f"{path} is not a valid Hugging Face tokenizer.json: {exc}") from exc
    eos_id(tok)
    return tok


def _quotas(available: dict[str, int], total: int) -> dict[str, int]:
    """Split `total` bytes across domains as evenly as their available bytes allow (water-filling)."""
    quotas: dict[str, int] = {}
    left, todo = total, sorted(available, key=lambda d: (available[d], d))
    for i, dom in enumerate(todo):
        share = left // (len(todo) - i)
        quotas[dom] = min(available[dom], share)
        left -= quotas[dom]
    return quotas


def sample_training_text(shards_dir: Path, domains: list[str], sample_bytes: int, val_fraction: float) -> Iterator[str]:
    """Yield a deterministic, domain-balanced sample of training documents (validation docs excluded)."""
    from automixer.proxy.data import is_validation
    from automixer.shards import read_domain_texts

    pools: dict[str, list[tuple[str, str, int]]] = {}
    for dom in domains:
        table = read_domain_texts(shards_dir, dom)
        rows = zip(
            table.column("id").to_pylist(),
            table.column("text").to_pylist(),
            table.column("n_bytes").to_pylist(),
            strict=True,
        )
        keep = [(i, t, n) for i, t, n in rows if not is_validation(i, val_fraction)]
        pools[dom] = sorted(keep, key=lambda r: stable_hash("tokenizer-sample", r[0]))
    quotas = _quotas({d: sum(r[2] for r in pool) for d, pool in pools.items()}, sample_bytes)
    for dom in domains:
        left = quotas[dom]
        for _, text, n_bytes in pools[dom]:
            if left <= 0:
                break
            yield text if n_bytes <= left else text[:left]
            left -= n_bytes


def train_tokenizer(
    cfg: TokenizerConfig, shards_dir: Path, domains: list[str], out_path: Path, val_fraction: float
) -> Path:
    """Train (or copy from `cfg.path`) a byte-level BPE tokenizer into `out_path`; skip if it exists."""
    out_path = Path(out_path)
    if cfg.path:
        src = Path(cfg.path)
        if not src.is_file():
            raise FileNotFoundError(f"tokenizer.path: {src} does not exist; point it to a tokenizer.json")
        load_tokenizer(src)
        if not (out_path.is_file() and sha256_file(out_path) == sha256_file(src)):
            with atomic_path(out_path) as tmp:
                shutil.copyfile(src, tmp)
        return out_path
    if out_path.is_file():
        return out_path
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=cfg.vocab_size,
        special_tokens=[EOS_TOKEN],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    texts = list(sample_training_text(Path(shards_dir), domains, cfg.sample_bytes, val_fraction))
    if not texts:
        raise ValueError(f"no training documents found under {shards_dir} for domains {domains}")
    tok.train_from_iterator(texts, trainer=trainer, length=len(texts))
    with atomic_path(out_path) as tmp:
        tok.save(str(tmp))
    return out_path
