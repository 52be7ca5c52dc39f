"""Mixture export: Megatron/NeMo, OLMo-core, HF interleave and our YAML, on real shards and a real manifest."""

from __future__ import annotations

import json
import math
import random
import re
import warnings
from pathlib import Path

import pytest
import yaml

from automixer.export import (
    EXPORT_FORMATS,
    close_simplex,
    export_mixture,
    parse_token_count,
    write_export,
)
from automixer.mixture import MixtureSpec, read_mixture
from automixer.shards import build_manifest, write_shards

ROOT = Path(__file__).resolve().parents[1]
WEIGHTS = {"code": 0.25, "math": 0.45, "web": 0.3, "synthetic": 0.0}
DOC_WORDS = {"code": 60, "math": 12, "web": 30}
"""Words per document by domain: unequal lengths make per-document and per-token shares differ."""


def _spec(**kw) -> MixtureSpec:
    base = {"name": "mix", "weights": WEIGHTS, "target": "bpb_mean", "provenance": {"seed": 3, "predictor": "gp"}}
    return MixtureSpec(**{**base, **kw})


@pytest.fixture(scope="module")
def shards(tmp_path_factory) -> tuple[Path, dict]:
    """Real zstd Parquet shards (code in 2 shards) and the manifest build_manifest writes over them."""
    root = tmp_path_factory.mktemp("shards")
    rng = random.Random(0)
    vocab = [f"w{i}" for i in range(200)]
    n_docs = {"code": 200, "math": 400, "web": 150}
    for dom, n in n_docs.items():
        docs = [{"id": f"{dom}-{i}", "text": " ".join(rng.choices(vocab, k=DOC_WORDS[dom]))} for i in range(n)]
        write_shards(docs, root / dom, dom, dom, shard_docs=100 if dom == "code" else 1000)
    return root, build_manifest(root)


def _quiet(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*args, **kwargs)


def _header_budgets(text: str) -> dict[str, int]:
    """Per-domain token budgets from an export's comment table."""
    rows = re.findall(r"^# (\w+)\s+([0-9.e-]+)\s+(\d+)\b", text, flags=re.M)
    return {dom: int(budget) for dom, _w, budget in rows}


def test_unknown_format_missing_budget_and_bad_values() -> None:
    with pytest.raises(ValueError, match=r"unknown export format 'parquet'; choose one of: megatron, "):
        export_mixture(_spec(), "parquet")
    with pytest.raises(ValueError, match=r"'olmo-core' needs a total token budget: pass --tokens"):
        _quiet(export_mixture, _spec(), "olmo-core")
    with pytest.raises(ValueError, match="max_repetition_ratio must be >= 1"):
        export_mixture(_spec(), "yaml", total_tokens=10, max_repetition_ratio=0.5)
    with pytest.raises(ValueError, match="total_tokens must be positive"):
        export_mixture(_spec(), "yaml", total_tokens=0)
    with pytest.raises(ValueError, match="manifest has no `shards` list"):
        export_mixture(_spec(), "megatron", manifest={"domains": {}})
    assert [parse_token_count(x) for x in ("2_000", "500M", "1.5B", "2T", 7)] == [
        2000,
        5 * 10**8,
        15 * 10**8,
        2 * 10**12,
        7,
    ]
    with pytest.raises(ValueError, match="not a number like"):
        parse_token_count("lots")


def test_close_simplex_sums_to_exactly_one() -> None:
    rng = random.Random(1)
    for _ in range(2000):
        raw = {f"d{j}": rng.random() ** 3 + 1e-9 for j in range(rng.randint(1, 16))}
        out = close_simplex(raw)
        assert sum(out.values()) == 1.0  # Python's left-to-right float sum, the check older OLMo-core makes
        assert abs(math.fsum(out.values()) - 1.0) < 1e-14
        total = math.fsum(raw.values())
        assert all(abs(out[k] - raw[k] / total) < 1e-11 for k in raw)


