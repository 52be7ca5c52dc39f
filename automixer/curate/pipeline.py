"""The datatrove curation pipeline: read, filter, deduplicate, and the stages that run it."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from automixer.config import CurationConfig

Stage = tuple[str, list, int, bool]
"""(stage name, datatrove pipeline steps, number of tasks, worth a process pool)."""


def minhash_bands(threshold: float, max_hashes: int = 112) -> tuple[int, int]:
    """LSH (buckets, hashes per bucket) minimising false positives + negatives around a Jaccard threshold."""
    s = np.linspace(0.0, 1.0, 2001)
    lo, hi = s <= threshold, s >= threshold
    best: tuple[float, int, int] | None = None
    for b in range(1, max_hashes + 1):
        for r in range(1, max_hashes // b + 1):
            p = 1.0 - (1.0 - s**r) ** b
            err = float(np.trapezoid(p[lo], s[lo]) + np.trapezoid(1.0 - p[hi], s[hi]))
            if best is None or err < best[0] - 1e-12:
                best = (err, b, r)
    assert best is not None
    return best[1], best[2]


def _filter_stage(specs: list[dict], cur: CurationConfig, data: Path, drops: dict) -> Stage:
    from datatrove.pipeline.writers import JsonlWriter

    from automixer.curate.steps import DomainGopherQuality, DomainGopherRepetition, MinCharsFilter, SourcesReader

    steps: list = [SourcesReader(specs), MinCharsFilter(cur.min_chars)]
    drops["min_chars"] = ("filter", 1, None)
    for name, enabled, cls in (
        ("gopher_quality", cur.gopher_quality, DomainGopherQuality),
        ("gopher_repetition", cur.gopher_repetition, DomainGopherRepetition),
    ):
        if enabled and cur.filter_domains:
            drops[name] = ("filter", len(steps), None)
            steps.append(cls(cur.filter_domains))
    steps.append(JsonlWriter(str(data / "filtered"), "${rank}.jsonl", compression=None))
    return ("filter", steps, cur.workers, True)


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


def _filtered_docs(cur: CurationConfig, data: Path, upto: str, ex_cfg: Any) -> list:
    """Steps replaying this task's filtered documents through the dedup filters decided before `upto`."""
    from datatrove.pipeline.dedup.exact_dedup import ExactDedupFilter
    from datatrove.pipeline.dedup.minhash import MinhashDedupFilter

    from automixer.curate.steps import RankFileReader

    steps: list = [RankFileReader(str(data / "filtered"))]
    if cur.exact_dedup and upto in ("minhash", "final"):
        steps.append(ExactDedupFilter(str(data / "exact_dups"), ex_cfg))
    if cur.minhash_dedup and upto == "final":
        steps.append(MinhashDedupFilter(str(data / "minhash_remove")))
    return steps


