"""Predictor sample-efficiency: out-of-sample Spearman vs number of training runs, per predictor and `auto`.

Two kinds of settings, each with n in {16, 32, 64} training runs drawn at random (`--reps` subsamples) and
scored on held-out mixtures:
- synthetic ground truths on 4-5 domains, the target being the mean of per-domain losses as for bpb_mean
  (a data-mixing law, a quadratic with interactions, a sharp optimum), mixtures from the sweep's own
  design, Gaussian noise on the training runs; held-out truth (256 mixtures) is noise-free. The noise sd,
  as a fraction of the target's sd, is 0.1 and 0.4 by default: the two noise levels of our proxies, within
  one sweep (one seed for every run; the GP's fitted white noise on the bench sweep) and across seeds
  (replicates of one mixture);
- sweeps of our own proxies, target bpb_mean: the bench trains `--sweep-runs` proxies (with a small proxy
  config, so it takes minutes) on a finished demo's tokenised data (`<demo>/data`, made by `make demo`),
  plus replicates of one mixture at other seeds to measure proxy noise; the demo's own sweep
  (`<demo>/sweep/runs.parquet`) and every table passed with `--runs` are scored too. The held-out set is
  every run not drawn for training, so n is only used where it leaves 16 or more.

    .venv/bin/python bench/predictors.py [--demo runs/demo-full] [--runs a.parquet ...] [--reps 24]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SWEEP_PROXY = {
    "d_model": 48,
    "n_layers": 2,
    "n_heads": 4,
    "seq_len": 64,
    "batch_size": 16,
    "train_tokens": 80_000,
    "val_max_bytes": 30_000,
    "threads": 1,
}
"""The bench sweep's proxy: the demo's architecture, smaller, so ~100 runs take minutes on 2 cores."""


def make_sweep(demo: Path, out: Path, n_runs: int, replicates: int, workers: int) -> tuple[Path, float]:
    """Train `n_runs` proxies (and replicates of the natural mixture) on `demo/data`; the table and noise sd."""
    import json

    from automixer.config import ProxyConfig
    from automixer.proxy.data import natural_distribution
    from automixer.proxy.train import train_proxy
    from automixer.sweep.design import sample_mixtures
    from automixer.sweep.runner import run_sweep
    from automixer.sweep.table import runs_table_from_results, write_runs_table

    cfg = ProxyConfig(**SWEEP_PROXY)
    data = demo / "data"
    meta = json.loads((data / "meta.json").read_text())
    design = sample_mixtures(natural_distribution(meta), n_runs, 1.0, 0.0, seed=1)
    t0 = time.perf_counter()
    run_sweep(design, cfg, data, out / "runs", seed=0, workers=workers)
    table = write_runs_table(runs_table_from_results(out / "runs"), out / "runs.parquet")
    reps = [
        train_proxy(f"rep-{s}", design[0]["weights"], cfg, data, out / "replicates" / f"rep-{s}", seed=s)
        for s in range(replicates)
    ]
    noise = float(np.std([r["metrics"]["bpb_mean"] for r in reps], ddof=1)) if replicates > 1 else float("nan")
    print(f"sweep: {n_runs} runs + {replicates} replicates in {time.perf_counter() - t0:.0f} s -> {table}")
    return table, noise


NATURAL = {4: (0.55, 0.2, 0.15, 0.1), 5: (0.4, 0.25, 0.15, 0.12, 0.08)}
"""The natural token distribution the synthetic designs are centred on, per number of domains."""


def _law(rng: np.random.Generator, k: int):
    """Per-domain data-mixing laws L_j = c_j + k_j exp(t_j . w): own domain helps, others transfer a little."""
    t = rng.normal(0.0, 0.4, (k, k))
    np.fill_diagonal(t, -rng.uniform(1.5, 3.0, k))
    c, s = rng.uniform(2.0, 3.0, k), rng.uniform(0.5, 1.5, k)
    return lambda W: c + s * np.exp(W @ t.T)


def _quadratic(rng: np.random.Generator, k: int):
    """Per-domain quadratics with pairwise interactions: L_j = c_j + g_j . w + w' H_j w / 2."""
    g = rng.normal(0.0, 0.3, (k, k))
    np.fill_diagonal(g, -1.5)
    h = rng.normal(0.0, 1.0, (k, k, k))
    h = (h + h.transpose(0, 2, 1)) / 2 + 2.0 * np.eye(k)[:, :, None] * np.eye(k)[:, None, :]
    c = rng.uniform(2.0, 3.0, k)
    return lambda W: c + W @ g.T + 0.5 * np.einsum("ni,jil,nl->nj", W, h, W)


def _sharp(rng: np.random.Generator, k: int):
    """A mild per-domain trend plus a narrow Gaussian dip (width 0.1) near the natural mixture."""
    opt = rng.dirichlet(20.0 * np.asarray(NATURAL[k]))
    c, a = rng.uniform(2.0, 3.0, k), rng.uniform(0.3, 0.6, k)
    return lambda W: c + 0.3 * np.exp(-2.0 * W) - a * np.exp(-((W - opt) ** 2).sum(1, keepdims=True) / 0.02)


