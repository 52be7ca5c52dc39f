"""Fit a predictor on a runs table, report how well it ranks mixtures, and propose a mixture."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from automixer.config import ConstraintsConfig
from automixer.mixture import MixtureSpec, automixer_version, utc_now, write_mixture
from automixer.sweep.table import RunsTable


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

    est, chosen, scores = select_predictor(predictor, train.X, train.y(target), folds=folds, seed=seed)
    report: dict[str, Any] = {
        "target": target,
        "predictor": chosen,
        "cv_spearman": scores[chosen],
        "cv_scores": scores,
        "n_train": len(train.df),
        "n_skipped_missing": train.n_skipped_missing,
        "n_renormalised": train.n_renormalised,
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


def propose_mixture(
    table: RunsTable,
    target: str,
    constraints: ConstraintsConfig,
    predictor: str,
    name: str,
    mixtures_dir: str | Path,
    sweep: str,
    folds: int = 5,
    seed: int = 0,
) -> tuple[MixtureSpec, Path]:
    """Fit the predictor, minimise it under the constraints and write `<mixtures_dir>/<name>.yaml`."""
    from automixer.optimize import minimize_mixture
    from automixer.predict import select_predictor

    y = table.y(target)
    est, chosen, scores = select_predictor(predictor, table.X, y, folds=folds, seed=seed)
    weights, predicted = minimize_mixture(
        est.predict, table.domains, dict(constraints.min_weight), dict(constraints.max_weight), seed=seed
    )
    best = int(np.argmin(y))
    provenance = {
        "sweep": str(sweep),
        "n_runs": len(table.df),
        "n_skipped_missing": table.n_skipped_missing,
        "n_renormalised": table.n_renormalised,
        "predictor": chosen,
        "cv_spearman": scores[chosen],
        "cv_scores": scores,
        "cv_folds": folds,
        "seed": seed,
        "constraints": constraints.model_dump(mode="json"),
        "best_observed": {"run_id": table.run_ids[best], target: float(y[best])},
        "created": utc_now(),
        "automixer_version": automixer_version(),
    }
    spec = MixtureSpec(name=name, weights=weights, target=target, predicted_target=predicted, provenance=provenance)
    return spec, write_mixture(spec, mixtures_dir)
