"""Proof at scale: does the proposal still win, and does the sweep's ranking hold, at ~scale x the proxy?

On a finished demo (`make demo`: `<demo>/config.yaml`, `data/`, `sweep/runs.parquet`), the bench
- proposes a mixture with the product's own path (`automixer.stages.propose`: the config's target, predictor
  and constraints; bootstrap off, the YAML written under --out, nothing written into the demo);
- takes three baselines: the natural mixture (`sweep/fingerprint.json`), uniform, and the best mixture seen
  in the sweep (lowest target in runs.parquet);
- builds the scaled proxy: the demo's ProxyConfig with `train_tokens` x scale and the (d_model, n_layers)
  whose parameter count (tied embedding once) is nearest scale x the proxy's; among shapes within 5% of the
  target it keeps the one whose width/depth ratio is nearest the proxy's; head size stays the proxy's;
- trains the four mixtures with --seeds seeds at proxy scale (1x) and at the scaled size, plus --subset
  sweep mixtures (spread evenly over the sweep's ranking, best-seen and natural runs left out) at the
  scaled size with the sweep's seed; the subset's 1x values are the sweep's own. Same data, same val set;
- trains the four mixtures at each --ladder scale between (default 2x) too, and prints every mixture's target
  and per-domain bpb at each scale: where along the ladder the ranking of the four changes, and on which domain;
- headroom: fits the product's predictors (auto, loglinear, gp, linear) on the scaled runs themselves and minimises
  each under the same constraints (`propose_mixture`, which also predicts uniform weights): how much any mixture is
  predicted to beat uniform by at the scaled size (written to `<out>/runs-<scale>.parquet` and `headroom-*.yaml`).

"Beats by more than the noise": with Δ = mean(baseline) - mean(proposal) over seeds and s the pooled
per-seed sd of the four mixtures at that scale (degrees of freedom Σ(n_i - 1)), the proposal beats a
baseline iff Δ > 2·SE, SE = s·sqrt(1/n_proposal + 1/n_baseline); the one-sided t p-value is shown too.
Rank transfer: Spearman and Kendall between 1x and scaled target over the subset plus the four mixtures,
all at the sweep's seed. A rerun skips finished runs; all numbers go to `<out>/transfer.json`.

    .venv/bin/python bench/transfer.py [--demo runs/demo-full] [--seeds 3] [--subset 8] [--scale 4] [--ladder 2]
    .venv/bin/python bench/transfer.py --quick   # scale 2, 2 seeds, 4 subset mixtures, no ladder: a smoke run
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from transfer_tables import (  # noqa: E402
    MIXTURES,
    Z,
    fmt_weights,
    print_headroom,
    print_ladder_tables,
    print_mixture_table,
    print_rank_table,
)

from automixer.config import PipelineConfig, ProxyConfig  # noqa: E402

SHAPE_TOL = 0.05
"""Scaled shapes within this relative distance of the target parameter count are treated as equally close."""
RESULT_KEYS = ("d_model", "n_layers", "n_heads", "seq_len", "batch_size", "train_tokens", "lr", "precision")


def count_proxy_params(cfg: ProxyConfig, vocab: int) -> int:
    """Trainable parameters of the proxy `cfg` describes (tied embedding counted once), without allocating it."""
    import torch

    from automixer.proxy.model import ProxyLM, count_params

    with torch.device("meta"):
        return count_params(ProxyLM(vocab, cfg.d_model, cfg.n_layers, cfg.n_heads, cfg.seq_len))


def scaled_proxy(cfg: ProxyConfig, vocab: int, scale: float, tol: float = SHAPE_TOL) -> tuple[ProxyConfig, dict]:
    """The proxy at ~scale x parameters and exactly scale x tokens, and {base_params, params, ratio}."""
    if scale < 1:
        raise ValueError(f"scale must be >= 1, got {scale}")
    base = count_proxy_params(cfg, vocab)
    head = cfg.d_model // cfg.n_heads
    aspect0 = cfg.d_model / cfg.n_layers
    shapes = []
    for d in range(cfg.d_model, math.ceil(cfg.d_model * scale) + 1, head):
        for n_layers in range(cfg.n_layers, math.ceil(cfg.n_layers * scale) + 1):
            shape = cfg.model_copy(update={"d_model": d, "n_layers": n_layers, "n_heads": d // head})
            shapes.append((shape, count_proxy_params(shape, vocab)))
    off = [abs(math.log(n / (scale * base))) for _, n in shapes]
    near = [i for i, o in enumerate(off) if o <= math.log1p(tol)]
    if near:
        best = min(near, key=lambda i: (abs(math.log(shapes[i][0].d_model / shapes[i][0].n_layers / aspect0)), off[i]))
    else:
        best = int(np.argmin(off))
    shape, n = shapes[best]
    out = shape.model_copy(update={"train_tokens": round(cfg.train_tokens * scale)})
    return out, {"base_params": base, "params": n, "ratio": n / base}


def pooled_sd(groups: list[list[float]]) -> tuple[float, int]:
    """Pooled within-group sd and its degrees of freedom (NaN, 0 without replicates): the sweep's own estimator."""
    from automixer.sweep.noise import pooled_sd as library_pooled_sd

    y = [v for g in groups for v in g]
    labels = [i for i, g in enumerate(groups) for _ in g]
    sd, dof = library_pooled_sd(np.asarray(y, dtype=float), np.asarray(labels))
    return (math.nan, 0) if sd is None else (sd, dof)


