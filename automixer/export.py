"""Export a mixture spec to the configs training stacks read: Megatron/NeMo, OLMo-core, HF datasets, our YAML."""

from __future__ import annotations

import json
import math
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from automixer.io import Location, is_url, join, write_text_atomic
from automixer.mixture import MixtureSpec, _plain

EXPORT_FORMATS: tuple[str, ...] = ("megatron", "megatron-args", "olmo-core", "hf-interleave", "yaml")
"""Formats `export_mixture` writes (see mixtures/README.md for each one's layout)."""

NEEDS_TOTAL: frozenset[str] = frozenset({"olmo-core"})
"""Formats that cannot be written without a total token budget."""

WEIGHT_DIGITS = 12
"""Decimal places kept in exported weights (then re-closed so they sum to exactly 1.0)."""

_SCALE = {"": 1, "K": 10**3, "M": 10**6, "B": 10**9, "G": 10**9, "T": 10**12}


def parse_token_count(text: str | int) -> int:
    """Parse a token count such as `2000000`, `2_000_000`, `500M`, `1.5B` or `2T` into a positive int."""
    m = re.fullmatch(r"\s*([0-9][0-9_]*(?:\.[0-9]+)?)\s*([KkMmBbGgTt]?)\s*", str(text))
    if not m:
        raise ValueError(f"token count {text!r} is not a number like 2000000, 500M, 1.5B or 2T")
    value = round(float(m.group(1).replace("_", "")) * _SCALE[m.group(2).upper()])
    if value <= 0:
        raise ValueError(f"token count must be positive, got {text!r}")
    return value


@dataclass
class _Domain:
    """One exported domain: its weight, budget and the shards that feed it."""

    name: str
    weight: float
    budget: int | None = None
    shards: list[tuple[str, int]] = field(default_factory=list)
    """(path, tokens) per shard, sorted by path; empty when the domain is a placeholder."""
    docs: int | None = None
    tokens: int | None = None
    """Pre-tokens available in the manifest (None without one)."""

    @property
    def placeholder(self) -> str:
        """The marked placeholder written where the domain's paths are unknown."""
        return f"<{self.name}>"

    @property
    def repetition(self) -> float | None:
        """Passes over the domain's available tokens that its budget needs."""
        if self.budget is None or not self.tokens:
            return None
        return self.budget / self.tokens


@dataclass
class _Plan:
    """Everything every renderer needs, computed once."""

    spec: MixtureSpec
    fmt: str
    domains: list[_Domain]
    omitted: list[str]
    total_tokens: int | None
    seed: int
    max_repetition_ratio: float | None
    global_batch_size: int | None

    @property
    def placeholders(self) -> list[str]:
        """Domains written with a placeholder path (none in the yaml format, which names no paths)."""
        return [] if self.fmt == "yaml" else [d.name for d in self.domains if not d.shards]


def _sums_to_one(values: list[float]) -> bool:
    """Whether both a left-to-right float sum and an exact sum give 1.0."""
    total = 0.0
    for v in values:
        total += v
    return total == 1.0 and math.fsum(values) == 1.0


def close_simplex(weights: dict[str, float], digits: int = WEIGHT_DIGITS) -> dict[str, float]:
    """Normalise positive weights, round them, and close them so their float sum (in order) is exactly 1.0."""
    total = math.fsum(weights.values())
    out = {k: round(w / total, digits) for k, w in weights.items()}
    for k in sorted(out, key=lambda k: (-out[k], k)):  # prefer a short decimal: one weight absorbs the rounding
        trial = {**out, k: round(1.0 - math.fsum(v for j, v in out.items() if j != k), digits)}
        if _sums_to_one(list(trial.values())):
            return trial
    last = list(out)[-1]  # the last term of a left-to-right sum can close it: search ulps around 1 - rest
    others = [out[k] for k in out if k != last]
    prefix = 0.0
    for v in others:
        prefix += v
    candidates = [x for start in (1.0 - math.fsum(others), 1.0 - prefix) for x in _ulps_around(start, 16) if x > 0]
    fits = [x for x in candidates if _sums_to_one([*others, x])] + [x for x in candidates if prefix + x == 1.0]
    out[last] = (fits or [1.0 - prefix])[0]
    return out


def _ulps_around(x: float, n: int) -> list[float]:
    """`x` then its neighbours up to `n` ulps away, nearest first."""
    out, lo, hi = [x], x, x
    for _ in range(n):
        lo, hi = math.nextafter(lo, -math.inf), math.nextafter(hi, math.inf)
        out += [lo, hi]
    return out