def test_megatron_blend_and_nemo_prefix(shards) -> None:
    root, manifest = shards
    text = export_mixture(_spec(), "megatron", total_tokens=10_000, manifest=manifest, paths_root=root)
    prefix = yaml.safe_load(text)["model"]["data"]["data_prefix"]
    weights, paths = prefix[0::2], prefix[1::2]
    assert all(isinstance(w, float) for w in weights) and sum(weights) == 1.0
    assert all(p.startswith(f"{root.as_posix()}/") and p.endswith("_text_document") for p in paths)
    assert not any("synthetic" in p for p in paths) and "omitted (weight 0): synthetic" in text
    by_dom = {d: [w for w, p in zip(weights, paths, strict=True) if f"/{d}/" in p] for d in DOC_WORDS}
    assert len(by_dom["code"]) == 2 and len(by_dom["math"]) == 1
    for dom in DOC_WORDS:  # each domain's shards carry its weight, split by each shard's tokens
        assert math.fsum(by_dom[dom]) == pytest.approx(WEIGHTS[dom], abs=1e-11)
    code = [e for e in manifest["shards"] if e["domain"] == "code"]
    assert by_dom["code"][0] / by_dom["code"][1] == pytest.approx(code[0]["tokens"] / code[1]["tokens"], rel=1e-9)
    args = export_mixture(_spec(), "megatron-args", total_tokens=10_000, manifest=manifest, paths_root=root)
    flat = args.split()  # how Megatron-LM reads --data-args-path
    assert [float(w) for w in flat[0::2]] == weights and flat[1::2] == paths
    assert f"# --data-path {' '.join(flat)}\n" in text
    assert _header_budgets(text) == {"code": 2_500, "math": 4_500, "web": 3_000}


def test_olmo_core_source_mixture_config(shards) -> None:
    root, manifest = shards
    spec = _spec(weights={"code": 1 / 3, "math": 1 / 3, "web": 1 / 3, "synthetic": 0.0})
    text = export_mixture(spec, "olmo-core", total_tokens=1001, manifest=manifest, paths_root=root, global_batch_size=8)
    doc = yaml.safe_load(text)
    assert list(doc) == ["source_list", "requested_tokens", "global_batch_size", "seed"]
    assert (doc["requested_tokens"], doc["global_batch_size"], doc["seed"]) == (1001, 8, 3)
    src = doc["source_list"]["sources"]
    assert [s["source_name"] for s in src] == ["code", "math", "web"]
    assert all(list(s) == ["source_name", "target_ratio", "paths", "max_repetition_ratio"] for s in src)
    assert sum(s["target_ratio"] for s in src) == 1.0 and all(0 < s["target_ratio"] <= 1 for s in src)
    assert all(s["max_repetition_ratio"] == 1.0 for s in src)
    assert [Path(p).name for p in src[0]["paths"]] == ["code-00000.npy", "code-00001.npy"]
    budgets = _header_budgets(text)
    assert sum(budgets.values()) == 1001 and sorted(budgets.values()) == [333, 334, 334]
    assert "# omitted (weight 0): synthetic" in text and "synthetic" not in json.dumps(doc)


def test_repetition_cap_and_warning(shards) -> None:
    root, manifest = shards
    need = manifest["domains"]["math"]["tokens"] * 3 / 0.45  # math needs ~3 passes at this budget
    with pytest.warns(UserWarning, match=r"budget repeats data: .*math 3\.\d\d\b"):
        export_mixture(_spec(), "olmo-core", total_tokens=int(need), manifest=manifest)
    with pytest.raises(ValueError, match=r"than max_repetition_ratio=2.0 allows \(.*math 3\.\d\d"):
        export_mixture(_spec(), "olmo-core", total_tokens=int(need), manifest=manifest, max_repetition_ratio=2.0)
    text = export_mixture(_spec(), "olmo-core", total_tokens=int(need), manifest=manifest, max_repetition_ratio=4.0)
    assert {s["max_repetition_ratio"] for s in yaml.safe_load(text)["source_list"]["sources"]} == {4.0}