SYNTHETIC = {"mixing law": (_law, 4), "quadratic+interactions": (_quadratic, 5), "sharp optimum": (_sharp, 4)}
"""Synthetic ground truths: name -> (component-loss factory, number of domains)."""


def _design(k: int, n: int, seed: int) -> np.ndarray:
    """`n` mixtures from the sweep's own design (Dirichlet around the natural distribution)."""
    from automixer.sweep.design import sample_mixtures

    natural = {f"d{i}": p for i, p in enumerate(NATURAL[k])}
    return np.array([list(m["weights"].values()) for m in sample_mixtures(natural, n, 1.0, 0.0, seed)])


def synthetic_task(name: str, noise: float, n: int, rep: int) -> tuple[np.ndarray, ...]:
    """(X, y, components, X_test, y_test) for one synthetic setting; test truth is noise-free.

    `noise` is the sd of the noise on the target as a fraction of the target's sd over the test set;
    half its variance is shared by all components (like a seed), half is independent per component.
    """
    factory, k = SYNTHETIC[name]
    fn = factory(np.random.default_rng(sum(map(ord, name))), k)
    Xt = _design(k, 257, seed=10_000)[1:]
    sd = float(fn(Xt).mean(1).std())
    X = _design(k, n, seed=rep)
    rng = np.random.default_rng(1000 + rep)
    shared = rng.normal(0.0, noise * sd * np.sqrt(0.5), (n, 1))
    C = fn(X) + shared + rng.normal(0.0, noise * sd * np.sqrt(0.5 * k), (n, k))
    return X, C.mean(1), C, Xt, fn(Xt).mean(1)


def real_task(path: str, n: int, rep: int, target: str = "bpb_mean") -> tuple[np.ndarray, ...]:
    """(X, y, components, X_test, y_test): `n` random runs of a runs table to train on, the rest to test."""
    from automixer.predict import target_components
    from automixer.sweep.table import load_runs_table

    table = load_runs_table(path, target)
    idx = np.random.default_rng(rep).permutation(len(table.df))
    tr, te = idx[:n], idx[n:]
    C = target_components(table.df, table.domains, target)
    y = table.y(target)
    return table.X[tr], y[tr], C[tr], table.X[te], y[te]


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    from scipy.stats import spearmanr

    return float(spearmanr(a, b).statistic) if np.ptp(a) > 0 else 0.0


def evaluate(task: tuple, folds: int = 5, repeats: int = 3) -> dict[str, object]:
    """Held-out Spearman of every predictor, of `auto` and of two simpler rules on one task.

    `auto` is `select_predictor("auto")` taken apart: the same out-of-fold predictions and the same
    `choose_candidate`, and the chosen members' held-out predictions blended with its weights, which is
    exactly what the fitted `EnsemblePredictor` predicts (every predictor is deterministic), without
    fitting them twice. The rules: "cv arg-max" takes the single predictor with the best CV Spearman (the
    old `auto`); "law+gp" is the equal-weight mean of `auto`'s default pair.
    """
    from automixer.predict import fit_estimator
    from automixer.predict.select import (
        NEEDS_COMPONENTS,
        PREDICTORS,
        auto_default,
        candidate_oofs,
        choose_candidate,
        parse_candidate,
    )

    X, y, C, Xt, yt = task
    names = [n for n in PREDICTORS if C is not None or n not in NEEDS_COMPONENTS]
    pred = {n: fit_estimator(PREDICTORS[n](), X, y, C).predict(Xt) for n in names}
    oofs = candidate_oofs(names, X, y, folds, 0, repeats, C)
    chosen, scores = choose_candidate(oofs, y, auto_default(C))

    def held_out(candidate: str) -> float:
        return _spearman(sum(w * pred[m] for w, m in parse_candidate(candidate)), yt)

    out: dict[str, object] = {n: held_out(n) for n in names}
    out.update({"auto": held_out(chosen), "chosen": chosen})
    out["cv arg-max"] = held_out(max(names, key=lambda n: np.nan_to_num(scores[n], nan=-np.inf)))
    out["law+gp"] = held_out("+".join(auto_default(C)))  # no weights: equal
    return out


def _run(setting: tuple) -> dict:
    """One (kind, name, noise, n, rep) setting: build its task and evaluate it (a pool worker)."""
    kind, name, noise, n, rep = setting
    task = synthetic_task(name, noise, n, rep) if kind == "synthetic" else real_task(name, n, rep)
    return {"setting": setting, **evaluate(task)}


def _settings(args: argparse.Namespace, tables: dict[str, Path]) -> list[tuple]:
    """Every (kind, name, noise, n, rep) to evaluate; a runs table only for n leaving >= 16 held-out runs."""
    import pandas as pd

    out = [
        ("synthetic", name, noise, n, rep)
        for name in SYNTHETIC
        for noise in args.noise
        for n in args.n
        for rep in range(args.reps)
    ]
    for path in tables.values():
        size = len(pd.read_parquet(path)) if path.suffix != ".csv" else len(pd.read_csv(path))
        out += [("real", str(path), None, n, rep) for n in args.n if size - n >= 16 for rep in range(args.reps)]
    return out


