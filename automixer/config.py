"""Typed configuration for every stage, loaded from one YAML file and validated before any work."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Literal, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

Domain = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$", description="A domain name, e.g. code, math, web.")]


_M = TypeVar("_M", bound=BaseModel)


class ConfigError(ValueError):
    """A configuration problem, with a message that names the field and what is allowed."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class SourceConfig(_Strict):
    """One input corpus feeding one domain."""

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    """Unique name; becomes the `source` column of every document it yields."""
    domain: Domain
    """The domain this source feeds; must be listed in `domains`."""
    format: Literal["jsonl", "parquet", "hf", "warc"] = "jsonl"
    """Reader: JSONL (plain or .gz), Parquet, a Hugging Face dataset (local path; Hub id only online), WARC."""
    path: str
    """Folder, file or glob (jsonl/parquet/warc), or a dataset path / Hub id (hf)."""
    glob: str | None = None
    """Glob applied inside `path` when it is a folder, e.g. `*.jsonl.gz`."""
    text_field: str = "text"
    """Name of the field that holds the document text (or HTML, with `html: true`)."""
    id_field: str | None = None
    """Field holding a stable document id; a hash of source + position is used when absent."""
    html: bool = False
    """The text field holds HTML: extract its main text (trafilatura). WARC responses are always extracted."""
    max_doc_bytes: int = Field(default=10 * 2**20, ge=1)
    """Skip (and count as `doc_too_large`) documents larger than this, without holding them in memory."""
    split: str = "train"
    """Split to read for `hf` sources."""
    limit: int = -1
    """Read at most this many documents (-1: all)."""


WebRule = Literal["gopher_quality", "gopher_repetition", "c4", "fineweb"]
FilterName = Literal[
    "web_quality", "code_quality", "math_quality", "language", "gopher_quality", "gopher_repetition", "c4", "fineweb"
]


class EvalSetConfig(_Strict):
    """One benchmark that training data must not overlap with."""

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    """Name used in drop reasons (`contaminated_<name>`) and in the report."""
    path: str
    """Local file: HumanEval / MBPP / GSM8K / MATH formats (JSON, JSONL, optionally gzipped)."""
    format: Literal["auto", "humaneval", "mbpp", "mbppplus", "gsm8k", "math"] = "auto"
    """File format; `auto` detects it from the fields."""


class DecontaminationConfig(_Strict):
    """Drop documents that share a long word n-gram with an eval set item."""

    eval_sets: list[EvalSetConfig] = []
    """Eval sets to decontaminate against (none: off)."""
    ngram: int = Field(default=13, ge=3)
    """Words per n-gram; one shared n-gram removes the document."""
    domains: list[Domain] | None = None
    """Domains to decontaminate (None: every curated domain)."""


class CurationConfig(_Strict):
    """Filters, deduplication and decontamination applied to every non-synthetic source."""

    filters: dict[Domain, list[FilterName]] = {
        "web": ["web_quality"],
        "code": ["code_quality"],
        "math": ["math_quality"],
    }
    """Filters per domain, applied in order. `web_quality` is our one-pass Gopher + C4 + FineWeb filter
    (same decisions as datatrove's blocks); `gopher_quality`, `gopher_repetition`, `c4`, `fineweb` are
    datatrove's own blocks; `code_quality` (The Stack-style), `math_quality` (keeps LaTeX), `language`."""
    web_rules: list[WebRule] = ["gopher_quality", "gopher_repetition", "c4", "fineweb"]
    """Rule groups `web_quality` applies (datatrove's default parameters for each)."""
    languages: list[str] = ["en"]
    """Languages the `language` filter keeps (ISO 639-1 codes; offline model from the py3langid wheel)."""
    language_min_score: float = Field(default=0.65, ge=0, le=1)
    """Minimum language-ID confidence for the `language` filter."""
    min_chars: int = Field(default=200, ge=0)
    """Drop documents shorter than this many characters, in every domain."""
    html_timeout: float = Field(default=10.0, gt=0)
    """Seconds allowed to extract one HTML page before it is dropped as `html_timeout`."""
    strict_offline: bool = True
    """Before any work, fail if a configured block would download an asset, naming it and how to provide it."""
    exact_dedup: bool = True
    """Drop documents whose normalised text is identical to an earlier one."""
    minhash_dedup: bool = True
    """Drop near-duplicates found with MinHash LSH."""
    minhash_threshold: float = Field(default=0.8, gt=0.0, lt=1.0)
    """Approximate Jaccard similarity above which two documents count as near-duplicates."""
    minhash_ngram: int = Field(default=5, ge=1)
    """Word n-gram size used to shingle documents for MinHash."""
    dedup_scope: Literal["global", "domain"] = "global"
    """Deduplicate across all domains, or only within each domain."""
    decontamination: DecontaminationConfig = DecontaminationConfig()
    """Eval-set decontamination."""
    write_exclusions: bool = True
    """Write every dropped document, with `filter` and `drop_reason`, to `curation/excluded/` Parquet shards."""
    shard_docs: int = Field(default=5000, ge=1)
    """Maximum documents per output Parquet shard."""
    workers: int = Field(default=1, ge=1)
    """Parallel datatrove tasks."""

    @model_validator(mode="after")
    def _languages(self) -> CurationConfig:
        for lang in self.languages:
            if not re.fullmatch(r"[a-z]{2,3}", lang):
                raise ValueError(f"languages: {lang!r} is not an ISO 639 code such as 'en'")
        return self


