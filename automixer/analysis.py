"""What the analysis notebooks need from a finished work directory, computed by the library."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from automixer.sweep.table import RunsTable, load_runs_table


def load_sweep(work_dir: str | Path, target: str = "bpb_mean") -> RunsTable:
    """The runs table of a finished sweep in `work_dir`."""
    path = Path(work_dir, "sweep", "runs.parquet")
    if not path.exists():
        raise FileNotFoundError(f"no runs table at {path}; run `automixer sweep` on that work dir first")
    return load_runs_table(path, target)


def natural_mixture(work_dir: str | Path) -> dict[str, float]:
    """The natural token distribution the sweep was sampled around."""
    return json.loads(Path(work_dir, "sweep", "fingerprint.json").read_text())["natural"]


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
