"""The runs table: one row per proxy run with `weight_<domain>` and metric columns."""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from automixer.io import atomic_path

SUM_TOL = 1e-6
_RESULT_SCALARS = ("seed", "replicate_of", "round", "wall_s")
_RESULT_PER_DOMAIN = ("tokens_seen", "epochs")


@dataclass
class RunsTable:
    """A validated runs table: weights in `domains` order, rows with a missing target already removed."""

    df: pd.DataFrame
    domains: list[str]
    weight_prefix: str = "weight_"
    n_skipped_missing: int = 0
    n_renormalised: int = 0

    @property
    def weight_columns(self) -> list[str]:
        """The weight column names, in domain order."""
        return [f"{self.weight_prefix}{d}" for d in self.domains]

    @property
    def X(self) -> np.ndarray:
        """The weights as an (n_runs, n_domains) array, columns in `domains` order."""
        return self.df[self.weight_columns].to_numpy(dtype=float)

    @property
    def run_ids(self) -> list[str]:
        """The run ids, as strings."""
        return [str(r) for r in self.df["run_id"]]

    def y(self, target: str) -> np.ndarray:
        """The values of a metric column as a float array."""
        if target not in self.df.columns:
            raise ValueError(f"target column {target!r} not in the runs table; metric columns: {self.metric_columns}")
        return self.df[target].to_numpy(dtype=float)

    @property
    def metric_columns(self) -> list[str]:
        """Every column that is neither `run_id` nor a weight column."""
        return _metric_columns(self.df, self.weight_prefix)


def _metric_columns(df: pd.DataFrame, prefix: str) -> list[str]:
    return [c for c in df.columns if c != "run_id" and not str(c).startswith(prefix)]


def _read_frame(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise FileNotFoundError(f"runs table not found: {path}")
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return pd.read_csv(path)
    if suffix in (".parquet", ".pq"):
        return pd.read_parquet(path)
    raise ValueError(f"{path}: unsupported runs-table format {suffix!r}; use .csv or .parquet")


def load_runs_table(path: str | Path, target: str, weight_prefix: str = "weight_") -> RunsTable:
    """Load a runs table (CSV or Parquet), skip rows missing `target` and renormalise weight rows."""
    path = Path(path)
    df = _read_frame(path)
    wcols = [c for c in df.columns if str(c).startswith(weight_prefix) and len(str(c)) > len(weight_prefix)]
    if not wcols:
        raise ValueError(
            f"{path}: no weight columns starting with {weight_prefix!r}; columns are {list(df.columns)} "
            "(pass --weight-prefix if your weight columns are named differently)"
        )
    if target not in df.columns:
        raise ValueError(
            f"{path}: target column {target!r} not found; available metric columns: "
            f"{_metric_columns(df, weight_prefix)}"
        )
    if "run_id" not in df.columns:
        df.insert(0, "run_id", [str(i) for i in range(len(df))])
    df["run_id"] = df["run_id"].astype(str)
    try:
        df[target] = pd.to_numeric(df[target], errors="raise").astype(float)
        df[wcols] = df[wcols].apply(pd.to_numeric, errors="raise").astype(float)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{path}: target and weight columns must be numeric: {exc}") from exc
    missing = ~np.isfinite(df[target].to_numpy())
    df = df.loc[~missing].reset_index(drop=True)
    n_renorm = _normalise_weights(df, wcols, path)
    domains = [str(c)[len(weight_prefix) :] for c in wcols]
    return RunsTable(df, domains, weight_prefix, n_skipped_missing=int(missing.sum()), n_renormalised=n_renorm)


def _normalise_weights(df: pd.DataFrame, wcols: list[str], path: Path) -> int:
    """Check weights are finite and non-negative; rescale rows not summing to 1 in place; return how many."""
    W = df[wcols].to_numpy(dtype=float)
    bad = ~np.isfinite(W).all(axis=1) | (W < 0).any(axis=1) | (W.sum(axis=1) <= 0)
    if bad.any():
        ids = df.loc[bad, "run_id"].tolist()[:10]
        raise ValueError(f"{path}: weights must be finite, non-negative and not all zero; bad runs: {ids}")
    sums = W.sum(axis=1)
    off = np.abs(sums - 1.0) > SUM_TOL
    if off.any():
        warnings.warn(
            f"{path}: renormalised the weights of {int(off.sum())} run(s) that did not sum to 1 "
            f"(sums from {sums[off].min():.6g} to {sums[off].max():.6g})",
            stacklevel=3,
        )
        df.loc[off, wcols] = W[off] / sums[off, None]
    return int(off.sum())


def read_results(runs_dir: str | Path) -> list[dict]:
    """Every `<runs_dir>/*/result.json`, parsed, sorted by path (ok and failed runs)."""
    runs_dir = Path(runs_dir)
    if not runs_dir.is_dir():
        raise FileNotFoundError(f"runs folder not found: {runs_dir}; run `automixer sweep` first")
    results = []
    for f in sorted(runs_dir.glob("*/result.json")):
        try:
            results.append(json.loads(f.read_text()))
        except json.JSONDecodeError as exc:
            raise ValueError(f"{f} is not valid JSON ({exc}); delete it to re-run that proxy") from exc
    return results


def result_row(res: dict) -> dict:
    """Flatten one ok result.json into a runs-table row."""
    row: dict = {"run_id": str(res["run_id"])}
    row.update({f"weight_{d}": float(w) for d, w in res["weights"].items()})
    row.update({k: (float(v) if v is not None else np.nan) for k, v in (res.get("metrics") or {}).items()})
    for key in _RESULT_PER_DOMAIN:
        row.update({f"{key}_{d}": v for d, v in (res.get(key) or {}).items()})
    row.update({k: res[k] for k in _RESULT_SCALARS if k in res})
    return row


def runs_table_from_results(runs_dir: str | Path) -> pd.DataFrame:
    """The runs table of every ok run under `runs_dir` (`<run_id>/result.json`), sorted by run_id.

    Besides weights and metrics it holds each run's `seed` and `replicate_of` (the anchor run a replicate
    repeats with another seed; null for other runs), and `round` for iterative sweeps.

    Plain `json` rather than DuckDB's `read_json`: result files differ in shape (failed runs have empty
    metrics, sweeps may add domains or keys), and DuckDB infers one schema across files, which turns
    such differences into type errors or silently dropped keys; this reads each file as written.
    """
    rows = [result_row(r) for r in read_results(runs_dir) if r.get("status") == "ok"]
    if not rows:
        return pd.DataFrame({"run_id": pd.Series([], dtype=str)})
    df = pd.DataFrame(rows)
    weights = [c for c in df.columns if c.startswith("weight_")]
    df[weights] = df[weights].fillna(0.0)
    df["replicate_of"] = df.get("replicate_of", pd.Series(None, index=df.index, dtype=object)).astype("string")
    metrics = sorted(c for c in df.columns if c not in weights and c != "run_id")
    return df[["run_id", *weights, *metrics]].sort_values("run_id").reset_index(drop=True)


def write_runs_table(df: pd.DataFrame, path: str | Path) -> Path:
    """Write a runs table as Parquet or CSV (by suffix), atomically."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".parquet", ".pq"):
        raise ValueError(f"{path}: unsupported runs-table format {suffix!r}; use .csv or .parquet")
    with atomic_path(path) as tmp:
        if suffix == ".csv":
            df.to_csv(tmp, index=False)
        else:
            df.to_parquet(tmp, index=False)
    return path