def beats_by_noise(proposal: list[float], baseline: list[float], sd: float, dof: int, z: float = Z) -> dict:
    """Δ = mean(baseline) - mean(proposal), its SE from the pooled sd, and whether Δ > z·SE (None: no noise estimate)."""
    from scipy.stats import t

    delta = float(np.mean(baseline) - np.mean(proposal))
    se = sd * math.sqrt(1 / len(proposal) + 1 / len(baseline))
    if not (math.isfinite(se) and dof > 0):
        return {"delta": delta, "se": math.nan, "beats": None, "p_one_sided": math.nan}
    p = float(t.sf(delta / se, dof)) if se > 0 else float(delta <= 0)
    return {"delta": delta, "se": se, "beats": bool(delta > z * se), "p_one_sided": p}


def beats_by_welch(proposal: list[float], baseline: list[float], z: float = Z) -> dict:
    """Δ and whether Δ > z·SE with the pair's own variances (Welch): fairer when one mixture is far noisier."""
    from scipy.stats import ttest_ind

    delta = float(np.mean(baseline) - np.mean(proposal))
    if min(len(proposal), len(baseline)) < 2:
        return {"delta": delta, "se": math.nan, "beats": None, "p_one_sided": math.nan}
    se = math.sqrt(np.var(proposal, ddof=1) / len(proposal) + np.var(baseline, ddof=1) / len(baseline))
    p = float(ttest_ind(baseline, proposal, equal_var=False, alternative="greater").pvalue) if se > 0 else math.nan
    return {"delta": delta, "se": se, "beats": bool(delta > z * se), "p_one_sided": p}


def choose_subset(run_ids: list[str], values: list[float], k: int, exclude: set[str]) -> list[str]:
    """`k` runs spread evenly over the ranking by value (best and worst included), leaving out `exclude`."""
    ranked = [r for _, r in sorted(zip(values, run_ids, strict=True)) if r not in exclude]
    if k >= len(ranked):
        return ranked
    return [ranked[i] for i in np.linspace(0, len(ranked) - 1, k).round().astype(int)]


def demo_config(demo: Path, out: Path) -> PipelineConfig:
    """The demo's config, rooted at `demo`, its proposal written under `out` with bootstrap off."""
    from automixer.config import load_config

    missing = [p for p in ("config.yaml", "data/meta.json", "sweep/runs.parquet") if not (demo / p).is_file()]
    if missing:
        raise SystemExit(f"no finished demo at {demo} (missing {missing}): run `make demo` first (~15 min)")
    cfg = load_config(demo / "config.yaml", {"work_dir": str(demo)})
    cfg.propose = cfg.propose.model_copy(update={"mixtures_dir": str(out), "bootstrap": 0})
    return cfg


