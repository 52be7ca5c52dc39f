"""What every flow shares: config resolution, retry backoff, result storage, marker-based caching, a fault hook.

Caching agrees with the product's completion markers: a cache key exists only while the markers say the work
is finished (a curation run's `_DONE` with intact shards, every proxy run's result.json with status ok), and
it digests those markers, so deleting or changing them means the task runs again (and skips what the
product itself finds finished). Task results persist under `<work_dir>/prefect/results`, so a flow run
retried after a failure reuses the tasks that had finished.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from prefect.cache_policies import CachePolicy

from automixer.config import PipelineConfig

if TYPE_CHECKING:
    from prefect import Task
    from prefect.context import TaskRunContext

RETRIES = 2
"""Retries of retryable tasks (I/O, datatrove, tokenization, shard writing)."""
RETRY_DELAY_ENV = "AUTOMIXER_RETRY_DELAY_S"
"""Environment variable: base delay of the exponential retry backoff in seconds (default 10; 0 in tests)."""
DEFAULT_RETRY_DELAY_S = 10.0
TASK_FAULTS_ENV = "AUTOMIXER_TASK_FAULTS"
"""Fault injection for drills and tests: `task-name[@attempt],...` makes that task raise on that attempt."""


class InjectedFault(RuntimeError):
    """A transient failure injected through AUTOMIXER_TASK_FAULTS."""


def resolve(config: PipelineConfig | str | Path) -> PipelineConfig:
    """The config itself, or the config loaded from a YAML path (deployments pass a path)."""
    if isinstance(config, PipelineConfig):
        return config
    from automixer.config import load_config

    return load_config(config)


def retry_delays(retries: int = RETRIES) -> list[float]:
    """Exponential backoff: base, 2 x base, 4 x base, ... seconds (base from AUTOMIXER_RETRY_DELAY_S)."""
    base = float(os.environ.get(RETRY_DELAY_ENV, DEFAULT_RETRY_DELAY_S))
    return [base * 2**i for i in range(max(retries, 1))]


def result_storage(cfg: PipelineConfig) -> Path:
    """Where task results and cache records of this work_dir persist."""
    return cfg.path("prefect", "results").resolve()


def prepared(t: Task, cfg: PipelineConfig) -> Task:
    """`t` as a run on `cfg` uses it: results stored under its work_dir, the retry backoff in force now."""
    return t.with_options(result_storage=result_storage(cfg), retry_delay_seconds=retry_delays(t.retries))


def injected_fault() -> None:
    """Raise InjectedFault when AUTOMIXER_TASK_FAULTS names the running task (and this attempt)."""
    spec = os.environ.get(TASK_FAULTS_ENV, "")
    if not spec:
        return
    from prefect.runtime import task_run

    for entry in filter(None, (e.strip() for e in spec.split(","))):
        name, _, attempt = entry.partition("@")
        if name == task_run.task_name and (not attempt or int(attempt) == task_run.run_count):
            raise InjectedFault(f"{TASK_FAULTS_ENV}: injected failure of {name} on attempt {task_run.run_count}")


@dataclass
class FinishedWork(CachePolicy):
    """A cache key only for finished work: `digest(inputs)` hashes its completion markers, or is None."""

    digest: Callable[[dict[str, Any]], str | None] | None = None

    def compute_key(
        self, task_ctx: TaskRunContext, inputs: dict[str, Any], flow_parameters: dict[str, Any], **kwargs: Any
    ) -> str | None:
        """The task's name and the digest of its finished work; None (no caching) while unfinished."""
        found = self.digest(inputs) if self.digest else None
        return None if found is None else f"{task_ctx.task.name}-{found}"


def _text(path: Path) -> str | None:
    return path.read_text() if path.is_file() else None


def _manifest(cfg: PipelineConfig) -> str | None:
    """The shards manifest without its `created` time (rewritten whenever the manifest is rebuilt)."""
    import json

    text = _text(cfg.path("shards", "manifest.json"))
    if text is None:
        return None
    return json.dumps({k: v for k, v in json.loads(text).items() if k != "created"}, sort_keys=True)


def finished_curation(inputs: dict[str, Any]) -> str | None:
    """Digest of a finished curation (its one run folder intact) and of what it read, else None.

    The digest covers the resolved sources (with their input files' fingerprints), the curation and
    execution options, the run's result, drops.json and the manifest: any change means the task runs.
    """
    import json

    from automixer.curate.runner import load_finished
    from automixer.curate.sources import resolve_sources
    from automixer.io import done_marker, stable_hash

    cfg = resolve(inputs["config"])
    runs = [p for p in sorted(cfg.path("curation").glob("run-*")) if done_marker(p).is_file()]
    if len(runs) != 1 or load_finished(runs[0]) is None:
        return None
    parts = [_text(runs[0] / "result.json"), _text(cfg.path("curation", "drops.json")), _manifest(cfg)]
    if None in parts:
        return None
    specs = json.dumps(resolve_sources(cfg), sort_keys=True, default=str)
    options = cfg.curation.model_dump_json() + cfg.execution.model_dump_json()
    return stable_hash(specs, options, *parts)  # type: ignore[arg-type]


def finished_sweep(inputs: dict[str, Any]) -> str | None:
    """Digest of a sweep whose every design item finished ok and whose runs table exists, else None."""
    from automixer.io import stable_hash
    from automixer.sweep.runner import finished_result

    cfg, mixtures = resolve(inputs["config"]), inputs["mixtures"]
    runs = cfg.path("sweep", "runs")
    if not mixtures or any(finished_result(runs / m["run_id"]) is None for m in mixtures):
        return None
    parts = [_text(cfg.path("sweep", p)) for p in ("fingerprint.json", "noise.json")]
    if None in parts or not cfg.path("sweep", "runs.parquet").is_file():
        return None
    results = [(runs / m["run_id"] / "result.json").read_text() for m in mixtures]
    return stable_hash(*parts, *results)  # type: ignore[arg-type]


def finished_run(inputs: dict[str, Any]) -> str | None:
    """Digest of a proxy run whose result.json says ok for this attempt's seed, else None."""
    from automixer.io import stable_hash
    from automixer.sweep.runner import finished_result

    job, run_dir = inputs["job"], Path(inputs["runs_dir"]) / inputs["job"].item["run_id"]
    done = finished_result(run_dir)
    if done is None or done.get("seed") != job.seed:
        return None
    return stable_hash((run_dir / "result.json").read_text())