def _apportion(weights: dict[str, float], total: int) -> dict[str, int]:
    """Integer budgets proportional to `weights` summing exactly to `total` (largest remainder)."""
    exact = {k: w * total for k, w in weights.items()}
    out = {k: math.floor(v) for k, v in exact.items()}
    short = total - sum(out.values())
    for k in sorted(exact, key=lambda k: (-(exact[k] - out[k]), k))[:short]:
        out[k] += 1
    return out


def _spec_total(spec: MixtureSpec) -> int | None:
    """The total token budget the spec records in its provenance, if any."""
    prov = spec.provenance
    for raw in (prov.get("total_tokens"), (prov.get("export") or {}).get("total_tokens")):
        if raw is not None:
            return parse_token_count(raw)
    return None


def _omitted(spec: MixtureSpec) -> list[str]:
    """Zero-weight domains of the spec, plus those an earlier export of it already dropped."""
    earlier = (spec.provenance.get("export") or {}).get("omitted_zero_weight") or []
    return [d for d, w in spec.weights.items() if w == 0] + [d for d in earlier if d not in spec.weights]


def _manifest_shards(manifest: dict, paths_root: str | None) -> dict[str, list[tuple[str, int, int]]]:
    """Non-empty shards' (path, tokens, docs) per domain from a `shards/manifest.json`, paths joined to `paths_root`."""
    if not isinstance(manifest, dict) or not isinstance(manifest.get("shards"), list):
        raise ValueError("manifest has no `shards` list; pass the shards/manifest.json written by curate/synth")
    out: dict[str, list[tuple[str, int, int]]] = {}
    for entry in manifest["shards"]:
        path = str(entry["path"])
        if paths_root:
            path = (
                str(join(paths_root, path))
                if is_url(paths_root)
                else str(PurePosixPath(Path(paths_root).as_posix()) / path)
            )
        tokens, docs = int(entry.get("tokens", 0)), int(entry.get("docs", 0))
        if tokens > 0:
            out.setdefault(str(entry["domain"]), []).append((path, tokens, docs))
    return {d: sorted(v) for d, v in out.items()}


def _plan(spec: MixtureSpec, fmt: str, total_tokens: int | None, manifest: dict | None, **opts: Any) -> _Plan:
    """Resolve budgets, shard paths and omissions for one export, raising on unusable input."""
    if fmt not in EXPORT_FORMATS:
        raise ValueError(f"unknown export format {fmt!r}; choose one of: {', '.join(EXPORT_FORMATS)}")
    total = total_tokens if total_tokens is not None else _spec_total(spec)
    if total is not None and total <= 0:
        raise ValueError(f"total_tokens must be positive, got {total}")
    if total is None and fmt in NEEDS_TOTAL:
        raise ValueError(
            f"format {fmt!r} needs a total token budget: pass --tokens (e.g. --tokens 2B) "
            "or record `total_tokens` in the spec's provenance"
        )
    positive = {d: w for d, w in spec.weights.items() if w > 0}
    weights = close_simplex(positive)
    budgets = _apportion(weights, total) if total is not None else {}
    shards = _manifest_shards(manifest, opts.get("paths_root")) if manifest is not None else {}
    domains = []
    for name, w in weights.items():
        found = shards.get(name, [])
        tokens, docs = (sum(e[1] for e in found), sum(e[2] for e in found)) if found else (None, None)
        domains.append(_Domain(name, w, budgets.get(name), [(p, t) for p, t, _ in found], docs, tokens))
    seed = opts.get("seed")
    plan = _Plan(
        spec=spec,
        fmt=fmt,
        domains=domains,
        omitted=_omitted(spec),
        total_tokens=total,
        seed=int(seed if seed is not None else spec.provenance.get("seed", 0)),
        max_repetition_ratio=opts.get("max_repetition_ratio"),
        global_batch_size=opts.get("global_batch_size"),
    )
    _check_plan(plan, manifest is not None)
    return plan


def _check_plan(plan: _Plan, have_manifest: bool) -> None:
    """Warn about placeholders and over-repeated domains; raise past an explicit repetition cap."""
    if plan.placeholders:
        why = "not in the manifest" if have_manifest else "no shards manifest given"
        warnings.warn(
            f"no shard paths for domain(s) {plan.placeholders} ({why}): wrote placeholders "
            f"{[f'<{d}>' for d in plan.placeholders]}; replace them before training",
            stacklevel=4,
        )
    cap = plan.max_repetition_ratio
    if cap is not None and cap < 1:
        raise ValueError(f"max_repetition_ratio must be >= 1, got {cap}")
    if plan.global_batch_size is not None and plan.global_batch_size <= 0:
        raise ValueError(f"global_batch_size must be positive, got {plan.global_batch_size}")
    over = {d.name: d.repetition for d in plan.domains if d.repetition is not None and d.repetition > (cap or 1.0)}
    if not over:
        return
    detail = ", ".join(f"{name} {rep:.2f}" for name, rep in over.items())
    if cap is not None:
        raise ValueError(
            f"the token budget needs more passes over the data than max_repetition_ratio={cap} allows "
            f"({detail} passes over the manifest's tokens); lower --tokens, raise the cap, or add data"
        )
    warnings.warn(f"the token budget repeats data: {detail} passes over the manifest's pre-tokens", stacklevel=4)


