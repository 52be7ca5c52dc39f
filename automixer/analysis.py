"""What the sweep-analysis notebook needs from a finished run directory, computed by the library.

Every function here reads files a run wrote and returns plain frames; the notebooks only plot them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from automixer.sweep.table import RunsTable, load_runs_table

if TYPE_CHECKING:
    from automixer.config import PipelineConfig
    from automixer.mixture import MixtureSpec

SINGLE_PREDICTORS = ("linear", "loglinear", "gp", "lightgbm")
"""The predictors whose learning curves are drawn next to `auto` by default."""


def load_sweep(work_dir: str | Path, target: str = "bpb_mean") -> RunsTable:
    """The runs table of a finished sweep in `work_dir`."""
    path = Path(work_dir, "sweep", "runs.parquet")
    if not path.exists():
        raise FileNotFoundError(f"no runs table at {path}; run `automixer sweep` on that work dir first")
    return load_runs_table(path, target)


def run_config(work_dir: str | Path) -> PipelineConfig:
    """The config a run was made with (`<work_dir>/config.yaml`)."""
    from automixer.config import load_config

    path = Path(work_dir, "config.yaml")
    if not path.exists():
        raise FileNotFoundError(f"no config.yaml in {work_dir}: is it a run directory made by automixer?")
    return load_config(path)


def natural_mixture(work_dir: str | Path) -> dict[str, float]:
    """The natural token distribution the sweep was sampled around."""
    return json.loads(Path(work_dir, "sweep", "fingerprint.json").read_text())["natural"]


def find_proposal(work_dir: str | Path) -> MixtureSpec | None:
    """The run's proposal (`<propose.mixtures_dir>/<name>.yaml`, as given or below the run dir), or None."""
    from automixer.mixture import read_mixture

    p = run_config(work_dir).propose
    name = f"{p.name}.yaml"
    for folder in (Path(p.mixtures_dir), Path(work_dir) / p.mixtures_dir, Path(work_dir) / "mixtures"):
        if "://" not in p.mixtures_dir and (folder / name).is_file():
            return read_mixture(folder / name)
    return None


def fit_selected(table: RunsTable, target: str, predictor: str = "auto", folds: int = 5, seed: int = 0):
    """The predictor `propose` would use, fitted on every run: (estimator, name, CV Spearman per candidate)."""
    from automixer.fitting import target_noise
    from automixer.predict.select import select_predictor

    y = table.y(target)
    noise = target_noise(table, y)
    return select_predictor(predictor, table.X, y, folds, seed, noise_sd=noise["sd"] if noise else None)


def predicted_vs_actual(
    table: RunsTable, target: str, predictor: str = "auto", folds: int = 5, seed: int = 0
) -> tuple[pd.DataFrame, str, float]:
    """Out-of-fold predictions of the selected predictor: (frame run_id/actual/predicted, name, CV Spearman)."""
    from automixer.predict.select import build_predictor, oof_predict, select_predictor

    X, y = table.X, table.y(target)
    _, name, scores = select_predictor(predictor, X, y, folds, seed)
    oof = oof_predict(build_predictor(name), X, y, folds, seed)
    frame = pd.DataFrame({"run_id": table.run_ids, "actual": y, "predicted": oof})
    return frame, name, scores[name]


def mixtures_frame(table: RunsTable, target: str) -> pd.DataFrame:
    """One row per run: the domain weights and the target, sorted by the target."""
    frame = table.df[["run_id", *table.weight_columns, target]].copy()
    frame.columns = ["run_id", *table.domains, target]
    return frame.sort_values(target).reset_index(drop=True)