class LLMConfig(_Strict):
    """An optional OpenAI-compatible chat endpoint that writes problem statements (off by default)."""

    enabled: bool = False
    """Ask the endpoint for problem statements; with it off, template statements are used."""
    base_url: str = "http://127.0.0.1:8000/v1"
    """Base URL of the OpenAI-compatible API (e.g. a local vLLM or Ollama server)."""
    model: str = ""
    """Model name sent in each request."""
    api_key_env: str = "OPENAI_API_KEY"
    """Environment variable holding the API key (may be unset for local servers)."""
    timeout_s: float = Field(default=30.0, gt=0)
    """Timeout of one HTTP request."""
    retries: int = Field(default=2, ge=0)
    """Retries after a timeout, a 429/5xx answer or a malformed response."""
    max_tokens: int = Field(default=400, ge=16)
    """Upper bound on the length of one generated statement."""


FAMILY_NAMES = ("bugfix", "implement", "cross_module", "rename", "version_pin", "nondeterministic")


class SynthConfig(_Strict):
    """Verifiable synthetic coding tasks."""

    enabled: bool = True
    """Generate the `synthetic` domain."""
    sources: list[str] = ["stdlib"]
    """Where real functions with doctests come from: `stdlib`, folders/globs of .py files, or JSONL(.gz) corpora of
    `{repo, path, commit, text}` records."""
    max_tasks: int = Field(default=200, ge=1)
    """Stop after this many verified tasks (over all families)."""
    families: dict[str, float] = {
        "bugfix": 0.6, "implement": 0.2, "cross_module": 0.05, "rename": 0.05, "version_pin": 0.05,
        "nondeterministic": 0.05,
    }  # fmt: skip
    """Share of `max_tasks` per family (normalised); a family absent or at 0 is not generated."""
    mutants_per_function: int = Field(default=2, ge=1)
    """Bug-fix mutants tried per function."""
    min_statements: int = Field(default=3, ge=1)
    """Complexity gate: bug-fix functions need at least this many statements in their body."""
    min_mutation_score: float = Field(default=0.8, ge=0, le=1)
    """Test-strength gate: the kept tests must kill this share of fresh mutants of the reference."""
    gate_mutants: int = Field(default=10, ge=1)
    """Fresh mutants of the reference per test-strength gate."""
    flaky_runs: int = Field(default=3, ge=1)
    """Runs of each state (shuffled order, different PYTHONHASHSEED) to detect unstable tests."""
    eval_sets: list[EvalSetConfig] = []
    """HumanEval / MBPP sets to decontaminate tasks against (n-gram overlap and normalised-AST hash); none: off."""
    ngram: int = Field(default=10, ge=3)
    """Token n-gram length of the decontamination overlap check."""
    max_ngram_overlap: float = Field(default=0.5, gt=0, le=1)
    """A function sharing more than this share of its n-grams with an eval item counts as contaminated."""
    llm: LLMConfig = LLMConfig()
    """Optional LLM that writes problem statements."""
    timeout_s: float = Field(default=10.0, gt=0)
    """Wall timeout of one sandboxed test run."""
    memory_mb: int = Field(default=1024, ge=64)
    """Address-space limit of one sandboxed test run."""
    workers: int = Field(default=2, ge=1)
    """Sandboxed verifications run at once."""
    seed: int = 0
    """Seed for function and operator choice."""

    @model_validator(mode="after")
    def _known_families(self) -> SynthConfig:
        unknown = sorted(set(self.families) - set(FAMILY_NAMES))
        if unknown:
            raise ValueError(f"synth.families: unknown {unknown}; known: {list(FAMILY_NAMES)}")
        if any(w < 0 for w in self.families.values()) or not any(w > 0 for w in self.families.values()):
            raise ValueError("synth.families: weights must be >= 0 with at least one > 0")
        return self