def _header(plan: _Plan) -> list[str]:
    """Comment lines: source mixture, budget, per-domain table (budgets, paths), omitted domains."""
    total = f"{plan.total_tokens}" if plan.total_tokens is not None else "not set (pass --tokens)"
    lines = [
        f"automixer export ({plan.fmt}) of mixture '{plan.spec.name}' (target {plan.spec.target})",
        f"total_tokens: {total}; budgets count the training tokenizer's tokens; manifest sizes are pre-tokens",
        f"{'domain':<14} {'weight':<20} {'token_budget':>14}  paths",
    ]
    for d in plan.domains:
        parts = [f"{len(d.shards)} shard(s)"] if d.shards else []
        if d.name in plan.placeholders:
            parts.append(f"PLACEHOLDER {d.placeholder}")
        if d.repetition is not None:
            parts.append(f"{d.repetition:.3g} pass(es) over {d.tokens} pre-tokens")
        budget = str(d.budget) if d.budget is not None else "-"
        lines.append(f"{d.name:<14} {repr(d.weight):<20} {budget:>14}  {', '.join(parts)}")
    lines.append(f"omitted (weight 0): {', '.join(plan.omitted) or 'none'}")
    return [f"# {line}".rstrip() for line in lines]


def _megatron_blend(plan: _Plan) -> list[tuple[float, str]]:
    """(weight, prefix) pairs: each domain's weight split over its shards by their tokens."""
    raw: dict[str, float] = {}
    for d in plan.domains:
        if not d.shards:
            raw[d.placeholder] = d.weight
            continue
        for path, tokens in d.shards:
            raw[_token_file(path, "_text_document")] = d.weight * tokens / d.tokens  # type: ignore[operator]
    return [(w, prefix) for prefix, w in close_simplex(raw).items()]


def _token_file(shard_path: str, suffix: str) -> str:
    """The tokenised-file path of a Parquet shard: same folder and stem, the trainer's suffix."""
    return shard_path[: -len(".parquet")] + suffix if shard_path.endswith(".parquet") else shard_path + suffix


def _render_megatron(plan: _Plan) -> str:
    """NeMo `model.data.data_prefix` YAML; the Megatron-LM `--data-path` pairs in its comments."""
    blend = _megatron_blend(plan)
    doc = {"model": {"data": {"data_prefix": [x for w, p in blend for x in (w, p)]}}}
    notes = [
        "# Megatron-LM: --data-path <the pairs below> (or `--format megatron-args` for --data-args-path).",
        "# NeMo: merge `model.data.data_prefix`. Prefixes name <prefix>.bin/.idx indexed datasets: tokenise each",
        "# shard with Megatron's tools/preprocess_data.py --output-prefix <shard path without .parquet>.",
        "# --data-path " + " ".join(f"{w!r} {p}" for w, p in blend),
    ]
    return "\n".join([*_header(plan), *notes]) + "\n" + yaml.safe_dump(doc, sort_keys=False)


def _render_megatron_args(plan: _Plan) -> str:
    """The whitespace-separated `weight prefix` pairs Megatron-LM's --data-args-path reads (no comments)."""
    return "".join(f"{w!r} {p}\n" for w, p in _megatron_blend(plan))


def _render_olmo_core(plan: _Plan) -> str:
    """An OLMo-core SourceMixtureDatasetConfig (source_list, requested_tokens, global_batch_size, seed)."""
    cap = plan.max_repetition_ratio if plan.max_repetition_ratio is not None else 1.0
    sources = [
        {
            "source_name": d.name,
            "target_ratio": d.weight,
            "paths": [_token_file(p, ".npy") for p, _ in d.shards] or [d.placeholder],
            "max_repetition_ratio": float(cap),
        }
        for d in plan.domains
    ]
    doc = {"source_list": {"sources": sources}, "requested_tokens": plan.total_tokens}
    doc["global_batch_size"] = plan.global_batch_size
    doc["seed"] = plan.seed
    notes = [
        "# OLMo-core SourceMixtureDatasetConfig (OLMo-core >= 3: source_list.sources; before SourceMixtureList,",
        "# move the same entries to a top-level `source_configs`). Paths are the shards tokenised to OLMo numpy",
        "# token files (<shard path without .parquet>.npy). target_ratio sums to exactly 1.0.",
    ]
    if plan.global_batch_size is None:
        notes.append("# global_batch_size: set it (tokens per global batch, a multiple of the sequence length).")
    return "\n".join([*_header(plan), *notes]) + "\n" + yaml.safe_dump(doc, sort_keys=False)


