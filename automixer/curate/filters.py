"""The per-domain filter chain of a curation run, built from `CurationConfig.filters`."""

# No `from __future__ import annotations`: datatrove inspects real annotations of pipeline steps.

from pathlib import Path

from datatrove.data import Document
from datatrove.pipeline.filters.base_filter import BaseFilter

from automixer.config import CurationConfig
from automixer.curate.decontam import DecontaminationFilter


class DomainScoped(BaseFilter):
    """Apply `inner` only to documents whose `domain` metadata is in `domains`; the others pass."""

    def __init__(self, inner: BaseFilter, domains: list[str], name: str, exclusion_writer=None) -> None:
        super().__init__(exclusion_writer)
        self.inner, self.domains, self.name = inner, sorted(domains), name

    def filter(self, doc: Document) -> bool | tuple[bool, str]:
        """The inner filter's decision (and reason) for scoped domains; True elsewhere."""
        return self.inner.filter(doc) if doc.metadata.get("domain") in self.domains else True


class ScopedDecontamination(DecontaminationFilter):
    """Decontamination applied only to documents of `domains` (set after construction); the others pass."""

    domains: list[str] = []

    def filter(self, doc: Document) -> bool | tuple[bool, str]:
        """Drop a scoped document that shares an n-gram with an eval item."""
        return super().filter(doc) if doc.metadata.get("domain") in self.domains else True


def make_filter(name: str, cur: CurationConfig) -> BaseFilter:
    """One filter block by its config name."""
    from datatrove.pipeline.filters import (
        C4QualityFilter,
        FineWebQualityFilter,
        GopherQualityFilter,
        GopherRepetitionFilter,
    )

    if name == "web_quality":
        from automixer.curate.quality import FastWebQualityFilter

        rules = ("gopher_quality", "gopher_repetition", "c4", "fineweb")
        return FastWebQualityFilter(**{r: r in cur.web_rules for r in rules})
    if name == "code_quality":
        from automixer.curate.domain_filters import CodeQualityFilter

        return CodeQualityFilter()
    if name == "math_quality":
        from automixer.curate.domain_filters import MathQualityFilter

        return MathQualityFilter()
    if name == "language":
        from automixer.curate.language import LanguageFilter

        return LanguageFilter(cur.languages, cur.language_min_score)
    blocks = {
        "gopher_quality": GopherQualityFilter,
        "gopher_repetition": GopherRepetitionFilter,
        "c4": C4QualityFilter,
        "fineweb": FineWebQualityFilter,
    }
    if name not in blocks:
        raise ValueError(f"unknown filter {name!r}; choose one of {sorted([*blocks, 'web_quality', 'code_quality'])}")
    return blocks[name]()


def exclusion_writer(cur: CurationConfig, data: Path, name: str):
    """A JSONL writer for the documents the step `name` drops (None when exclusions are off)."""
    if not cur.write_exclusions:
        return None
    from datatrove.pipeline.writers import JsonlWriter

    return JsonlWriter(str(data / "excluded" / name), "${rank}.jsonl", compression=None)


def domain_filters(cur: CurationConfig, domains: list[str], data: Path) -> list[tuple[str, BaseFilter]]:
    """(drop name, step) for every configured filter, each scoped to the domains that use it, in config order."""
    users: dict[str, list[str]] = {}
    for dom in domains:
        for name in cur.filters.get(dom, []):
            users.setdefault(name, []).append(dom)
    return [(n, DomainScoped(make_filter(n, cur), ds, n, exclusion_writer(cur, data, n))) for n, ds in users.items()]


def decontamination(cur: CurationConfig, domains: list[str], data: Path) -> tuple[str, BaseFilter] | None:
    """The decontamination step (scoped to its domains), or None when no eval set is configured."""
    dc = cur.decontamination
    if not dc.eval_sets:
        return None
    from automixer.curate.decontam import load_eval_set

    sets = [load_eval_set(e.path, None if e.format == "auto" else e.format, e.name) for e in dc.eval_sets]
    step = ScopedDecontamination(
        sets,
        n=dc.ngram,
        report_path=str(data / "decontam" / "${rank}.jsonl"),
        exclusion_writer=exclusion_writer(cur, data, "decontamination"),
    )
    step.domains = sorted(d for d in domains if dc.domains is None or d in dc.domains)
    return "decontamination", step