def mixtures(cfg: PipelineConfig, subset: int) -> tuple[dict[str, dict], dict[str, dict], dict]:
    """The proposal and baselines, the subset of sweep mixtures with their 1x target, and the proposal's record."""
    from automixer.fitting import load_target_table, target_values
    from automixer.stages import propose, propose_inputs

    table = load_target_table(cfg.path("sweep", "runs.parquet"), cfg.propose.target)
    doms, ids, y = table.domains, table.run_ids, target_values(table, cfg.propose.target)
    prop = propose(cfg)
    natural = propose_inputs(cfg)["natural"] or dict(zip(doms, table.X.mean(axis=0), strict=True))
    best = int(np.argmin(y))
    mix = {
        "proposal": {d: float(prop["spec"]["weights"][d]) for d in doms},
        "natural": {d: float(natural[d]) for d in doms},
        "uniform": {d: 1 / len(doms) for d in doms},
        "best-seen": dict(zip(doms, table.X[best].tolist(), strict=True)),
    }
    nat = np.array([mix["natural"][d] for d in doms])
    exclude = {ids[best]} | {r for r, x in zip(ids, table.X, strict=True) if np.abs(x - nat).sum() < 1e-6}
    if "replicate_of" in table.df:  # distinct mixtures only: an anchor's replicates are the same mixture
        exclude |= {r for r, rep in zip(ids, table.df["replicate_of"], strict=True) if isinstance(rep, str) and rep}
    seeds = table.df["seed"].tolist() if "seed" in table.df else [cfg.sweep.seed] * len(ids)
    sub = {}
    for r in choose_subset(ids, y.tolist(), subset, exclude):
        i = ids.index(r)
        sub[r] = {"weights": dict(zip(doms, table.X[i].tolist(), strict=True)), "seed": int(seeds[i]), "x1": y[i]}
    spec = prop["spec"]
    record = {"path": prop["path"], "predicted_target": spec["predicted_target"], "best_seen_run": ids[best]}
    return mix, sub, {**record, "predictor": spec["provenance"]["predictor"]}


def target_of(metrics: dict, target: str | dict) -> float:
    """The target value of one finished run's metrics."""
    from automixer.fitting import target_weights

    return sum(w * metrics[c] for c, w in target_weights(target).items())


def finished(res: dict[str, dict]) -> dict[str, dict]:
    """The metrics of every run that finished, per scale: {label: {run_id: metrics}}."""
    return {label: {k: r["metrics"] for k, r in rr.items() if r.get("status") == "ok"} for label, rr in res.items()}


def _check_stale(items: list[dict], cfg: ProxyConfig, runs_dir: Path) -> None:
    """Refuse to reuse a finished run trained with other weights or another proxy shape."""
    for item in items:
        path = runs_dir / item["run_id"] / "result.json"
        if not path.is_file():
            continue
        old = json.loads(path.read_text())
        w = old.get("weights", {})
        same_w = all(abs(w.get(d, 0.0) - v / sum(item["weights"].values())) < 1e-9 for d, v in item["weights"].items())
        same_p = all(old.get("proxy", {}).get(k) == getattr(cfg, k) for k in RESULT_KEYS)
        if not (same_w and same_p):
            raise SystemExit(f"{path} was trained with other weights or proxy settings; remove {runs_dir} to rerun")


def train(items: list[dict], cfg: ProxyConfig, data: Path, runs_dir: Path, workers: int, label: str) -> dict:
    """Train (or reuse) every item, grouped by seed; {run_id: result}, with a progress line per run."""
    from automixer.sweep.runner import run_sweep

    _check_stale(items, cfg, runs_dir)
    seeds = sorted({it["seed"] for it in items})
    done, t0, results = 0, time.perf_counter(), {}

    def on_result(r: dict) -> None:
        nonlocal done
        done += 1
        bpb = r.get("metrics", {}).get("bpb_mean")
        note = f"bpb_mean={bpb:.4f}" if bpb is not None else r.get("error", "")
        print(
            f"  [{label} {done}/{len(items)}] {r['run_id']} {r['status']} {note} run {r.get('wall_s', 0):.0f} s, "
            f"elapsed {time.perf_counter() - t0:.0f} s",
            flush=True,
        )

    for seed in seeds:
        group = [it for it in items if it["seed"] == seed]
        for r in run_sweep(group, cfg, data, runs_dir, seed, workers, on_result):
            results[r["run_id"]] = r
    failed = sorted(k for k, r in results.items() if r.get("status") != "ok")
    if failed:
        print(f"  {label}: {len(failed)} run(s) failed and are left out: {failed}", flush=True)
    return results


def summarise(values: dict[str, dict[str, list[float]]]) -> dict:
    """Per scale: mean/sd/min/max per mixture, the pooled noise, and each baseline against the proposal."""
    out = {}
    for scale, per in values.items():
        sd, dof = pooled_sd([v for v in per.values() if v])
        rows = {}
        for name, v in per.items():
            rows[name] = {"n": len(v), "mean": float(np.mean(v)) if v else math.nan, "values": v}
            rows[name]["sd"] = float(np.std(v, ddof=1)) if len(v) > 1 else math.nan
            rows[name].update(min=min(v, default=math.nan), max=max(v, default=math.nan))
            if name != "proposal" and v and per["proposal"]:
                rows[name]["vs_proposal"] = beats_by_noise(per["proposal"], v, sd, dof)
                rows[name]["vs_proposal_welch"] = beats_by_welch(per["proposal"], v)
        out[scale] = {"pooled_sd": sd, "dof": dof, "mixtures": rows}
    return out


