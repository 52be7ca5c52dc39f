"""The mixture spec: a named set of domain weights with the provenance of how it was chosen."""

from __future__ import annotations

import math
import time
from pathlib import PurePath
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from automixer.io import Location, join, location, read_structured, write_text_atomic

SUM_TOL = 1e-6


class Uncertainty(BaseModel):
    """How sure the proposal is: a bootstrap over runs (refit the predictor, re-optimise under the constraints)."""

    model_config = ConfigDict(extra="forbid")

    method: str = "bootstrap over runs"
    """How the intervals were made."""
    n_resamples: int = Field(ge=1)
    """Resamples of the runs (with replacement)."""
    n_failed: int = Field(default=0, ge=0)
    """Resamples whose refit failed; left out of every interval."""
    level: float = Field(gt=0, lt=1)
    """Coverage of the percentile intervals, e.g. 0.9."""
    seed: int = 0
    """Seed of the resamples."""
    predicted_target_ci: tuple[float, float]
    """Interval on the predicted target at the proposed weights."""
    weights_ci: dict[str, tuple[float, float]]
    """Interval on each domain's weight when the proposal is re-made from resampled runs."""
    natural: dict[str, float]
    """The natural mixture (each domain's share of available tokens) the proposal is compared with."""
    natural_predicted_target_ci: tuple[float, float]
    """Interval on the predicted target of the natural mixture."""
    improvement_ci: tuple[float, float]
    """Interval on predicted(natural) - predicted(proposal); above 0: the proposal is predicted better."""
    reoptimised_target_ci: tuple[float, float]
    """Interval on the optimum each resample's fit finds (biased low: each optimises its own noise)."""
    p_beats_natural: float = Field(ge=0, le=1)
    """Share of resamples whose fit predicts the proposal below (better than) the natural mixture."""
    noise_sd: float | None = Field(default=None, ge=0)
    """Run-to-run standard deviation of the target between proxy runs of one mixture (replicate seeds)."""
    p_beats_natural_one_run: float | None = Field(default=None, ge=0, le=1)
    """Chance one run of the proposal beats one run of the natural mixture, seed noise included."""
    uniform_improvement_ci: tuple[float, float] | None = None
    """Interval on predicted(uniform) - predicted(proposal): the margin over equal weights."""
    p_beats_uniform: float | None = Field(default=None, ge=0, le=1)
    """Share of resamples whose fit predicts the proposal below (better than) the uniform mixture."""
    p_beats_uniform_one_run: float | None = Field(default=None, ge=0, le=1)
    """Chance one run of the proposal beats one run of the uniform mixture, seed noise included."""
    seconds: float = 0.0
    """Wall time of the bootstrap."""


class MixtureSpec(BaseModel):
    """A mixture proposal or baseline: weights per domain summing to 1, plus provenance."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    """File-safe name; the spec is written to `<mixtures_dir>/<name>.yaml`."""
    weights: dict[str, float]
    """Domain -> weight; non-negative, summing to 1 (within 1e-6)."""
    target: str
    """The metric the mixture was chosen to minimise, e.g. bpb_mean."""
    predicted_target: float | None = None
    """The predictor's value of `target` at these weights."""
    uncertainty: Uncertainty | None = None
    """Bootstrap intervals and P(beats natural); absent in specs written without a bootstrap."""
    provenance: dict[str, Any] = {}
    """How it was made: sweep, n_runs, predictor, cv_spearman, constraints, created, automixer version."""

    @field_validator("weights")
    @classmethod
    def _simplex(cls, weights: dict[str, float]) -> dict[str, float]:
        if not weights:
            raise ValueError("weights must name at least one domain")
        bad = {d: w for d, w in weights.items() if not math.isfinite(w) or w < 0}
        if bad:
            raise ValueError(f"weights must be finite and non-negative, got {bad}")
        total = math.fsum(weights.values())
        if abs(total - 1.0) > SUM_TOL:
            raise ValueError(f"weights must sum to 1 (within {SUM_TOL}), got {total:.9g}")
        return weights


def automixer_version() -> str:
    """The installed automixer version (or `unknown`)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("automixer")
    except PackageNotFoundError:
        return "unknown"


def utc_now() -> str:
    """The current UTC time as ISO 8601 (seconds)."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _plain(obj: Any) -> Any:
    """Convert numpy scalars/arrays and paths inside `obj` into plain YAML-safe values."""
    import json

    def default(o: Any) -> Any:
        return o.tolist() if hasattr(o, "tolist") else str(o)

    return json.loads(json.dumps(obj, default=default))


def write_mixture(spec: MixtureSpec, mixtures_dir: str | PurePath) -> Location:
    """Write `<mixtures_dir>/<name>.yaml` (a folder or fsspec URL) atomically, keys in a readable order."""
    path = join(mixtures_dir, f"{spec.name}.yaml")
    doc = {
        "name": spec.name,
        "target": spec.target,
        "predicted_target": spec.predicted_target,
        "weights": dict(spec.weights),
    }
    if spec.uncertainty is not None:
        doc["uncertainty"] = spec.uncertainty.model_dump(mode="json")
    doc["provenance"] = _plain(spec.provenance)
    header = "# automixer mixture spec: weights per domain (sum to 1); read with automixer.mixture.read_mixture\n"
    write_text_atomic(path, header + yaml.safe_dump(doc, sort_keys=False, default_flow_style=False))
    return path


def read_mixture(path: str | PurePath) -> MixtureSpec:
    """Read and validate a mixture spec YAML (a local path or fsspec URL)."""
    path = location(path)
    raw = read_structured(path, "mixture spec")
    if not isinstance(raw, dict):
        raise ValueError(f"{path}: a mixture spec must be a mapping with name, weights and target")
    try:
        return MixtureSpec.model_validate(raw)
    except ValidationError as exc:
        msgs = "; ".join(f"{'.'.join(map(str, e['loc'])) or '(top)'}: {e['msg']}" for e in exc.errors())
        raise ValueError(f"{path}: invalid mixture spec: {msgs}") from None
