"""Typed configuration of the sweep design and of the proposal (constraints, targets, uncertainty)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from automixer.config_base import Domain
from automixer.config_base import StrictModel as _Strict


class SweepConfig(_Strict):
    """How mixtures are sampled and how many proxies are trained."""

    n_runs: int = Field(default=60, ge=2)
    """Number of mixtures (proxy runs)."""
    concentration: float = Field(default=1.0, gt=0)
    """Dirichlet concentration multiplier around the natural token distribution (lower: more spread)."""
    min_weight: float = Field(default=0.0, ge=0, lt=1)
    """Every sampled domain weight is at least this."""
    seed: int = 0
    """Seed for the design and for every proxy run."""
    workers: int = Field(default=1, ge=1)
    """Proxy runs trained at once, each in a worker process (a worker that dies fails only its run)."""
    spread: float = Field(default=3.0, ge=1)
    """Each sample's concentration is drawn log-uniformly in [concentration/spread, concentration*spread]."""
    min_distance: float = Field(default=0.02, ge=0)
    """A sampled mixture within this L1 distance of an earlier one is rejected (near-duplicate)."""
    sampler: Literal["dirichlet", "sobol"] = "dirichlet"
    """`dirichlet`: independent draws; `sobol`: scrambled Sobol points through the Dirichlet's inverse CDF
    (low-discrepancy: better coverage of the simplex for the same number of runs)."""
    respect_caps: bool = True
    """Sample only within the proposal's per-domain caps (propose.constraints max_weight and repetition caps)."""
    anchors: int = Field(default=2, ge=0)
    """Mixtures (the natural one first) trained with extra seeds to measure run-to-run noise."""
    anchor_seeds: int = Field(default=3, ge=1)
    """Seeds per anchor mixture, the sweep's own included (1: no replicates, no noise estimate)."""
    rounds: int = Field(default=1, ge=1)
    """Spend n_runs in this many rounds: the first sampled, each later one chosen by expected improvement
    of a GP fitted to the runs so far (where the predictor is unsure near its optimum)."""
    acquisition_candidates: int = Field(default=2000, ge=10)
    """Candidate mixtures scored by the acquisition function in each later round."""

    @model_validator(mode="after")
    def _budget(self) -> SweepConfig:
        if self.anchors > self.n_runs:
            raise ValueError(f"anchors ({self.anchors}) cannot exceed n_runs ({self.n_runs})")
        if self.n_runs < 2 * self.rounds:
            raise ValueError(f"n_runs ({self.n_runs}) must give each of the {self.rounds} rounds at least 2 runs")
        return self


class GroupConstraint(_Strict):
    """Bounds on the summed weight of several domains, e.g. all code-like domains >= 0.3."""

    name: str = Field(pattern=r"^[A-Za-z0-9_.+-]+$")
    """Name shown in messages and provenance, e.g. `code_total`."""
    domains: list[Domain] = Field(min_length=1)
    """Domains whose weights are summed."""
    min: float = Field(default=0.0, ge=0, le=1)
    """Lower bound on the sum."""
    max: float = Field(default=1.0, ge=0, le=1)
    """Upper bound on the sum."""

    @model_validator(mode="after")
    def _valid(self) -> GroupConstraint:
        if len(set(self.domains)) != len(self.domains):
            raise ValueError(f"group {self.name!r}: domains has duplicates: {self.domains}")
        if self.min > self.max:
            raise ValueError(f"group {self.name!r}: min {self.min} is above max {self.max}")
        return self


class TrustRegionConfig(_Strict):
    """Keep the proposal near the natural mixture, where the sweep sampled and the predictor is trusted."""

    metric: Literal["kl", "l1"] = "kl"
    """Distance to the natural mixture: KL(proposal || natural) in nats, or the L1 distance sum |w - natural|."""
    radius: float | None = Field(default=None, gt=0)
    """Hard limit on that distance (None: no limit)."""
    kl_penalty: float = Field(default=0.0, ge=0)
    """Minimise predicted target + kl_penalty * KL(proposal || natural) instead (0: off)."""

    @model_validator(mode="after")
    def _something(self) -> TrustRegionConfig:
        if self.radius is None and self.kl_penalty == 0:
            raise ValueError("trust_region: set radius, kl_penalty or both")
        return self