def rank_transfer(pairs: dict[str, tuple[float, float]]) -> dict:
    """Spearman and Kendall (with p-values) between the 1x and scaled values of the same mixtures."""
    from scipy.stats import kendalltau, spearmanr

    a, b = (np.array([p[i] for p in pairs.values()]) for i in (0, 1))
    if len(a) < 3:
        return {"n": len(a), "spearman": math.nan, "kendall": math.nan}
    rho, tau = spearmanr(a, b), kendalltau(a, b)
    return {
        "n": len(a),
        "spearman": float(rho.statistic),
        "spearman_p": float(rho.pvalue),
        "kendall": float(tau.statistic),
        "kendall_p": float(tau.pvalue),
        "sd_x1": float(np.std(a, ddof=1)),
        "sd_scaled": float(np.std(b, ddof=1)),
    }


def collect(done: dict[str, dict], target: str | dict, seeds: list[int], sub: dict, tag: str) -> tuple[dict, dict]:
    """Target values per scale and mixture over seeds, and the (1x, scaled) pairs of the rank-transfer set."""
    ok = {label: {k: target_of(m, target) for k, m in runs.items()} for label, runs in done.items()}
    values = {
        label: {m: [v[f"{m}-s{s}"] for s in seeds if f"{m}-s{s}" in v] for m in MIXTURES} for label, v in ok.items()
    }
    ok1, oks = ok["x1"], ok[tag]
    pairs = {r: (v["x1"], oks[f"{r}-s{v['seed']}"]) for r, v in sub.items() if f"{r}-s{v['seed']}" in oks}
    for m in MIXTURES:
        key = f"{m}-s{seeds[0]}"
        if key in ok1 and key in oks:
            pairs[m] = (ok1[key], oks[key])
    return values, pairs


def per_domain(done: dict[str, dict], seeds: list[int]) -> dict:
    """Mean of every metric per scale and mixture over its finished seeds: where a mixture gains or loses."""
    out: dict = {}
    for label, runs in done.items():
        for m in MIXTURES:
            got = [runs[f"{m}-s{s}"] for s in seeds if f"{m}-s{s}" in runs]
            if got:
                out.setdefault(label, {})[m] = {k: float(np.mean([r[k] for r in got])) for k in sorted(got[0])}
    return out


HEADROOM_PREDICTORS = ("auto", "loglinear", "gp", "linear")


def headroom(cfg: PipelineConfig, results: dict, out: Path, tag: str, doms: list[str]) -> dict:
    """Per predictor fit on the scaled runs themselves and minimised under the same constraints: the best mixture
    the scaled runs point to, and how much the same fit predicts it beats uniform weights by."""
    import pandas as pd

    from automixer.fitting import load_target_table, propose_mixture, target_name
    from automixer.stages import propose_inputs

    ok = sorted((r for r in results.values() if r.get("status") == "ok"), key=lambda r: r["run_id"])
    if len({tuple(sorted(r["weights"].items())) for r in ok}) < 2 * len(doms):
        return {}
    path = out / f"runs-{tag}.parquet"
    rows = [{"run_id": r["run_id"], "seed": r["seed"], **{f"weight_{d}": r["weights"][d] for d in doms}} for r in ok]
    pd.DataFrame([{**row, **r["metrics"]} for row, r in zip(rows, ok, strict=True)]).to_parquet(path)
    table, name, room = load_target_table(path, cfg.propose.target), target_name(cfg.propose.target), {}
    for predictor in HEADROOM_PREDICTORS:
        p = cfg.propose.model_copy(update={"name": f"headroom-{tag}-{predictor}", "predictor": predictor})
        spec = propose_mixture(table, p, str(path), **propose_inputs(cfg))[0]
        at_uniform = spec.provenance["uniform"][name]
        room[predictor] = {
            "predictor": spec.provenance["predictor"],
            "cv_spearman": spec.provenance["cv_spearman"],
            "weights": spec.weights,
            "predicted": spec.predicted_target,
            "predicted_uniform": at_uniform,
            "gain_over_uniform": at_uniform - spec.predicted_target,
        }
    return {"n_runs": len(rows), "fits": room}


