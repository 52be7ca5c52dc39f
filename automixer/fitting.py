"""Fit a predictor on a runs table, report how well it ranks mixtures, and propose a mixture."""

from __future__ import annotations

import dataclasses
import math
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from automixer.config import ProposeConfig
from automixer.mixture import MixtureSpec, Uncertainty, automixer_version, utc_now, write_mixture
from automixer.sweep.table import RunsTable, load_runs_table

Target = str | dict[str, float]
"""A metric column, or {column: weight} for a weighted mean of columns."""


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    from scipy.stats import spearmanr

    if len(a) < 2 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return math.nan
    return float(spearmanr(a, b).statistic)


def _eval_X(train: RunsTable, eval: RunsTable) -> np.ndarray:
    """The eval weights in the train table's domain order; a ValueError if the domains differ."""
    if set(eval.domains) != set(train.domains):
        missing = sorted(set(train.domains) - set(eval.domains))
        extra = sorted(set(eval.domains) - set(train.domains))
        raise ValueError(
            f"eval domains {eval.domains} do not match train domains {train.domains} "
            f"(missing in eval: {missing}, extra in eval: {extra})"
        )
    cols = [f"{eval.weight_prefix}{d}" for d in train.domains]
    return eval.df[cols].to_numpy(dtype=float)


def target_noise(table: RunsTable, y: np.ndarray) -> dict | None:
    """Run-to-run noise of the target from the table's replicate runs (same weights), or None without any."""
    from automixer.sweep.noise import METHOD, pooled_sd, replicate_groups

    groups = replicate_groups(table.X)
    sd, dof = pooled_sd(y, groups)
    if sd is None:
        return None
    n_groups = int(sum(np.bincount(groups) >= 2))
    return {"sd": sd, "dof": dof, "replicate_groups": n_groups, "method": METHOD}


def fit_report(
    train: RunsTable,
    target: str,
    predictor: str = "auto",
    folds: int = 5,
    seed: int = 0,
    eval: RunsTable | None = None,  # shadows the builtin on purpose: the public keyword
) -> dict[str, Any]:
    """Cross-validate the predictor(s) on `train` and, with `eval`, score the fitted one on held-out runs."""
    from automixer.predict import select_predictor

    y = train.y(target)
    noise = target_noise(train, y)
    sd = noise["sd"] if noise else None
    est, chosen, scores = select_predictor(predictor, train.X, y, folds=folds, seed=seed, noise_sd=sd)
    report: dict[str, Any] = {
        "target": target,
        "predictor": chosen,
        "cv_spearman": scores[chosen],
        "cv_scores": scores,
        "n_train": len(train.df),
        "n_skipped_missing": train.n_skipped_missing,
        "n_renormalised": train.n_renormalised,
        "noise": noise,
    }
    if eval is None:
        return report
    if len(eval.df) == 0:
        raise ValueError(f"the eval table has no runs with a value for {target!r}")
    y_eval = eval.y(target)
    pred = est.predict(_eval_X(train, eval))
    ids = eval.run_ids
    picked = int(np.argmin(pred))
    report.update(
        {
            "eval_spearman": _spearman(pred, y_eval),
            "eval_predicted_best": ids[picked],
            "eval_actual_best": ids[int(np.argmin(y_eval))],
            "eval_regret": float(y_eval[picked] - y_eval.min()),
            "n_eval": len(ids),
        }
    )
    return report


def parse_target(text: str) -> Target:
    """`bpb_mean` -> the column; `bpb_code=2,bpb_math=1` -> {column: weight} (a weighted mean)."""
    if "=" not in text:
        return text.strip()
    out: dict[str, float] = {}
    for part in text.split(","):
        col, sep, w = part.partition("=")
        try:
            out[col.strip()] = float(w)
        except ValueError:
            raise ValueError(
                f"a weighted target is COLUMN=WEIGHT,... (e.g. bpb_code=2,bpb_web=1), got {text!r}"
            ) from None
    return out


