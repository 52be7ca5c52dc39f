"""The pipeline's stages as plain functions over a work directory; flows and the CLI call these."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING

from automixer.config import PipelineConfig
from automixer.io import stable_hash, write_json_atomic
from automixer.progress import Progress

if TYPE_CHECKING:
    import pandas as pd

    from automixer.sweep.runner import Engine

log = logging.getLogger("automixer")


def refresh_manifest(cfg: PipelineConfig) -> dict:
    """Rebuild `shards/manifest.json` over every domain's shards, keeping curation's drop counts."""
    from automixer.shards import build_manifest

    drops_path = cfg.path("curation", "drops.json")
    extra = {"drops": json.loads(drops_path.read_text())} if drops_path.exists() else None
    return build_manifest(cfg.path("shards"), extra=extra)


def check_shards(cfg: PipelineConfig) -> None:
    """Fail with a clear message if a configured domain has no shards."""
    missing = [d for d in cfg.domains if not any(cfg.path("shards", d).glob("*.parquet"))]
    if missing:
        raise FileNotFoundError(
            f"no shards for domain(s) {missing} under {cfg.path('shards')}: run `automixer curate` "
            "(and `automixer synth` for `synthetic`) first, or remove them from `domains`"
        )


def tokenize(cfg: PipelineConfig) -> dict:
    """Train (or load) the tokenizer and tokenize every domain into train/validation arrays."""
    from automixer.proxy.data import prepare_data
    from automixer.tokenizer import train_tokenizer

    check_shards(cfg)
    tok_path = train_tokenizer(
        cfg.tokenizer, cfg.path("shards"), cfg.domains, cfg.path("tokenizer", "tokenizer.json"), cfg.proxy.val_fraction
    )
    return prepare_data(cfg, tok_path, cfg.path("data"))


def available_tokens(cfg: PipelineConfig) -> dict[str, int] | None:
    """Tokens per domain from `shards/manifest.json`, or None when there is no manifest."""
    manifest = cfg.path("shards", "manifest.json")
    if not manifest.exists():
        return None
    domains = json.loads(manifest.read_text()).get("domains", {})
    return {d: int(v["tokens"]) for d, v in domains.items() if "tokens" in v}


def sweep_caps(cfg: PipelineConfig) -> dict[str, float]:
    """Per-domain weight caps the sweep samples within: the proposal's max_weight and repetition caps.

    Empty when `sweep.respect_caps` is off. Available tokens are read as `propose` reads them (the shards
    manifest, overridden by `propose.constraints.available_tokens`), so the sweep explores what the
    proposal may choose.
    """
    from automixer.feasible import repetition_caps

    if not cfg.sweep.respect_caps:
        return {}
    c = cfg.propose.constraints
    caps = {d: float(v) for d, v in c.max_weight.items() if v < 1}
    available = {**(available_tokens(cfg) or {}), **c.available_tokens}
    for d, cap in repetition_caps(cfg.domains, c.max_repetition_ratio, c.full_run_tokens, available).items():
        if cap < 1:
            caps[d] = min(caps.get(d, 1.0), cap)
    return dict(sorted(caps.items()))


def sweep_fingerprint(cfg: PipelineConfig, meta: dict) -> str:
    """A hash of everything that changes what a proxy run would produce (the sweep's caps included)."""
    parts = [cfg.proxy.model_dump_json(), cfg.sweep.model_dump_json(exclude={"workers"}), json.dumps(cfg.domains)]
    caps = sweep_caps(cfg)
    if caps:
        parts.append(json.dumps(caps))
    return stable_hash(*parts, str(meta.get("tokenizer_sha256")))


def _sample(cfg: PipelineConfig, natural: dict, caps: dict, n: int, seed: int, min_distance: float) -> list[dict]:
    """`n` mixtures from the sweep's sampler as configured (one place for design and later rounds)."""
    from automixer.sweep.design import sample_mixtures

    s = cfg.sweep
    return sample_mixtures(
        natural, n, s.concentration, s.min_weight, seed,
        spread=s.spread, min_distance=min_distance, caps=caps, sampler=s.sampler,
    )  # fmt: skip


def design(cfg: PipelineConfig, meta: dict) -> list[dict]:
    """Sample the sweep's mixtures within its caps, plus the anchors' replicates (or reuse the saved design)."""
    from automixer.proxy.data import natural_distribution
    from automixer.sweep.design import add_anchor_replicates, read_design, write_design

    path = cfg.path("sweep", "design.json")
    fp = sweep_fingerprint(cfg, meta)
    fp_path = cfg.path("sweep", "fingerprint.json")
    if path.exists() and fp_path.exists():
        if json.loads(fp_path.read_text())["fingerprint"] != fp:
            raise RuntimeError(
                f"{cfg.path('sweep')} holds a sweep made with other proxy/sweep/tokenizer settings or caps; "
                "use a new work_dir (or delete that folder) to start a different sweep"
            )
        return read_design(path)
    from automixer.sweep.rounds import round_sizes

    natural = natural_distribution(meta)
    s, caps = cfg.sweep, sweep_caps(cfg)
    mixtures = _sample(cfg, natural, caps, round_sizes(s.n_runs, s.rounds)[0], s.seed, s.min_distance)
    mixtures = add_anchor_replicates(mixtures, s.anchors, s.anchor_seeds, s.seed)
    write_design(mixtures, path)
    write_json_atomic(fp_path, {"fingerprint": fp, "natural": natural, "caps": caps})
    return mixtures


def run_proxies(
    cfg: PipelineConfig, mixtures: list[dict], logger: logging.Logger | None = None, engine: Engine | None = None
) -> list[dict]:
    """Train one proxy per mixture (skipping finished runs) and write the runs table.

    `engine` dispatches the attempts (default: `sweep.workers` local worker processes; see `automixer.sweep.runner`).
    """
    logger = logger or log
    from automixer.sweep.runner import run_sweep, sweep_summary
    from automixer.sweep.table import runs_table_from_results, write_runs_table

    runs_dir = cfg.path("sweep", "runs")
    with Progress("proxy runs", len(mixtures), logger) as bar:

        def on_result(result: dict) -> None:
            bpb = result.get("metrics", {}).get("bpb_mean")
            note = f"{result['run_id']} {result['status']}" + (f" bpb_mean={bpb:.4f}" if bpb else "")
            bar.advance(note=note)

        results = run_sweep(
            mixtures, cfg.proxy, cfg.path("data"), runs_dir, cfg.sweep.seed, cfg.sweep.workers, on_result, engine
        )
    table = runs_table_from_results(runs_dir)
    write_runs_table(table, cfg.path("sweep", "runs.parquet"))
    summary = sweep_summary(results)
    if summary["failed"]:
        logger.warning(
            "%d proxy run(s) failed and are excluded from the fit (by reason: %s): %s",
            summary["failed"], summary["failed_by_reason"], summary["failed_runs"],
        )  # fmt: skip
    write_noise_estimate(cfg, table, results, logger)
    return results


def write_noise_estimate(
    cfg: PipelineConfig, table: pd.DataFrame, results: list[dict], logger: logging.Logger | None = None
) -> dict | None:
    """Estimate run-to-run noise from the anchors' replicate runs, write `sweep/noise.json` and log it."""
    from automixer.sweep.noise import estimate_noise, noise_message, write_noise

    if "run_id" not in table.columns or not any(str(c).startswith("weight_") for c in table.columns):
        return None
    metrics = sorted({m for r in results if r.get("status") == "ok" for m in r.get("metrics", {})} & set(table))
    noise = estimate_noise(table, metrics)
    write_noise(noise, cfg.path("sweep", "noise.json"))
    main = "bpb_mean" if "bpb_mean" in metrics else (metrics[0] if metrics else "bpb_mean")
    (logger or log).info(noise_message(noise, main))
    return noise


def plan_round(
    cfg: PipelineConfig, mixtures: list[dict], round_no: int, logger: logging.Logger | None = None
) -> list[dict]:
    """The design with round `round_no` added, chosen by expected improvement (as it is if already planned)."""
    import numpy as np

    from automixer.feasible import feasible_set
    from automixer.fitting import load_target_table, target_noise, target_values
    from automixer.sweep.design import write_design
    from automixer.sweep.rounds import plan_round as choose
    from automixer.sweep.rounds import round_sizes, summarise_round

    logger = logger or log
    if any(item.get("round", 1) == round_no for item in mixtures):
        return mixtures
    s, target = cfg.sweep, cfg.propose.target
    table = load_target_table(cfg.path("sweep", "runs.parquet"), target)
    y = target_values(table, target)
    inputs = propose_inputs(cfg)
    natural, caps = inputs["natural"], sweep_caps(cfg)
    feasible = feasible_set(table.domains, cfg.propose.constraints, natural, inputs["available_tokens"])
    feasible.check()

    def draw(n: int, seed: int) -> np.ndarray:
        runs = _sample(cfg, natural, caps, n, seed, min_distance=0.0)
        return np.array([[m["weights"][d] for d in table.domains] for m in runs])

    sizes = round_sizes(s.n_runs, s.rounds)
    noise = target_noise(table, y)
    new = choose(
        table.X, y, table.domains, draw, feasible, round_no, sizes[round_no - 1], sum(sizes[: round_no - 1]),
        s.n_runs, s.seed, s.acquisition_candidates, noise["sd"] if noise else None,
    )  # fmt: skip
    design = [*mixtures, *new]
    write_design(design, cfg.path("sweep", "design.json"))
    rounds = table.df["round"].fillna(1).to_numpy() if "round" in table.df else np.ones(len(y))
    stats = summarise_round(y[rounds < round_no - 1], y[rounds == round_no - 1])
    logger.info(
        "round %d of %d: %d mixtures chosen by expected improvement; round %d: best %.4f (best before %.4f), "
        "%d of %d runs beat the earlier best",
        round_no, s.rounds, len(new), round_no - 1, stats["best_in_round"], stats["best_before"],
        stats["beat_previous_best"], stats["runs"],
    )  # fmt: skip
    return design


def propose_inputs(cfg: PipelineConfig) -> dict:
    """The natural mixture (from the sweep) and per-domain available tokens (shards manifest), where present."""
    from automixer.proxy.data import natural_distribution

    out: dict = {"natural": None, "available_tokens": available_tokens(cfg)}
    fp, meta = cfg.path("sweep", "fingerprint.json"), cfg.path("data", "meta.json")
    if fp.exists():
        out["natural"] = json.loads(fp.read_text()).get("natural")
    elif meta.exists():
        out["natural"] = natural_distribution(json.loads(meta.read_text()))
    return out


def propose(cfg: PipelineConfig, runs_table: str | Path | None = None) -> dict:
    """Fit the predictor on the runs table and write the constrained proposal to `mixtures/<name>.yaml`."""
    from automixer.fitting import load_target_table, propose_mixture

    p = cfg.propose
    table_path = Path(runs_table) if runs_table else cfg.path("sweep", "runs.parquet")
    if not table_path.exists():
        raise FileNotFoundError(f"runs table not found: {table_path}; run `automixer sweep` first")
    table = load_target_table(table_path, p.target)
    spec, path = propose_mixture(table, p, str(table_path), **propose_inputs(cfg))
    return {"path": str(path), "spec": spec.model_dump(mode="json")}