def test_placeholders_without_manifest() -> None:
    with pytest.warns(UserWarning, match=r"no shard paths for domain\(s\) \['code', 'math', 'web'\] \(no shards"):
        text = export_mixture(_spec(), "hf-interleave")
    doc = json.loads(text)
    assert [d["data_files"] for d in doc["datasets"]] == [["<code>"], ["<math>"], ["<web>"]]
    assert doc["placeholders"] == ["code", "math", "web"] and doc["probabilities_basis"] == "tokens"
    assert doc["probabilities"] == [0.25, 0.45, 0.3] and doc["token_budgets"] is None
    with pytest.warns(UserWarning, match="not in the manifest"):
        args = export_mixture(_spec(), "megatron-args", manifest={"shards": []})
    assert args.split()[1::2] == ["<code>", "<math>", "<web>"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the yaml format names no paths, so nothing to warn about
        export_mixture(_spec(), "yaml")


def test_hf_interleave_realises_the_token_weights(shards, tmp_path) -> None:
    import datasets

    root, manifest = shards
    text = export_mixture(_spec(), "hf-interleave", total_tokens=10_000, manifest=manifest, paths_root=root)
    doc = json.loads(text)
    assert [d["name"] for d in doc["datasets"]] == ["code", "math", "web"] and doc["omitted_zero_weight"] == [
        "synthetic"
    ]
    assert doc["probabilities_basis"] == "documents" and math.fsum(doc["probabilities"]) == pytest.approx(1, abs=1e-12)
    assert doc["token_budgets"] == {"code": 2_500, "math": 4_500, "web": 3_000}
    parts = [
        datasets.Dataset.from_parquet(d["data_files"], keep_in_memory=True, cache_dir=str(tmp_path / "hf"))
        for d in doc["datasets"]
    ]
    mixed = datasets.interleave_datasets(
        parts, probabilities=doc["probabilities"], seed=doc["seed"], stopping_strategy=doc["stopping_strategy"]
    )
    assert len(mixed) > 2000  # all_exhausted: every document of every domain is seen at least once
    sample = mixed
    doms, toks = sample["domain"], sample["n_tokens"]
    total = sum(toks)
    for i, d in enumerate(doc["datasets"]):
        share_docs = doms.count(d["name"]) / len(doms)
        share_tokens = sum(t for dom, t in zip(doms, toks, strict=True) if dom == d["name"]) / total
        assert share_docs == pytest.approx(doc["probabilities"][i], abs=0.03)
        assert share_tokens == pytest.approx(doc["token_weights"][d["name"]], abs=0.03)
    names = [d["name"] for d in doc["datasets"]]  # short math documents: drawn far more often than 0.45
    assert doc["probabilities"][names.index("math")] > WEIGHTS["math"] + 0.15


def test_yaml_round_trip_and_budget_from_spec(tmp_path) -> None:
    out = write_export(_spec(), "yaml", tmp_path / "exported.yaml", total_tokens=parse_token_count("1M"))
    back = read_mixture(out)
    assert back.weights == {"code": 0.25, "math": 0.45, "web": 0.3}
    assert back.provenance["export"] == {
        "total_tokens": 1_000_000,
        "token_budgets": {"code": 250_000, "math": 450_000, "web": 300_000},
        "omitted_zero_weight": ["synthetic"],
    }
    assert back.provenance["seed"] == 3 and back.name == "mix"
    assert export_mixture(back, "yaml") == out.read_text()  # idempotent; the budget comes from the spec
    olmo = _quiet(export_mixture, back, "olmo-core")  # a recorded budget satisfies formats that need one
    assert yaml.safe_load(olmo)["requested_tokens"] == 1_000_000
    demo = read_mixture(ROOT / "mixtures" / "demo-proposal.yaml")  # every other spec field survives the trip
    again = read_mixture(write_export(demo, "yaml", tmp_path / "demo.yaml"))
    assert again.model_dump(exclude={"weights", "provenance"}) == demo.model_dump(exclude={"weights", "provenance"})
    assert again.weights == pytest.approx({d: w for d, w in demo.weights.items() if w > 0}, abs=1e-11)
    recorded = _quiet(export_mixture, _spec(provenance={"total_tokens": "2B"}), "olmo-core")
    assert yaml.safe_load(recorded)["requested_tokens"] == 2 * 10**9


def test_every_format_is_deterministic(shards, tmp_path) -> None:
    root, manifest = shards
    spec_path = ROOT / "mixtures" / "demo-proposal.yaml"
    for fmt in EXPORT_FORMATS:
        kwargs = {"total_tokens": 10**9, "manifest": manifest, "paths_root": root}
        texts = {_quiet(export_mixture, read_mixture(spec_path), fmt, **kwargs) for _ in range(2)}
        files = [
            _quiet(write_export, read_mixture(spec_path), fmt, tmp_path / f"{fmt}-{i}", **kwargs) for i in range(2)
        ]
        assert len(texts) == 1 and files[0].read_bytes() == files[1].read_bytes() == texts.pop().encode()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(f"{f}-{i}" for f in EXPORT_FORMATS for i in range(2))