def run(args: argparse.Namespace) -> dict:
    """Propose, train both scales, print both tables and write `<out>/transfer.json`."""
    from automixer.fitting import target_name
    from automixer.proxy.data import load_meta

    t0 = time.perf_counter()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    cfg = demo_config(Path(args.demo), out)
    data, target, tag = cfg.path("data"), cfg.propose.target, f"x{args.scale:g}"
    mix, sub, record = mixtures(cfg, args.subset)
    vocab = load_meta(data)["vocab_size"]
    big, arch = scaled_proxy(cfg.proxy, vocab, args.scale)
    print(
        f"proposal ({record['predictor']}, predicted {record['predicted_target']:.4f}): {fmt_weights(mix['proposal'])}\n"
        f"proxy d_model {cfg.proxy.d_model} x {cfg.proxy.n_layers} layers, {arch['base_params']:,} params, "
        f"{cfg.proxy.train_tokens:,} tokens -> {tag}: d_model {big.d_model} x {big.n_layers} layers "
        f"({big.n_heads} heads), {arch['params']:,} params ({arch['ratio']:.2f}x), {big.train_tokens:,} tokens",
        flush=True,
    )
    seeds = [cfg.sweep.seed + k for k in range(args.seeds)]
    items = [{"run_id": f"{m}-s{s}", "weights": mix[m], "seed": s} for s in seeds for m in MIXTURES]
    sub_items = [{"run_id": f"{r}-s{v['seed']}", "weights": v["weights"], "seed": v["seed"]} for r, v in sub.items()]
    ladder = {f"x{s:g}": scaled_proxy(cfg.proxy, vocab, s)[0] for s in sorted(set(args.ladder)) if 1 < s < args.scale}
    res = {"x1": train(items, cfg.proxy, data, out / "runs-x1", args.workers, "x1")}
    for label, shape in ladder.items():
        res[label] = train(items, shape, data, out / f"runs-{label}", args.workers, label)
    res[tag] = train(items + sub_items, big, data, out / f"runs-{tag}", args.workers, tag)
    done = finished(res)
    values, pairs = collect(done, target, seeds, sub, tag)
    summary, stats, name = summarise(values), rank_transfer(pairs), target_name(target)
    domains = per_domain(done, seeds)
    print_mixture_table(summary, mix, tag, name)
    print_ladder_tables(summary, domains, name)
    print_rank_table(pairs, stats, tag, {**mix, **{r: v["weights"] for r, v in sub.items()}})
    room = headroom(cfg, res[tag], out, tag, list(mix["uniform"]))
    print_headroom(room, tag)
    wall = time.perf_counter() - t0
    print(f"\nwall {wall:.0f} s; numbers in {out / 'transfer.json'}")
    report = {
        "target": name,
        "demo": str(args.demo),
        "scale": args.scale,
        "seeds": seeds,
        "proxy": cfg.proxy.model_dump(),
        "scaled_proxy": big.model_dump(),
        "params": arch,
        "proposal": record,
        "mixtures": mix,
        "subset": sub,
        "summary": summary,
        "ladder": {label: shape.model_dump() for label, shape in ladder.items()},
        "per_domain": domains,
        "headroom": room,
        "rank_transfer": {**stats, "values": {k: list(v) for k, v in pairs.items()}},
        "rule": f"beats iff mean(baseline) - mean(proposal) > {Z:g} * pooled_sd * sqrt(1/n_p + 1/n_b)",
        "wall_s": wall,
    }
    (out / "transfer.json").write_text(json.dumps(report, indent=1, default=float))
    return report


def main(argv: list[str] | None = None) -> dict:
    """Parse arguments and run the bench."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--demo", default="runs/demo-full", help="a finished demo work dir (`make demo`)")
    ap.add_argument("--out", default="runs/bench-transfer", help="where runs, the proposal and transfer.json go")
    ap.add_argument("--scale", type=float, default=4.0, help="parameter and token multiplier of the scaled proxy")
    ap.add_argument("--seeds", type=int, default=3, help="seeds per mixture (proposal and the three baselines)")
    ap.add_argument("--subset", type=int, default=8, help="sweep mixtures for the rank-transfer check")
    ap.add_argument(
        "--ladder",
        type=lambda v: [float(x) for x in v.split(",") if x],
        default=[2.0],
        help="comma-separated scales between 1 and --scale where the four mixtures are also trained ('' for none)",
    )
    ap.add_argument("--workers", type=int, default=2, help="runs trained at once (0: in this process)")
    ap.add_argument("--quick", action="store_true", help="smoke run: scale 2, 2 seeds, 4 subset mixtures")
    args = ap.parse_args(argv)
    if args.quick:
        args.scale, args.seeds, args.subset, args.ladder = 2.0, 2, 4, []
    return run(args)


if __name__ == "__main__":
    main()
