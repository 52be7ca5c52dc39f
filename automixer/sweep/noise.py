"""Run-to-run noise: the spread of a metric over proxy runs of one mixture trained with different seeds.

Replicates are found from the weights alone (rows with identical weights are one mixture), so this works
for any runs table, not only sweeps whose anchors carry `replicate_of`.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd

from automixer.io import write_json_atomic

WEIGHT_DECIMALS = 9
"""Weights are compared after rounding to this many decimals (float noise from a CSV round trip)."""
BOOKKEEPING = ("seed", "round", "wall_s", "attempts")
"""Numeric columns of a runs table that are not metrics (also every `tokens_seen_*` and `epochs_*`)."""
METHOD = "pooled within-mixture standard deviation over replicate runs"


def replicate_groups(X: np.ndarray, decimals: int = WEIGHT_DECIMALS) -> np.ndarray:
    """A group id per row: rows with identical weights share one; ids are numbered by first appearance."""
    X = np.round(np.atleast_2d(np.asarray(X, dtype=float)), decimals) + 0.0  # + 0.0: -0.0 == 0.0
    if len(X) == 0:
        return np.zeros(0, dtype=int)
    _, first, inverse = np.unique(X, axis=0, return_index=True, return_inverse=True)
    rank = np.empty(len(first), dtype=int)
    rank[np.argsort(first, kind="stable")] = np.arange(len(first))
    return rank[np.asarray(inverse).reshape(-1)]


def pooled_sd(y: np.ndarray, groups: np.ndarray) -> tuple[float | None, int]:
    """Pooled within-group standard deviation of y and its degrees of freedom (None, 0 without replicates).

    Over every group with at least two finite values: sqrt(sum of squared deviations from each group's
    mean / sum of (group size - 1)); non-finite values are left out.
    """
    y, groups = np.asarray(y, dtype=float), np.asarray(groups)
    ok = np.isfinite(y)
    ss, dof = 0.0, 0
    for g in np.unique(groups[ok]):
        v = y[ok & (groups == g)]
        if len(v) >= 2:
            ss += float(((v - v.mean()) ** 2).sum())
            dof += len(v) - 1
    return (math.sqrt(ss / dof), dof) if dof else (None, 0)


def _frame_and_weights(table: object, weight_prefix: str) -> tuple[pd.DataFrame, list[str]]:
    df = getattr(table, "df", table)
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"expected a runs table or a DataFrame, got {type(table).__name__}")
    prefix = getattr(table, "weight_prefix", weight_prefix)
    wcols = [c for c in df.columns if str(c).startswith(prefix) and len(str(c)) > len(prefix)]
    if not wcols:
        raise ValueError(f"no weight columns starting with {prefix!r}; columns are {list(df.columns)}")
    return df, wcols


def _default_metrics(df: pd.DataFrame, wcols: list[str]) -> list[str]:
    skip = {"run_id", "replicate_of", *BOOKKEEPING, *wcols}
    return [
        c
        for c in df.columns
        if c not in skip and not str(c).startswith(("tokens_seen_", "epochs_")) and pd.api.types.is_numeric_dtype(df[c])
    ]


def estimate_noise(table: object, metrics: list[str] | None = None, weight_prefix: str = "weight_") -> dict:
    """Run-to-run noise of each metric, pooled over the replicate groups of a runs table (or DataFrame).

    A replicate group is every run with the same weights (an anchor and its reseeded replicates). Returns
    `{"method", "n_runs", "n_groups", "group_sizes", "groups" (run ids), "metrics": {metric: {"sd", "dof"}}}`;
    `sd` is None and `dof` 0 for a metric without replicates. `metrics` defaults to every numeric column
    that is neither a weight nor bookkeeping (seed, wall_s, tokens_seen_*, ...).
    """
    df, wcols = _frame_and_weights(table, weight_prefix)
    metrics = _default_metrics(df, wcols) if metrics is None else list(metrics)
    missing = [m for m in metrics if m not in df.columns]
    if missing:
        raise ValueError(f"metric column(s) {missing} not in the runs table")
    groups = replicate_groups(df[wcols].to_numpy(dtype=float))
    ids = df["run_id"].astype(str).tolist() if "run_id" in df.columns else [str(i) for i in range(len(df))]
    members = [[ids[i] for i in np.flatnonzero(groups == g)] for g in range(int(groups.max(initial=-1)) + 1)]
    reps = [m for m in members if len(m) >= 2]
    out: dict = {"method": METHOD, "n_runs": len(df), "n_groups": len(reps), "group_sizes": [len(m) for m in reps]}
    out["groups"] = reps
    out["metrics"] = {}
    for m in metrics:
        sd, dof = pooled_sd(pd.to_numeric(df[m], errors="coerce").to_numpy(dtype=float), groups)
        out["metrics"][m] = {"sd": sd, "dof": dof}
    return out


def noise_message(noise: dict, metric: str = "bpb_mean") -> str:
    """One line for the log, e.g. `run-to-run noise: bpb_mean sd 0.0123 over 2 anchors x 3 seeds`."""
    sizes = noise.get("group_sizes") or []
    entry = (noise.get("metrics") or {}).get(metric) or {}
    if not sizes or entry.get("sd") is None:
        return f"run-to-run noise: no replicate runs for {metric} (set sweep.anchors >= 1 and sweep.anchor_seeds >= 2)"
    shape = f"{len(sizes)} anchors x {sizes[0]} seeds" if len(set(sizes)) == 1 else f"{len(sizes)} anchors ({sizes})"
    return f"run-to-run noise: {metric} sd {entry['sd']:.4f} over {shape} ({entry['dof']} degrees of freedom)"


def write_noise(noise: dict, path: str | Path) -> Path:
    """Write a noise estimate as JSON, atomically."""
    return write_json_atomic(path, noise)


def read_noise(path: str | Path) -> dict:
    """Read a noise estimate written by `write_noise`."""
    return json.loads(Path(path).read_text())
