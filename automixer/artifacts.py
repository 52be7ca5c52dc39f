"""Each stage's key figures as a markdown table, published as a Prefect artifact of the flow run."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

ARTIFACT_KEYS = {
    "curate": "automixer-curate",
    "synthesize": "automixer-synthesize",
    "sweep": "automixer-sweep",
    "propose": "automixer-propose",
    "pipeline": "automixer-pipeline",
    "report": "automixer-report",
}
"""Artifact key per stage: every flow run adds a version under its stage's key (Prefect keeps the history)."""


def table(header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """A markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def _cell(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.4f}"
    return "" if value is None else str(value)


def curation_markdown(summary: dict) -> str:
    """Documents in, kept and dropped per domain, then dropped documents per filter and reason."""
    if summary.get("submitted"):
        jobs = summary["submitted"].get("jobs", [])
        return f"## Curation (submitted to Slurm, no shards yet)\n\nJobs: {jobs}. Rerun curation when they finish.\n"
    domains = summary.get("domains", {})
    per_domain = table(
        ["domain", "docs in", "docs kept", "dropped", "shards"],
        [[d, c["docs_in"], c["docs_kept"], c["docs_in"] - c["docs_kept"], c["shards"]] for d, c in domains.items()],
    )
    drops = [[f, r, n] for f, reasons in sorted(summary.get("drops", {}).items()) for r, n in sorted(reasons.items())]
    state = "up to date, nothing recomputed" if summary.get("skipped") else "curated"
    return (
        f"## Curation ({state})\n\n{per_domain}\n\n### Dropped documents by filter and reason\n\n"
        f"{table(['filter', 'reason', 'documents'], drops)}\n"
    )


def synthesis_markdown(report: dict | None) -> str:
    """Verified tasks kept of those tried, per family."""
    if not report:
        return "## Synthetic tasks\n\nsynth is disabled: nothing generated.\n"
    families = report.get("families", {})
    rows = [[name, f["kept"], f["tried"]] for name, f in sorted(families.items())]
    rows.append(["**all**", report.get("kept"), report.get("candidates_tried")])
    state = " (cached)" if report.get("skipped") else ""
    return f"## Synthetic tasks{state}\n\n{table(['family', 'tasks verified', 'candidates tried'], rows)}\n"


def sweep_markdown(summary: dict, noise: dict | None = None, metric: str = "bpb_mean") -> str:
    """Proxy runs finished ok and failed by reason, and the run-to-run noise of `metric`."""
    rows: list[list[object]] = [["runs", summary["runs"]], ["finished ok", summary["ok"]]]
    rows += [[f"failed: {reason}", n] for reason, n in summary.get("failed_by_reason", {}).items()]
    rows.append(["retried", summary.get("retried", 0)])
    entry = ((noise or {}).get("metrics") or {}).get(metric) or {}
    sd = entry.get("sd")
    rows.append([f"noise sd of {metric}", f"{sd:.4f} ({entry.get('dof')} dof)" if sd is not None else "no replicates"])
    return f"## Proxy sweep\n\n{table(['figure', 'value'], rows)}\n"


def proposal_markdown(spec: dict) -> str:
    """The proposed weights (with intervals), the predicted target with its interval and the CV score."""
    unc, prov = spec.get("uncertainty") or {}, spec.get("provenance") or {}
    ci = (unc.get("weights_ci") or {}) if unc else {}
    level = f"{unc['level']:.0%} CI" if unc.get("level") else "CI"
    weights = table(["domain", "weight", level], [[d, w, _pair(ci.get(d))] for d, w in spec["weights"].items()])
    figures = [
        [f"predicted {spec['target']}", spec.get("predicted_target"), _pair(unc.get("predicted_target_ci"))],
        ["CV Spearman", prov.get("cv_spearman"), ""],
        ["predictor", prov.get("predictor"), ""],
    ]
    if unc.get("p_beats_natural") is not None:
        figures.append(["P(beats natural)", unc["p_beats_natural"], ""])
    if unc.get("p_beats_uniform") is not None:
        figures.append(["predicted gain over uniform", "", _pair(unc.get("uniform_improvement_ci"))])
        figures.append(["P(beats uniform)", unc["p_beats_uniform"], ""])
    return f"## Proposal `{spec['name']}`\n\n{weights}\n\n{table(['figure', 'value', level], figures)}\n"


def pipeline_markdown(timings: dict[str, float], spec: dict, report: str | None = None) -> str:
    """Wall time per stage, the proposal's weights and predicted target, and the report's location."""
    stages = table(["stage", "wall time (s)"], [[name, f"{sec:.1f}"] for name, sec in timings.items()])
    weights = ", ".join(f"{d} {w:.3f}" for d, w in spec["weights"].items())
    prov = spec.get("provenance") or {}
    cv = prov.get("cv_spearman")
    score = f"; CV Spearman {cv:.3f}" if cv is not None else ""
    return (
        f"## Pipeline\n\n{stages}\n\nProposal `{spec['name']}`: {weights}; "
        f"predicted {spec['target']} {spec.get('predicted_target', float('nan')):.4f}{score}\n"
        + (f"\nReport: [{report}](file://{report})\n" if report else "")
    )


def _pair(pair: Sequence[float] | None) -> str:
    return f"[{pair[0]:.4f}, {pair[1]:.4f}]" if pair else ""


def publish(stage: str, markdown: str, description: str) -> None:
    """Record `markdown` as this flow run's artifact under the stage's key."""
    from prefect.artifacts import create_markdown_artifact

    create_markdown_artifact(markdown=markdown, key=ARTIFACT_KEYS[stage], description=description)