def _hf_probabilities(plan: _Plan) -> tuple[list[float], str]:
    """Per-example probabilities realising the token weights (by mean doc length when the manifest gives it)."""
    if all(d.docs and d.tokens for d in plan.domains):
        raw = {d.name: d.weight * d.docs / d.tokens for d in plan.domains}  # type: ignore[operator]
        return list(close_simplex(raw).values()), "documents"
    return [d.weight for d in plan.domains], "tokens"


def _render_hf_interleave(plan: _Plan) -> str:
    """JSON for datasets.interleave_datasets: datasets, aligned probabilities, strategy, seed, budgets."""
    probs, basis = _hf_probabilities(plan)
    doc = {
        "format": "hf-interleave",
        "mixture": plan.spec.name,
        "datasets": [
            {"name": d.name, "builder": "parquet", "data_files": [p for p, _ in d.shards] or [d.placeholder]}
            for d in plan.domains
        ],
        "probabilities": probs,
        "probabilities_basis": basis,
        "token_weights": {d.name: d.weight for d in plan.domains},
        "stopping_strategy": "all_exhausted",
        "seed": plan.seed,
        "total_tokens": plan.total_tokens,
        "token_budgets": {d.name: d.budget for d in plan.domains} if plan.total_tokens is not None else None,
        "omitted_zero_weight": plan.omitted,
        "placeholders": plan.placeholders,
        "note": (
            "interleave_datasets samples examples: probabilities are per document, set so that each domain's "
            "share of tokens matches token_weights (basis 'documents': from the manifest's mean document length; "
            "basis 'tokens': no manifest, so probabilities equal the token weights). Stop reading once "
            "total_tokens are consumed; all_exhausted repeats a domain rather than end early."
        ),
    }
    return json.dumps(doc, indent=2) + "\n"


def _render_yaml(plan: _Plan) -> str:
    """Our mixture YAML (read_mixture reads it back), zero-weight domains dropped, budgets in provenance."""
    export = {
        "total_tokens": plan.total_tokens,
        "token_budgets": {d.name: d.budget for d in plan.domains} if plan.total_tokens is not None else None,
        "omitted_zero_weight": plan.omitted,
    }
    spec = plan.spec
    doc: dict[str, Any] = {"name": spec.name, "target": spec.target, "predicted_target": spec.predicted_target}
    doc["weights"] = {d.name: d.weight for d in plan.domains}
    for key, value in spec.model_dump(mode="json", exclude={"provenance"}, exclude_none=True).items():
        doc.setdefault(key, value)  # any further spec field (e.g. uncertainty), so read_mixture gets it back
    doc["provenance"] = {**_plain(spec.provenance), "export": export}
    body = yaml.safe_dump(doc, sort_keys=False, default_flow_style=False)
    return "\n".join(_header(plan)) + "\n" + body


_RENDERERS = {
    "megatron": _render_megatron,
    "megatron-args": _render_megatron_args,
    "olmo-core": _render_olmo_core,
    "hf-interleave": _render_hf_interleave,
    "yaml": _render_yaml,
}


def export_mixture(
    spec: MixtureSpec,
    fmt: str,
    *,
    total_tokens: int | None = None,
    manifest: dict | None = None,
    max_repetition_ratio: float | None = None,
    paths_root: str | Path | None = None,
    global_batch_size: int | None = None,
    seed: int | None = None,
) -> str:
    """The text of `spec` exported in format `fmt` (deterministic: same input, same bytes)."""
    plan = _plan(
        spec,
        fmt,
        total_tokens,
        manifest,
        paths_root=str(paths_root) if paths_root is not None else None,
        max_repetition_ratio=max_repetition_ratio,
        global_batch_size=global_batch_size,
        seed=seed,
    )
    return _RENDERERS[fmt](plan)


def write_export(spec: MixtureSpec, fmt: str, out: str | Path, **kwargs: Any) -> Location:
    """Export `spec` in format `fmt` and write it to `out` (a path or fsspec URL) atomically; kwargs as for export_mixture."""
    return write_text_atomic(out, export_mixture(spec, fmt, **kwargs))