class TokenizerConfig(_Strict):
    """The BPE tokenizer trained offline on the curated shards."""

    vocab_size: int = Field(default=2048, ge=260, le=65535)
    """Vocabulary size (byte-level BPE; 256 byte tokens are always present)."""
    sample_bytes: int = Field(default=8_000_000, ge=10_000)
    """Bytes of training text sampled across domains to train the tokenizer."""
    path: str | None = None
    """Load this tokenizer.json instead of training one."""


class ProxyConfig(_Strict):
    """The small decoder-only LM trained once per mixture."""

    d_model: int = Field(default=64, ge=8)
    """Residual stream width."""
    n_layers: int = Field(default=2, ge=1)
    """Transformer blocks."""
    n_heads: int = Field(default=4, ge=1)
    """Attention heads; must divide d_model."""
    seq_len: int = Field(default=128, ge=8)
    """Context length in tokens."""
    batch_size: int = Field(default=16, ge=1)
    """Sequences per optimiser step."""
    train_tokens: int = Field(default=200_000, ge=1000)
    """Token budget of one proxy run (the same for every mixture)."""
    lr: float = Field(default=3e-3, gt=0)
    """Peak learning rate (AdamW, warmup then cosine decay)."""
    val_fraction: float = Field(default=0.05, gt=0, lt=0.5)
    """Fraction of each domain's documents held out for evaluation; never trained on."""
    val_max_bytes: int = Field(default=200_000, ge=1000)
    """Cap on held-out bytes evaluated per domain."""
    device: str = "auto"
    """`auto` (CUDA when available, else CPU), `cpu` or `cuda`."""
    threads: int = Field(default=0, ge=0)
    """torch intra-op threads per run (0: leave torch's default)."""
    precision: Literal["auto", "fp32", "bf16"] = "auto"
    """`auto`: bf16 autocast on a CUDA GPU that supports it, fp32 on CPU; `bf16` forces autocast (slow on most CPUs)."""
    compile: Literal["auto", "on", "off"] = "auto"
    """torch.compile the training step: `auto` on CUDA for runs of >= 2000 steps only (compiling costs tens of
    seconds; on CPU it costs more than it saves at proxy sizes); falls back to eager if compilation fails."""

    @model_validator(mode="after")
    def _heads_divide(self) -> ProxyConfig:
        if self.d_model % self.n_heads:
            raise ValueError(f"n_heads ({self.n_heads}) must divide d_model ({self.d_model})")
        return self


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


class SlurmConfig(_Strict):
    """Slurm settings for datatrove's SlurmPipelineExecutor (curation on a Slurm cluster)."""

    partition: str = "cpu"
    """Partition the array jobs are submitted to."""
    time: str = "04:00:00"
    """Wall-time limit of one array task (HH:MM:SS)."""
    cpus_per_task: int = Field(default=1, ge=1)
    """CPUs per datatrove task."""
    mem_per_cpu_gb: int = Field(default=2, ge=1)
    """Memory per CPU in GiB."""
    venv_path: str | None = None
    """Virtualenv activated on the compute nodes (None: the submitting environment's)."""
    sbatch_args: dict[str, str] = {}
    """Extra sbatch options, e.g. {account: my-project}."""


class ExecutionConfig(_Strict):
    """Where the work runs: this machine (default), a Ray cluster, or Slurm for curation."""

    curation: Literal["local", "ray", "slurm"] = "local"
    """datatrove executor for curation: LocalPipelineExecutor, RayPipelineExecutor or SlurmPipelineExecutor."""
    sweep: Literal["local", "ray"] = "local"
    """Engine for the proxy runs: local worker processes, or Ray tasks (one GPU each where the cluster has GPUs)."""
    ray_address: str | None = None
    """Ray cluster to join (`auto`, `ray://head:10001`); None starts a local Ray instance on this machine."""
    tasks: int = Field(default=0, ge=0)
    """Curation tasks (input splits) on Ray/Slurm (0: one per input file)."""
    cpus_per_run: float = Field(default=1.0, gt=0)
    """CPU slots a proxy run (or a datatrove task) requests from Ray."""
    gpus_per_run: float = Field(default=1.0, ge=0)
    """GPUs a proxy run requests from Ray when the cluster has GPUs (none are requested on a CPU-only cluster)."""
    slurm: SlurmConfig = SlurmConfig()
    """Slurm settings, used when curation is `slurm`."""