class ConstraintsConfig(_Strict):
    """Constraints on the proposed mixture; the optimiser enforces them exactly or names the conflicting ones."""

    min_weight: dict[Domain, float] = {}
    """Per-domain lower bounds."""
    max_weight: dict[Domain, float] = {}
    """Per-domain upper bounds, e.g. {synthetic: 0.13} to cap the synthetic share."""
    pinned: dict[Domain, float] = {}
    """Domains whose weight is fixed exactly, e.g. {synthetic: 0.1}."""
    groups: list[GroupConstraint] = []
    """Bounds on sums of domain weights, e.g. [{name: code_total, domains: [code, synthetic], min: 0.3}]."""
    max_repetition_ratio: float | dict[Domain, float] | None = None
    """Most epochs over a domain's available tokens in the full run (OLMo-core's max_repetition_ratio): caps
    weight_d at available_tokens_d * ratio / full_run_tokens. A number caps every domain, a mapping the named ones."""
    full_run_tokens: int | None = Field(default=None, ge=1)
    """Token budget of the full training run; needed by max_repetition_ratio."""
    available_tokens: dict[Domain, int] = {}
    """Tokens available per domain for the repetition cap (default: the counts in shards/manifest.json)."""
    trust_region: TrustRegionConfig | None = None
    """Keep the proposal within a KL or L1 radius of the natural mixture, or penalise KL to it (None: off)."""

    def named_domains(self) -> set[str]:
        """Every domain any constraint names (to check against the configured domains)."""
        rep = self.max_repetition_ratio if isinstance(self.max_repetition_ratio, dict) else {}
        named = {*self.min_weight, *self.max_weight, *self.pinned, *self.available_tokens, *rep}
        return named.union(*(g.domains for g in self.groups))

    @model_validator(mode="after")
    def _bounds(self) -> ConstraintsConfig:
        for name, bounds in (("min_weight", self.min_weight), ("max_weight", self.max_weight), ("pinned", self.pinned)):
            for dom, v in bounds.items():
                if not 0.0 <= v <= 1.0:
                    raise ValueError(f"{name}.{dom} = {v} must be within [0, 1]")
        for dom, lo in self.min_weight.items():
            hi = self.max_weight.get(dom, 1.0)
            if lo > hi:
                raise ValueError(f"min_weight.{dom} = {lo} is above max_weight.{dom} = {hi}")
        for dom, v in self.pinned.items():
            if not self.min_weight.get(dom, 0.0) <= v <= self.max_weight.get(dom, 1.0):
                raise ValueError(f"pinned.{dom} = {v} is outside its min_weight/max_weight bounds")
        floor = {**self.min_weight, **self.pinned}
        if sum(floor.values()) > 1.0 + 1e-9:
            raise ValueError(f"min_weight values sum to {sum(floor.values()):.3f} > 1 (pinned weights included)")
        names = [g.name for g in self.groups]
        if len(set(names)) != len(names):
            raise ValueError(f"groups: names must be unique, got {names}")
        rep = self.max_repetition_ratio
        if rep is not None and any(r <= 0 for r in (rep.values() if isinstance(rep, dict) else [rep])):
            raise ValueError(f"max_repetition_ratio must be > 0, got {rep}")
        if rep is not None and self.full_run_tokens is None:
            raise ValueError("max_repetition_ratio needs full_run_tokens (the full run's token budget)")
        return self


class ProposeConfig(_Strict):
    """How the proposal is fitted and chosen."""

    target: str | dict[str, float] = "bpb_mean"
    """Metric column to minimise (bpb_mean: mean held-out bits-per-byte over domains), or a weighted mean of
    columns, e.g. {bpb_code: 2, bpb_math: 1, bpb_web: 1} (weights normalised to sum 1)."""
    predictor: Literal["auto", "linear", "loglinear", "gp", "lightgbm"] = "auto"
    """Regression from weights to target; `auto` picks the best K-fold Spearman."""
    cv_folds: int = Field(default=5, ge=2)
    """Folds for cross-validated Spearman."""
    name: str = Field(default="proposal", pattern=r"^[A-Za-z0-9_.-]+$")
    """Name of the mixture; written to `<mixtures_dir>/<name>.yaml`."""
    mixtures_dir: str = "mixtures"
    """Folder the proposal YAML is written to."""
    constraints: ConstraintsConfig = ConstraintsConfig()
    """Bounds, pins, group sums, repetition caps and trust region of the proposed mixture."""
    top_k_average: int | None = Field(default=None, ge=1)
    """RegMix-style: propose the mean of the k best simulated feasible mixtures, not the polished optimum."""
    bootstrap: int = Field(default=50, ge=0)
    """Bootstrap resamples of the runs (refit + re-optimise each) for intervals and P(beats natural); 0: off."""
    ci_level: float = Field(default=0.9, gt=0, lt=1)
    """Coverage of the bootstrap intervals (0.9: the 5th to 95th percentile)."""
    seed: int = 0
    """Seed for CV folds, the optimiser's candidates and the bootstrap resamples."""

    @model_validator(mode="after")
    def _target(self) -> ProposeConfig:
        if isinstance(self.target, dict) and (
            not self.target or any(w < 0 for w in self.target.values()) or sum(self.target.values()) <= 0
        ):
            raise ValueError(f"target: weights must be >= 0 with a positive sum, got {self.target}")
        return self
