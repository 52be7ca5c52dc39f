"""The pipeline's stages as plain functions over a work directory; flows and the CLI call these."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from automixer.config import PipelineConfig
from automixer.io import stable_hash, write_json_atomic
from automixer.progress import Progress

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


def sweep_fingerprint(cfg: PipelineConfig, meta: dict) -> str:
    """A hash of everything that changes what a proxy run would produce."""
    parts = [cfg.proxy.model_dump_json(), cfg.sweep.model_dump_json(exclude={"workers"}), json.dumps(cfg.domains)]
    return stable_hash(*parts, str(meta.get("tokenizer_sha256")))


def design(cfg: PipelineConfig, meta: dict) -> list[dict]:
    """Sample the sweep's mixtures (or reuse the saved design of the same sweep)."""
    from automixer.proxy.data import natural_distribution
    from automixer.sweep.design import read_design, sample_mixtures, write_design

    path = cfg.path("sweep", "design.json")
    fp = sweep_fingerprint(cfg, meta)
    fp_path = cfg.path("sweep", "fingerprint.json")
    if path.exists() and fp_path.exists():
        if json.loads(fp_path.read_text())["fingerprint"] != fp:
            raise RuntimeError(
                f"{cfg.path('sweep')} holds a sweep made with other proxy/sweep/tokenizer settings; "
                "use a new work_dir (or delete that folder) to start a different sweep"
            )
        return read_design(path)
    natural = natural_distribution(meta)
    s = cfg.sweep
    mixtures = sample_mixtures(natural, s.n_runs, s.concentration, s.min_weight, s.seed)
    write_design(mixtures, path)
    write_json_atomic(fp_path, {"fingerprint": fp, "natural": natural})
    return mixtures


def run_proxies(cfg: PipelineConfig, mixtures: list[dict], logger: logging.Logger | None = None) -> list[dict]:
    """Train one proxy per mixture (skipping finished runs) and write the runs table."""
    logger = logger or log
    from automixer.sweep.runner import run_sweep
    from automixer.sweep.table import runs_table_from_results, write_runs_table

    runs_dir = cfg.path("sweep", "runs")
    with Progress("proxy runs", len(mixtures), logger) as bar:

        def on_result(result: dict) -> None:
            bpb = result.get("metrics", {}).get("bpb_mean")
            note = f"{result['run_id']} {result['status']}" + (f" bpb_mean={bpb:.4f}" if bpb else "")
            bar.advance(note=note)

        results = run_sweep(
            mixtures, cfg.proxy, cfg.path("data"), runs_dir, cfg.sweep.seed, cfg.sweep.workers, on_result
        )
    write_runs_table(runs_table_from_results(runs_dir), cfg.path("sweep", "runs.parquet"))
    failed = [r["run_id"] for r in results if r.get("status") != "ok"]
    if failed:
        logger.warning("%d proxy run(s) failed and are excluded from the fit: %s", len(failed), failed)
    return results


def propose_inputs(cfg: PipelineConfig) -> dict:
    """The natural mixture (from the sweep) and per-domain available tokens (shards manifest), where present."""
    from automixer.proxy.data import natural_distribution

    out: dict = {"natural": None, "available_tokens": None}
    fp, meta = cfg.path("sweep", "fingerprint.json"), cfg.path("data", "meta.json")
    if fp.exists():
        out["natural"] = json.loads(fp.read_text()).get("natural")
    elif meta.exists():
        out["natural"] = natural_distribution(json.loads(meta.read_text()))
    manifest = cfg.path("shards", "manifest.json")
    if manifest.exists():
        domains = json.loads(manifest.read_text()).get("domains", {})
        out["available_tokens"] = {d: int(v["tokens"]) for d, v in domains.items() if "tokens" in v}
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