def summarise(rows: list[dict], labels: dict[str, str]) -> tuple[list[str], list[list[str]], float]:
    """Mean held-out Spearman per (setting, n) and column; the table header, rows and the worst auto gap.

    `se` is the standard error of the auto - best gap over the subsamples (paired: same subsample).
    """
    import pandas as pd

    from automixer.predict.select import PREDICTORS

    df = pd.DataFrame(rows)
    names = [c for c in PREDICTORS if c in df]
    rules = [k for k in df if k not in ("setting", "chosen", "auto", *PREDICTORS)]
    df["key"] = [(labels.get(s[1], s[1]), "" if s[2] is None else f"{s[2]:g}", s[3]) for s in df["setting"]]
    header = ["setting", "noise", "n", *names, "auto", "best single", "auto-best", "se", *rules, "auto picks (top 2)"]
    table, worst = [], np.inf
    for key, g in df.groupby("key", sort=False):
        means = {c: g[c].mean() for c in [*names, "auto", *rules]}
        best = max(names, key=lambda c: means[c])
        gap = means["auto"] - means[best]
        se = (g["auto"] - g[best]).std() / np.sqrt(len(g))  # paired; NaN from a single subsample
        worst = min(worst, gap)
        top = g["chosen"].value_counts()
        picks = ", ".join(f"{c} x{v}" for c, v in top.head(2).items())
        table.append(
            [
                *map(str, key),
                *(f"{means[c]:.3f}" for c in names),
                f"{means['auto']:.3f}",
                best,
                f"{gap:+.3f}",
                f"{se:.3f}",
            ]
            + [f"{means[r]:.3f}" for r in rules]
            + [picks]
        )
    return header, table, worst


def main() -> None:
    """Parse arguments, make the proxy sweep if asked, evaluate every setting in a pool and print the table."""
    import hashlib
    from concurrent.futures import ProcessPoolExecutor

    from automixer.predict import GPPredictor
    from automixer.sweep.table import load_runs_table

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--demo", type=Path, default=ROOT / "runs" / "demo-full", help="finished demo work dir")
    ap.add_argument("--out", type=Path, default=ROOT / "runs" / "bench-predictors", help="where the sweep goes")
    ap.add_argument("--sweep-runs", type=int, default=112, help="proxies to train (0: no sweep)")
    ap.add_argument("--replicates", type=int, default=6, help="extra runs of one mixture at other seeds")
    ap.add_argument("--runs", type=Path, nargs="*", default=[], help="more runs tables to score")
    ap.add_argument("--n", type=int, nargs="+", default=[16, 32, 64])
    ap.add_argument("--noise", type=float, nargs="+", default=[0.1, 0.4], help="noise sd / target sd")
    ap.add_argument("--reps", type=int, default=72, help="random subsamples per setting")
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    tables, labels = {}, {}
    meta = args.demo / "data" / "meta.json"
    if args.sweep_runs and meta.is_file():
        out = args.out / f"sweep-{hashlib.sha256(meta.read_bytes()).hexdigest()[:10]}"  # one per demo build
        path, noise = make_sweep(args.demo, out, args.sweep_runs, args.replicates, args.workers)
        tables[str(path)], labels[str(path)] = path, f"proxies: bench sweep ({args.sweep_runs} runs)"
        print(f"proxy noise: bpb_mean sd over {args.replicates} seeds of one mixture = {noise:.4f}")
    elif args.sweep_runs:
        print(f"no {meta} (run `make demo` first): skipping the proxy sweep")
    for path in [args.demo / "sweep" / "runs.parquet", *args.runs]:
        path = path.resolve()
        if path.is_file():
            tables[str(path)] = path
            labels[str(path)] = f"proxies: {path.parents[3].name}/{path.parents[1].name} sweep"
    for path in tables.values():
        table = load_runs_table(path, "bpb_mean")
        y, gp = table.y("bpb_mean"), GPPredictor().fit(table.X, table.y("bpb_mean"))
        noise = np.sqrt(gp.model_.kernel_.k2.noise_level) * y.std()  # normalize_y: in units of y's sd
        print(f"{labels[str(path)]}: {path}, {len(y)} runs, bpb_mean sd {y.std():.4f}, GP white noise sd {noise:.4f}")
    t0 = time.perf_counter()
    with ProcessPoolExecutor(args.workers) as pool:
        rows = list(pool.map(_run, _settings(args, tables), chunksize=1))
    header, table, worst = summarise(rows, labels)
    widths = [max(len(h), *(len(r[i]) for r in table)) for i, h in enumerate(header)]
    print(f"\nheld-out Spearman, mean of {args.reps} random subsamples ({time.perf_counter() - t0:.0f} s)")
    for line in [header, ["-" * w for w in widths], *table]:
        print("  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)))
    print(f"\nworst auto - best single: {worst:+.3f} (goal >= -0.02)")


if __name__ == "__main__":
    main()