class PipelineConfig(_Strict):
    """The whole run: inputs, every stage's options and the working directory."""

    work_dir: str = "runs/default"
    """Everything produced (shards, tasks, tokenizer, runs) goes below this folder."""
    domains: list[Domain] = ["code", "math", "web", "synthetic"]
    """Domains a mixture weights; `synthetic` is fed by synth, the rest by sources."""
    sources: list[SourceConfig] = []
    """Input corpora."""
    curation: CurationConfig = CurationConfig()
    synth: SynthConfig = SynthConfig()
    tokenizer: TokenizerConfig = TokenizerConfig()
    proxy: ProxyConfig = ProxyConfig()
    sweep: SweepConfig = SweepConfig()
    propose: ProposeConfig = ProposeConfig()
    execution: ExecutionConfig = ExecutionConfig()
    """Where curation and the proxy sweep run (local by default; Ray or Slurm clusters)."""

    @model_validator(mode="after")
    def _cross_check(self) -> PipelineConfig:
        allowed = set(self.domains)
        if len(allowed) != len(self.domains):
            raise ValueError(f"domains has duplicates: {self.domains}")
        if len(allowed) < 2:
            raise ValueError("domains must list at least two domains to mix")
        names = [s.name for s in self.sources]
        if len(set(names)) != len(names):
            raise ValueError(f"sources: names must be unique, got {names}")
        for i, src in enumerate(self.sources):
            if src.domain not in allowed:
                raise ValueError(
                    f"sources.{i}.domain: {src.domain!r} is not a configured domain; allowed: {sorted(allowed)}"
                )
        explicit = self.curation.filters if "filters" in self.curation.model_fields_set else {}
        for dom in [*explicit, *(self.curation.decontamination.domains or [])]:
            if dom not in allowed:
                raise ValueError(f"curation: domain {dom!r} is not a configured domain; allowed: {sorted(allowed)}")
        unknown = sorted(self.propose.constraints.named_domains() - set(allowed))
        if unknown:
            raise ValueError(f"propose.constraints name {unknown}: not configured domains; allowed: {sorted(allowed)}")
        if "synthetic" in allowed and not self.synth.enabled:
            raise ValueError("domains includes 'synthetic' but synth.enabled is false")
        return self

    def path(self, *parts: str) -> Path:
        """A path below `work_dir`."""
        return Path(self.work_dir).joinpath(*parts)


def _format_errors(err: ValidationError, where: str) -> str:
    lines = [f"invalid configuration in {where}:"]
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"]) or "(top level)"
        msg = e["msg"]
        if e["type"] == "literal_error":
            msg = f"got {e.get('input')!r}; allowed values: {e['ctx']['expected']}"
        elif e["type"] == "extra_forbidden":
            msg = "unknown field (check the spelling)"
        lines.append(f"  - {loc}: {msg}")
    return "\n".join(lines)


def load_config(path: str | Path, overrides: dict | None = None) -> PipelineConfig:
    """Load and validate a pipeline config from YAML (nested `overrides` applied), raising ConfigError on failure."""
    from automixer.io import read_structured

    path = Path(path)
    try:
        raw = read_structured(path, "config file") or {}
    except (FileNotFoundError, ValueError) as exc:
        raise ConfigError(str(exc)) from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of sections")
    return config_from_dict(_merged(raw, overrides or {}), where=str(path))


def _merged(base: dict, over: dict) -> dict:
    """`base` with `over` applied: nested mappings merged key by key, other values replaced."""
    out = dict(base)
    for key, value in over.items():
        both = isinstance(value, dict) and isinstance(out.get(key), dict)
        out[key] = _merged(out[key], value) if both else value
    return out


def validated(model: type[_M], raw: dict, where: str = "config") -> _M:
    """Validate a dict into a config model, raising ConfigError with field names on failure."""
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(_format_errors(exc, where)) from None


def config_from_dict(raw: dict, where: str = "config") -> PipelineConfig:
    """Validate a pipeline config given as a dict, raising ConfigError with field names on failure."""
    return validated(PipelineConfig, raw, where)


def dump_config(cfg: PipelineConfig, path: str | Path) -> None:
    """Write a config as YAML (atomically)."""
    from automixer.io import write_text_atomic

    write_text_atomic(path, yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False))