def target_weights(target: Target) -> dict[str, float]:
    """The target as {column: weight}, weights normalised to sum 1."""
    if isinstance(target, str):
        return {target: 1.0}
    total = sum(target.values())
    if not target or total <= 0 or any(w < 0 for w in target.values()):
        raise ValueError(f"target weights must be >= 0 with a positive sum, got {target}")
    return {c: w / total for c, w in target.items()}


def target_name(target: Target) -> str:
    """A readable name: the column itself, or e.g. `0.5*bpb_code+0.5*bpb_web`."""
    if isinstance(target, str):
        return target
    return "+".join(f"{w:.4g}*{c}" for c, w in target_weights(target).items())


def load_target_table(path: str | Path, target: Target, weight_prefix: str = "weight_") -> RunsTable:
    """Load a runs table keeping only runs with a value for every column of the target (skips counted)."""
    cols = list(target_weights(target))
    table = load_runs_table(path, cols[0], weight_prefix)
    missing = [c for c in cols if c not in table.df.columns]
    if missing:
        raise ValueError(f"{path}: target column(s) {missing} not found; metric columns: {table.metric_columns}")
    ok = np.isfinite(table.df[cols].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=float)).all(axis=1)
    table.df = table.df.loc[ok].reset_index(drop=True)
    table.n_skipped_missing += int((~ok).sum())
    return table


def target_values(table: RunsTable, target: Target) -> np.ndarray:
    """The target per run: one column, or the weighted mean of several."""
    return sum(w * table.y(c) for c, w in target_weights(target).items())


def _natural(table: RunsTable, natural: dict[str, float] | None) -> tuple[np.ndarray, str]:
    """The natural mixture in domain order, and where it came from (given, or the mean of the swept weights)."""
    if natural is None:
        return table.X.mean(axis=0), "mean of the swept weights"
    missing = sorted(set(table.domains) - set(natural))
    if missing:
        raise ValueError(f"the natural mixture lacks domain(s) {missing}")
    v = np.array([float(natural[d]) for d in table.domains])
    return v / v.sum(), "given"


def _uncertainty(
    est: Any,
    X: np.ndarray,
    y: np.ndarray,
    feasible: Any,
    w: np.ndarray,
    nat: np.ndarray,
    cfg: ProposeConfig,
    penalty: float,
    noise_sd: float | None,
) -> Uncertainty | None:
    """The bootstrap's intervals for the proposal `w`, or None (with a warning) when every refit failed."""
    from automixer.uncertainty import bootstrap_proposal

    try:
        boot = bootstrap_proposal(
            est, X, y, feasible, w, nat, cfg.bootstrap, cfg.ci_level, cfg.seed, cfg.top_k_average, penalty,
            noise_sd=noise_sd,
        )  # fmt: skip
    except RuntimeError as exc:  # every refit failed: keep the proposal, say why it has no intervals
        warnings.warn(f"no bootstrap intervals: {exc}", stacklevel=3)
        return None
    return Uncertainty(**{k: v for k, v in boot.items() if k in Uncertainty.model_fields})


