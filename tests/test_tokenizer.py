"""Tokenizer: held-out split, training on training docs only, determinism, reuse and loading."""

from __future__ import annotations

import gzip
import json
from itertools import islice
from pathlib import Path

import pytest

from automixer.config import TokenizerConfig
from automixer.proxy.data import is_validation
from automixer.shards import read_domain_texts, write_shards
from automixer.tokenizer import (
    EOS_TOKEN,
    eos_id,
    load_tokenizer,
    sample_training_text,
    train_tokenizer,
)

DOMAINS = ["code", "math", "web"]
VAL_FRACTION = 0.1


def _jsonl(path: Path):
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as f:
        for line in f:
            yield json.loads(line)


def real_docs(shared: Path, n: int = 150, max_chars: int = 1200) -> dict[str, list[dict]]:
    """A few hundred distinct real documents per domain from the shared data."""
    raw = {
        "code": (r["text"] for r in _jsonl(shared / "code" / "code_corpus_python.jsonl.gz")),
        "math": (r["question"] + "\n" + r["answer"] for r in _jsonl(shared / "math" / "gsm8k_train.jsonl")),
        "web": (r["text"] for r in _jsonl(shared / "web" / next(p.name for p in (shared / "web").glob("dolma_CC*")))),
    }
    out = {}
    for dom, texts in raw.items():
        seen: set[str] = set()
        docs = []
        for text in texts:
            text = text[:max_chars]
            if text.strip() and text not in seen:
                seen.add(text)
                docs.append({"id": f"{dom}-{len(docs)}", "text": text})
            if len(docs) == n:
                break
        out[dom] = docs
    return out


def write_tiny_shards(shared: Path, shards_dir: Path, n: int = 150) -> dict[str, list[dict]]:
    """Write real documents as shards (two per domain); return them."""
    docs = real_docs(shared, n)
    for dom, rows in docs.items():
        write_shards(rows, shards_dir / dom, dom, "part", shard_docs=n // 2 + 1)
    return docs


@pytest.fixture(scope="module")
def shards(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("tok")
    docs = write_tiny_shards(shared_data, root / "shards")
    return root / "shards", docs


def test_is_validation_is_deterministic_and_near_fraction() -> None:
    ids = [f"doc-{i}" for i in range(20_000)]
    picked = [is_validation(i, 0.1) for i in ids]
    assert picked == [is_validation(i, 0.1) for i in ids]
    assert 0.09 < sum(picked) / len(ids) < 0.11
    assert not any(is_validation(i, 0.0) for i in ids[:1000])
    # a larger fraction keeps every document of a smaller one (nested splits)
    assert all(is_validation(i, 0.2) for i, p in zip(ids, picked, strict=True) if p)


def test_sample_excludes_validation_and_is_balanced(shards: tuple[Path, dict]) -> None:
    shards_dir, docs = shards
    val_texts = {d["text"] for rows in docs.values() for d in rows if is_validation(d["id"], VAL_FRACTION)}
    assert val_texts, "fixture should hold some validation documents"
    sample = list(sample_training_text(shards_dir, DOMAINS, 30_000, VAL_FRACTION))
    assert not val_texts & set(sample)
    by_domain = {dom: sum(len(t) for t in sample if t in {d["text"] for d in docs[dom]}) for dom in DOMAINS}
    for dom, n_chars in by_domain.items():  # whole docs, the last one cut: about 10k each
        assert 8_000 <= n_chars <= 10_000, (dom, by_domain)


def test_train_tokenizer_roundtrips_and_is_deterministic(shards: tuple[Path, dict], tmp_path: Path) -> None:
    shards_dir, docs = shards
    cfg = TokenizerConfig(vocab_size=300, sample_bytes=200_000)
    a = train_tokenizer(cfg, shards_dir, DOMAINS, tmp_path / "a" / "tokenizer.json", VAL_FRACTION)
    b = train_tokenizer(cfg, shards_dir, DOMAINS, tmp_path / "b" / "tokenizer.json", VAL_FRACTION)
    assert a.read_bytes() == b.read_bytes()
    tok = load_tokenizer(a)
    assert tok.get_vocab_size() == 300
    assert tok.token_to_id(EOS_TOKEN) == eos_id(tok) == 0
    for text in (docs["code"][0]["text"], "naïve café — ∑ x² \t\n  indented", docs["web"][3]["text"]):
        ids = tok.encode(text, add_special_tokens=False).ids
        assert tok.decode(ids) == text
    assert len(tok.encode(docs["math"][0]["text"]).ids) < len(docs["math"][0]["text"].encode())


def test_train_tokenizer_skips_existing_and_copies_given_path(shards: tuple[Path, dict], tmp_path: Path) -> None:
    shards_dir, _ = shards
    cfg = TokenizerConfig(vocab_size=280, sample_bytes=20_000)
    out = train_tokenizer(cfg, shards_dir, DOMAINS, tmp_path / "tok.json", VAL_FRACTION)
    mtime = out.stat().st_mtime_ns
    assert train_tokenizer(cfg, shards_dir, DOMAINS, out, VAL_FRACTION) == out
    assert out.stat().st_mtime_ns == mtime

    copied = train_tokenizer(TokenizerConfig(path=str(out)), shards_dir, DOMAINS, tmp_path / "c.json", 0.1)
    assert copied.read_bytes() == out.read_bytes()

    with pytest.raises(FileNotFoundError, match="nope.json"):
        train_tokenizer(TokenizerConfig(path=str(tmp_path / "nope.json")), shards_dir, DOMAINS, tmp_path / "d", 0.1)
    with pytest.raises(FileNotFoundError, match="tokenizer not found"):
        load_tokenizer(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ValueError, match="bad.json"):
        load_tokenizer(tmp_path / "bad.json")


def test_missing_domain_shards_is_a_clear_error(shards: tuple[Path, dict], tmp_path: Path) -> None:
    shards_dir, _ = shards
    with pytest.raises(FileNotFoundError, match="synthetic"):
        train_tokenizer(TokenizerConfig(), shards_dir, [*DOMAINS, "synthetic"], tmp_path / "t.json", 0.1)
    assert read_domain_texts(shards_dir, "code").num_rows == 150
    assert list(islice(sample_training_text(shards_dir, ["code"], 10_000, 0.1), 1))
