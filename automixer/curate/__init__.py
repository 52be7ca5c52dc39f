"""Curation: a datatrove pipeline turning raw corpora into deduplicated per-domain Parquet shards."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from automixer.config import PipelineConfig

__all__ = ["check_sources", "run_curation"]


def run_curation(cfg: PipelineConfig, progress: Callable[[str], None] | None = None) -> dict:
    """Curate every non-synthetic source into `shards/<domain>/`, write drops.json and the manifest."""
    from automixer.curate.runner import run_curation as _run

    return _run(cfg, progress)


def check_sources(cfg: PipelineConfig) -> list[dict]:
    """Resolve every source and read its first document; raise a clear error for a bad path or field."""
    from automixer.curate.sources import resolve_sources

    if not cfg.sources:
        raise ValueError("no sources configured: add at least one entry under `sources`")
    return resolve_sources(cfg, check=True)