def propose_mixture(
    table: RunsTable,
    cfg: ProposeConfig,
    sweep: str,
    natural: dict[str, float] | None = None,
    available_tokens: dict[str, int] | None = None,
) -> tuple[MixtureSpec, Path]:
    """Fit the predictor, minimise it under the constraints, bootstrap it, write `<mixtures_dir>/<name>.yaml`."""
    from automixer.feasible import feasible_set, repetition_caps
    from automixer.optimize import minimize_mixture
    from automixer.predict import select_predictor

    c = cfg.constraints
    nat, nat_source = _natural(table, natural)
    nat_dict = dict(zip(table.domains, nat.tolist(), strict=True))
    feasible = feasible_set(table.domains, c, nat_dict, available_tokens)
    feasible.check()  # fail on conflicting constraints before any fitting
    y = target_values(table, cfg.target)
    noise = target_noise(table, y)
    noise_sd = noise["sd"] if noise else None
    est, chosen, scores = select_predictor(
        cfg.predictor, table.X, y, folds=cfg.cv_folds, seed=cfg.seed, noise_sd=noise_sd
    )
    tr = c.trust_region
    penalty = tr.kl_penalty if tr else 0.0
    weights, predicted = minimize_mixture(
        est.predict, feasible, seed=cfg.seed, top_k=cfg.top_k_average, kl_penalty=penalty, natural=nat
    )
    w = np.array([weights[d] for d in table.domains])
    uncertainty = _uncertainty(est, table.X, y, feasible, w, nat, cfg, penalty, noise_sd) if cfg.bootstrap else None
    best = int(np.argmin(y))
    name = target_name(cfg.target)
    available = {**(available_tokens or {}), **c.available_tokens}
    caps = repetition_caps(table.domains, c.max_repetition_ratio, c.full_run_tokens, available)
    provenance = {
        "sweep": str(sweep),
        "n_runs": len(table.df),
        "n_skipped_missing": table.n_skipped_missing,
        "n_renormalised": table.n_renormalised,
        "predictor": chosen,
        "cv_spearman": scores[chosen],
        "cv_scores": scores,
        "cv_folds": cfg.cv_folds,
        "seed": cfg.seed,
        **({"target_weights": target_weights(cfg.target)} if isinstance(cfg.target, dict) else {}),
        "constraints": c.model_dump(mode="json", exclude_defaults=True),
        **({"repetition_caps": caps} if caps else {}),
        **({"noise": noise} if noise else {}),
        "optimiser": f"top-{cfg.top_k_average} average" if cfg.top_k_average else "multi-start SLSQP",
        "natural": {"weights": nat_dict, "source": nat_source, name: float(est.predict(nat[None, :])[0])},
        "uniform": {name: float(est.predict(np.full((1, len(w)), 1 / len(w)))[0])},
        "best_observed": {"run_id": table.run_ids[best], name: float(y[best])},
        "created": utc_now(),
        "automixer_version": automixer_version(),
    }
    spec = MixtureSpec(
        name=cfg.name,
        weights=weights,
        target=name,
        predicted_target=predicted,
        uncertainty=uncertainty,
        provenance=provenance,
    )
    return spec, write_mixture(spec, cfg.mixtures_dir)


def pareto_front(
    table: RunsTable,
    targets: list[Target],
    cfg: ProposeConfig,
    natural: dict[str, float] | None = None,
    available_tokens: dict[str, int] | None = None,
    n_points: int = 11,
) -> list[dict]:
    """The predicted Pareto front of two targets under the constraints: [{weights, <target>: value, ...}]."""
    from automixer.feasible import feasible_set
    from automixer.optimize import pareto_front as front
    from automixer.predict import select_predictor

    if len(targets) != 2:
        raise ValueError(f"a Pareto front needs two targets, got {targets}")
    nat, _ = _natural(table, natural)
    feasible = feasible_set(
        table.domains, cfg.constraints, dict(zip(table.domains, nat, strict=True)), available_tokens
    )
    feasible.check()
    names = [target_name(t) for t in targets]
    keep = np.ones(len(table.df), dtype=bool)
    for t in targets:
        keep &= np.isfinite(target_values(table, t))
    table = dataclasses.replace(table, df=table.df.loc[keep].reset_index(drop=True))
    ests = []
    for t in targets:
        y = target_values(table, t)
        noise = target_noise(table, y)
        sd = noise["sd"] if noise else None
        ests.append(select_predictor(cfg.predictor, table.X, y, folds=cfg.cv_folds, seed=cfg.seed, noise_sd=sd)[0])
    points = front(ests[0].predict, ests[1].predict, feasible, n_points=n_points, seed=cfg.seed)
    return [{"weights": w, names[0]: a, names[1]: b} for w, a, b in points]
