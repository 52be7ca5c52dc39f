"""Typed configuration for every stage, loaded from one YAML file and validated before any work.

The sweep and proposal models live in `config_mix.py`, the execution models in `config_exec.py`; all are
importable from here.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal, TypeVar

import yaml
from pydantic import BaseModel, Field, ValidationError, model_validator

from automixer.config_base import ConfigError as ConfigError
from automixer.config_base import Domain as Domain
from automixer.config_base import StrictModel as _Strict
from automixer.config_exec import ExecutionConfig as ExecutionConfig
from automixer.config_exec import ReportConfig as ReportConfig
from automixer.config_exec import SlurmConfig as SlurmConfig
from automixer.config_mix import ConstraintsConfig as ConstraintsConfig
from automixer.config_mix import GroupConstraint as GroupConstraint
from automixer.config_mix import ProposeConfig as ProposeConfig
from automixer.config_mix import SweepConfig as SweepConfig
from automixer.config_mix import TrustRegionConfig as TrustRegionConfig

_M = TypeVar("_M", bound=BaseModel)


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
    report: ReportConfig = ReportConfig()
    """The HTML report of the run (notebooks executed on the work dir) written at the end of the pipeline."""

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
