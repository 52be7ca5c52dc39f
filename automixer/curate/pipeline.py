"""The datatrove curation pipeline: read, filter, deduplicate, and the stages that run it."""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from automixer.config import CurationConfig
from automixer.io import Location, glob, join, read_text

Stage = tuple[str, list, int, bool]
"""(stage name, datatrove pipeline steps, number of tasks, worth a process pool)."""


def minhash_bands(threshold: float, recall: float = 0.9, max_hashes: int = 112) -> tuple[int, int]:
    """LSH (buckets, hashes per bucket) detecting a pair at the Jaccard threshold with probability >= `recall`,
    with the least false-positive mass below the threshold (fewest pairs under it flagged)."""
    s = np.linspace(0.0, 1.0, 2001)
    below = s <= threshold
    best: tuple[float, int, int] | None = None
    for b in range(1, max_hashes + 1):
        for r in range(1, max_hashes // b + 1):
            if 1.0 - (1.0 - threshold**r) ** b < recall:
                continue
            fp = float(np.trapezoid(1.0 - (1.0 - s[below] ** r) ** b, s[below]))
            if best is None or fp < best[0] - 1e-12:
                best = (fp, b, r)
    if best is None:
        raise ValueError(f"no LSH banding with at most {max_hashes} hashes reaches recall {recall} at {threshold}")
    return best[1], best[2]


def _filter_stage(specs: list[dict], cur: CurationConfig, data: Location, drops: dict, world: int) -> Stage:
    """Read every source, then min_chars, decontamination and the per-domain filters; write survivors."""
    from datatrove.pipeline.writers import JsonlWriter

    from automixer.curate.filters import decontamination, domain_filters, exclusion_writer
    from automixer.curate.steps import MinCharsFilter, SourcesReader

    domains = sorted({s["domain"] for s in specs})
    reader = SourcesReader(specs, errors_folder=str(data / "reader_errors"), html_timeout=cur.html_timeout)
    steps: list = [reader, MinCharsFilter(cur.min_chars, exclusion_writer(cur, data, "min_chars"))]
    drops["reader"] = ("filter", 0, None)
    drops["min_chars"] = ("filter", 1, None)
    named = domain_filters(cur, domains, data)
    if (dc := decontamination(cur, domains, data)) is not None:
        named.insert(0, dc)  # first, so the report lists every contaminated document
    for name, step in named:
        drops[name] = ("filter", len(steps), None)
        steps.append(step)
    steps.append(JsonlWriter(str(data / "filtered"), "${rank}.jsonl", compression=None))
    return ("filter", steps, world, True)


def _dedup_configs(cur: CurationConfig) -> tuple[Any, Any]:
    from datatrove.pipeline.dedup import MinhashConfig
    from datatrove.pipeline.dedup.exact_dedup import ExactDedupConfig
    from datatrove.utils.hashing import HashConfig

    from automixer.curate.steps import exact_content

    b, r = minhash_bands(cur.minhash_threshold)
    exact = ExactDedupConfig(content_getter=exact_content, hash_config=HashConfig(precision=64))
    near = MinhashConfig(
        n_grams=cur.minhash_ngram, num_buckets=b, hashes_per_bucket=r, hash_config=HashConfig(precision=64)
    )
    return exact, near


def _filtered_docs(cur: CurationConfig, data: Location, upto: str, ex_cfg: Any) -> list:
    """Steps replaying this task's filtered documents through the dedup filters decided before `upto`."""
    from datatrove.pipeline.dedup.exact_dedup import ExactDedupFilter
    from datatrove.pipeline.dedup.minhash import MinhashDedupFilter

    from automixer.curate.filters import exclusion_writer
    from automixer.curate.steps import RankFileReader

    final = upto == "final"
    steps: list = [RankFileReader(str(data / "filtered"))]
    if cur.exact_dedup and upto in ("minhash", "final"):
        ex_writer = exclusion_writer(cur, data, "exact_dedup") if final else None
        steps.append(ExactDedupFilter(str(data / "exact_dups"), ex_cfg, exclusion_writer=ex_writer))
    if cur.minhash_dedup and final:
        mh_writer = exclusion_writer(cur, data, "minhash_dedup")
        steps.append(MinhashDedupFilter(str(data / "minhash_remove"), exclusion_writer=mh_writer))
    return steps


def build_stages(
    specs: list[dict], cur: CurationConfig, run_dir: str | Location, tasks: int | None = None
) -> tuple[list[Stage], dict]:
    """The ordered datatrove stages of one curation run, and where each drop counter lives.

    `run_dir` is a folder or fsspec URL; `tasks` splits the input (default `cur.workers`). The second value
    maps a drop name to (stage, step index, fixed reason or None for per-reason stats).
    """
    from datatrove.pipeline.dedup.exact_dedup import ExactDedupSignature, ExactFindDedups
    from datatrove.pipeline.dedup.minhash import MinhashDedupBuckets
    from datatrove.pipeline.writers import JsonlWriter

    from automixer.curate.dedup import BoundedMinhashCluster, ScopedMinhashSignature
    from automixer.curate.steps import DomainCounter, SplitWordTokenizer

    data, world = join(run_dir, "data"), tasks or cur.workers
    drops: dict[str, tuple[str, int, str | None]] = {}
    stages: list[Stage] = [_filter_stage(specs, cur, data, drops, world)]
    ex_cfg, mh_cfg = _dedup_configs(cur)
    if cur.exact_dedup:
        ex_sig = ExactDedupSignature(str(data / "exact_sigs"), ex_cfg)
        stages.append(("exact_sigs", [*_filtered_docs(cur, data, "exact", ex_cfg), ex_sig], world, False))
        ex_find = ExactFindDedups(str(data / "exact_sigs"), str(data / "exact_dups"), ex_cfg)
        stages.append(("exact_find", [ex_find], 1, False))
    if cur.minhash_dedup:
        sig = ScopedMinhashSignature(
            str(data / "minhash_sigs"), mh_cfg, language=SplitWordTokenizer(), scope=cur.dedup_scope
        )
        stages.append(("minhash_sigs", [*_filtered_docs(cur, data, "minhash", ex_cfg), sig], world, True))
        buckets = MinhashDedupBuckets(str(data / "minhash_sigs"), str(data / "minhash_buckets"), config=mh_cfg)
        stages.append(("minhash_buckets", [buckets], mh_cfg.num_buckets, False))
        cluster = BoundedMinhashCluster(
            str(data / "minhash_buckets"), str(data / "minhash_remove"), config=mh_cfg, save_size_histogram=True
        )
        stages.append(("minhash_cluster", [cluster], 1, False))
    final = _filtered_docs(cur, data, "final", ex_cfg)
    if cur.exact_dedup:
        drops["exact_dedup"] = ("final", 1, "exact_duplicate")
    if cur.minhash_dedup:
        drops["minhash_dedup"] = ("final", len(final) - 1, "near_duplicate")
    final += [DomainCounter(), JsonlWriter(str(data / "final"), "${rank}.jsonl", compression=None)]
    stages.append(("final", final, world, False))
    return stages, drops


def stage_stats(run_dir: str | Location, stage: str) -> list[dict[str, float]]:
    """Per-step counters of a finished stage, summed over its tasks."""
    merged: list[dict[str, float]] = []
    for path in glob(join(run_dir, "logs", stage, "stats"), "*.json"):
        for i, step in enumerate(json.loads(read_text(path))):
            if i == len(merged):
                merged.append({})
            for label, value in step.get("stats", {}).items():
                total = value.get("total", 0) if isinstance(value, dict) else value
                merged[i][label] = merged[i].get(label, 0) + total
    return merged


def collect_drops(run_dir: str | Location, drop_spec: dict) -> dict[str, dict[str, int]]:
    """`{filter: {reason: count}}` read from the stages' datatrove stats."""
    cache: dict[str, list[dict[str, float]]] = {}
    drops: dict[str, dict[str, int]] = {}
    for name, (stage, idx, reason) in drop_spec.items():
        steps = cache.setdefault(stage, stage_stats(run_dir, stage))
        stats = steps[idx] if idx < len(steps) else {}
        if reason is None:
            counts = {k.removeprefix("dropped_"): int(v) for k, v in stats.items() if k.startswith("dropped_")}
        else:
            counts = {reason: int(stats.get("dropped", 0))}
        drops[name] = dict(sorted(counts.items()))
    return drops


def domain_counts(run_dir: str | Location, label: str, stage: str, step: int) -> dict[str, int]:
    """Per-domain document counters (`<label>/<domain>`) of one step of a stage."""
    steps = stage_stats(run_dir, stage)
    stats = steps[step] if step < len(steps) else {}
    prefix = f"{label}/"
    return {k.removeprefix(prefix): int(v) for k, v in stats.items() if k.startswith(prefix)}