def ternary_xy(W: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Cartesian coordinates of three-part mixtures in an equilateral triangle (corners: 1st, 2nd, 3rd part)."""
    W = np.asarray(W, dtype=float)
    W = W / W.sum(axis=1, keepdims=True)
    return W[:, 1] + 0.5 * W[:, 2], (np.sqrt(3) / 2) * W[:, 2]


def learning_sizes(n_mixtures: int, min_train: int = 5, points: int = 4) -> list[int]:
    """Training-set sizes for learning curves: up to `points` sizes, each leaving >= 1/4 of the mixtures (>= 3) to score."""
    top = n_mixtures - max(3, n_mixtures // 4)
    if top < min_train:
        return []
    return sorted({int(round(v)) for v in np.linspace(min_train, top, points)})


def learning_curves(
    table: RunsTable,
    target: str,
    sizes: list[int] | None = None,
    reps: int = 3,
    predictors: tuple[str, ...] = (*SINGLE_PREDICTORS, "auto"),
    seed: int = 0,
) -> pd.DataFrame:
    """Held-out Spearman of each predictor fitted on n random mixtures, scored on the rest: (n, predictor, rep, spearman).

    Replicate runs of one mixture are drawn together, so a score never rests on a twin of a training run.
    """
    from scipy.stats import spearmanr

    from automixer.predict.composite import fit_estimator
    from automixer.predict.select import make_predictor, select_predictor
    from automixer.sweep.noise import replicate_groups

    X, y = table.X, table.y(target)
    groups = replicate_groups(X)
    n_groups = int(groups.max(initial=-1)) + 1
    rows = []
    for n in sizes if sizes is not None else learning_sizes(n_groups):
        for rep in range(reps):
            pick = np.random.default_rng(seed + 1000 * n + rep).permutation(n_groups)[:n]
            train = np.isin(groups, pick)
            for name in predictors:
                if name == "auto":
                    est = select_predictor("auto", X[train], y[train], min(5, n), seed)[0]
                else:
                    est = fit_estimator(make_predictor(name), X[train], y[train])
                pred = est.predict(X[~train])
                rho = spearmanr(pred, y[~train]).statistic if np.ptp(pred) > 0 else np.nan
                rows.append({"n": n, "predictor": name, "rep": rep, "spearman": float(rho)})
    return pd.DataFrame(rows, columns=["n", "predictor", "rep", "spearman"])


def partial_dependence(estimator: Any, X: np.ndarray, domains: list[str], grid: int = 25) -> pd.DataFrame:
    """Mean prediction as one domain's weight moves over its swept range, the others rescaled to keep their ratios.

    Returns (domain, weight, predicted). A plain partial dependence would leave the simplex; here each run's
    other weights are scaled by (1 - w) / (1 - its own weight), so every evaluated mixture sums to 1.
    """
    X = np.asarray(X, dtype=float)
    rows = []
    for i, dom in enumerate(domains):
        rest = 1.0 - X[:, i]
        for w in np.linspace(X[:, i].min(), X[:, i].max(), grid):
            Z = X * np.where(rest > 1e-12, (1.0 - w) / np.maximum(rest, 1e-12), 0.0)[:, None]
            Z[:, i] = w
            Z[rest <= 1e-12] = np.where(np.arange(len(domains)) == i, w, (1.0 - w) / (len(domains) - 1))
            rows.append({"domain": dom, "weight": float(w), "predicted": float(np.mean(estimator.predict(Z)))})
    return pd.DataFrame(rows, columns=["domain", "weight", "predicted"])


def replicate_frame(table: RunsTable, target: str) -> tuple[pd.DataFrame, float | None]:
    """The runs of every mixture trained more than once (group, run_id, seed, value) and the pooled sd."""
    from automixer.sweep.noise import pooled_sd, replicate_groups

    groups, y = replicate_groups(table.X), table.y(target)
    sizes = np.bincount(groups) if len(groups) else np.zeros(0, dtype=int)
    keep = sizes[groups] > 1 if len(groups) else np.zeros(0, dtype=bool)
    seeds = table.df["seed"].to_numpy() if "seed" in table.df else np.full(len(y), np.nan)
    frame = pd.DataFrame(
        {"group": groups[keep], "run_id": np.asarray(table.run_ids)[keep], "seed": seeds[keep], "value": y[keep]}
    )
    return frame, pooled_sd(y, groups)[0]


def reference_mixtures(work_dir: str | Path, table: RunsTable, target: str, estimator: Any) -> pd.DataFrame:
    """Natural, uniform, best-seen and proposed mixtures: weights, predicted target, measured mean where run.

    Columns: the domains, `predicted`, `measured` (mean over runs of that exact mixture, NaN if never run),
    and for the proposal `lo_<domain>` / `hi_<domain>` / `predicted_lo` / `predicted_hi` from its bootstrap.
    """
    from automixer.sweep.noise import replicate_groups

    doms, y = table.domains, table.y(target)
    best = table.X[int(np.argmin(y))]
    mixes = {"natural": natural_mixture(work_dir), "uniform": dict.fromkeys(doms, 1.0 / len(doms))}
    mixes["best seen"] = dict(zip(doms, best.tolist(), strict=True))
    spec = find_proposal(work_dir)
    if spec is not None:
        mixes["proposal"] = spec.weights
    W = np.array([[float(m.get(d, 0.0)) for d in doms] for m in mixes.values()])
    groups = replicate_groups(np.vstack([table.X, W]))
    measured = [y[groups[: len(y)] == g].mean() if (groups[: len(y)] == g).any() else np.nan for g in groups[len(y) :]]
    frame = pd.DataFrame(W, columns=doms, index=list(mixes))
    frame["predicted"], frame["measured"] = estimator.predict(W), measured
    if spec is not None and spec.uncertainty is not None:
        u = spec.uncertainty
        for d in doms:
            frame.loc["proposal", [f"lo_{d}", f"hi_{d}"]] = u.weights_ci[d]
        frame.loc["proposal", ["predicted_lo", "predicted_hi"]] = u.predicted_target_ci
    return frame


def optimum_by_round(work_dir: str | Path, table: RunsTable, target: str) -> pd.DataFrame:
    """The predicted optimum after each sweep round, refitted on the runs of that round and before.

    One row per round: n_runs, best measured so far, the predictor chosen, its predicted optimum under the
    run's proposal constraints, and the optimum's weights. A one-shot sweep gives one row.
    """
    from automixer.feasible import feasible_set
    from automixer.optimize import minimize_mixture
    from automixer.sweep.noise import replicate_groups

    cfg = run_config(work_dir)
    rounds = table.df["round"].fillna(1).to_numpy(dtype=int) if "round" in table.df else np.ones(len(table.df), int)
    feasible = feasible_set(table.domains, cfg.propose.constraints, natural_mixture(work_dir))
    rows = []
    for r in sorted(set(rounds.tolist())):
        sub = RunsTable(table.df[rounds <= r].reset_index(drop=True), table.domains, table.weight_prefix)
        n_mixtures = int(replicate_groups(sub.X).max(initial=-1)) + 1
        if n_mixtures < 3:  # too few distinct mixtures to cross-validate a predictor
            continue
        est, name, _ = fit_selected(sub, target, cfg.propose.predictor, min(cfg.propose.cv_folds, n_mixtures))
        weights, predicted = minimize_mixture(est.predict, feasible, seed=cfg.propose.seed)
        best = float(np.min(sub.y(target)))
        rows.append({"round": r, "n_runs": len(sub.df), "best_seen": best, "predictor": name,
                     "predicted_optimum": predicted, **weights})  # fmt: skip
    return pd.DataFrame(rows)
