"""Typed configuration of where the work runs: this machine, a Ray cluster, or Slurm."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from automixer.config_base import StrictModel as _Strict


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


class ReportConfig(_Strict):
    """The HTML report the pipeline writes at its end (`automixer report` makes it on demand)."""

    enabled: bool = True
    """Execute the analysis notebooks and write `<work_dir>/report/report.html` after the proposal."""
    show_code: bool = False
    """Show the notebooks' code cells in the HTML (off: figures, tables and text only)."""
    timeout_s: int = Field(default=900, ge=10)
    """Longest one notebook cell may run before the report fails."""