def build_stages(specs: list[dict], cur: CurationConfig, run_dir: Path) -> tuple[list[Stage], dict]:
    """The ordered datatrove stages of one curation run, and where each drop counter lives.

    The second value maps a drop name to (stage, step index, fixed reason or None for per-reason stats).
    """
    from datatrove.pipeline.dedup import MinhashDedupSignature
    from datatrove.pipeline.dedup.exact_dedup import ExactDedupSignature, ExactFindDedups
    from datatrove.pipeline.dedup.minhash import MinhashDedupBuckets, MinhashDedupCluster
    from datatrove.pipeline.writers import JsonlWriter

    from automixer.curate.steps import DomainCounter, SplitWordTokenizer

    data, world = run_dir / "data", cur.workers
    drops: dict[str, tuple[str, int, str | None]] = {}
    stages: list[Stage] = [_filter_stage(specs, cur, data, drops)]
    ex_cfg, mh_cfg = _dedup_configs(cur)
    if cur.exact_dedup:
        ex_sig = ExactDedupSignature(str(data / "exact_sigs"), ex_cfg)
        stages.append(("exact_sigs", [*_filtered_docs(cur, data, "exact", ex_cfg), ex_sig], world, False))
        ex_find = ExactFindDedups(str(data / "exact_sigs"), str(data / "exact_dups"), ex_cfg)
        stages.append(("exact_find", [ex_find], 1, False))
    if cur.minhash_dedup:
        sig = MinhashDedupSignature(str(data / "minhash_sigs"), mh_cfg, language=SplitWordTokenizer())
        stages.append(("minhash_sigs", [*_filtered_docs(cur, data, "minhash", ex_cfg), sig], world, True))
        buckets = MinhashDedupBuckets(str(data / "minhash_sigs"), str(data / "minhash_buckets"), config=mh_cfg)
        stages.append(("minhash_buckets", [buckets], mh_cfg.num_buckets, False))
        cluster = MinhashDedupCluster(str(data / "minhash_buckets"), str(data / "minhash_remove"), config=mh_cfg)
        stages.append(("minhash_cluster", [cluster], 1, False))
    final = _filtered_docs(cur, data, "final", ex_cfg)
    if cur.exact_dedup:
        drops["exact_dedup"] = ("final", 1, "exact_duplicate")
    if cur.minhash_dedup:
        drops["minhash_dedup"] = ("final", len(final) - 1, "near_duplicate")
    final += [DomainCounter(), JsonlWriter(str(data / "final"), "${rank}.jsonl", compression=None)]
    stages.append(("final", final, world, False))
    return stages, drops


def run_stages(stages: list[Stage], run_dir: Path, workers: int, progress: Callable[[str], None] | None = None) -> None:
    """Run each stage with datatrove's local executor; completed tasks of a stage are skipped on rerun.

    Only heavy stages get a process pool (`workers` > 1); light ones run their tasks in this process,
    which is faster than starting a pool.
    """
    from datatrove.executor import LocalPipelineExecutor

    for name, steps, tasks, parallel in stages:
        n_workers = min(workers, tasks) if parallel else 1
        if progress:
            progress(
                f"curate: stage {name} ({tasks} task{'s' * (tasks > 1)}, {n_workers} worker{'s' * (n_workers > 1)})"
            )
        executor = LocalPipelineExecutor(
            steps, tasks=tasks, workers=n_workers, logging_dir=str(run_dir / "logs" / name), skip_completed=True
        )
        _quietly(executor.run, run_dir / "logs" / name / "console.log")


def _quietly(fn: Callable[[], Any], log_path: Path) -> None:
    """Run `fn` with datatrove's console output (pipeline banners, stats tables) sent to `log_path`."""
    import contextlib
    import sys

    from loguru import logger

    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "a") as log, contextlib.redirect_stderr(log), contextlib.redirect_stdout(log):
        try:
            fn()
        finally:
            logger.remove()  # datatrove's sinks point at `log`, which closes here
            logger.add(sys.stderr, level="WARNING")


def stage_stats(run_dir: Path, stage: str) -> list[dict[str, float]]:
    """Per-step counters of a finished stage, summed over its tasks."""
    merged: list[dict[str, float]] = []
    for path in sorted((run_dir / "logs" / stage / "stats").glob("*.json")):
        for i, step in enumerate(json.loads(path.read_text())):
            if i == len(merged):
                merged.append({})
            for label, value in step.get("stats", {}).items():
                total = value.get("total", 0) if isinstance(value, dict) else value
                merged[i][label] = merged[i].get(label, 0) + total
    return merged


def collect_drops(run_dir: Path, drop_spec: dict) -> dict[str, dict[str, int]]:
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


def domain_counts(run_dir: Path, label: str, stage: str, step: int) -> dict[str, int]:
    """Per-domain document counters (`<label>/<domain>`) of one step of a stage."""
    steps = stage_stats(run_dir, stage)
    stats = steps[step] if step < len(steps) else {}
    prefix = f"{label}/"
    return {k.removeprefix(prefix): int(v) for k, v in stats.items() if k.startswith(prefix)}
