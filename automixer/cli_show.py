"""How the CLI shows a proposal and a Pareto front (rich tables); imported by the commands that print them."""

from __future__ import annotations


def ci_text(pair: list[float] | None, fmt: str = ".4f") -> str:
    """An interval as `[lo, hi]`, or empty when there is none."""
    return f"[{pair[0]:{fmt}}, {pair[1]:{fmt}}]" if pair else ""


def print_mixture(spec: dict, path: str | None) -> None:
    """Print the proposal's weights (with bootstrap intervals), prediction and comparison with natural."""
    from rich.console import Console
    from rich.table import Table

    prov, unc = spec.get("provenance", {}), spec.get("uncertainty") or {}
    level = f"{unc['level']:.0%} CI" if unc else ""
    table = Table(title=f"proposed mixture '{spec['name']}'")
    table.add_column("domain")
    table.add_column("weight", justify="right")
    if unc:
        table.add_column(level, justify="right")
    natural = (prov.get("natural") or {}).get("weights", {})
    if natural:
        table.add_column("natural", justify="right")
    for dom, w in spec["weights"].items():
        row = [dom, f"{w:.4f}"] + ([ci_text(unc["weights_ci"].get(dom))] if unc else [])
        table.add_row(*row, *([f"{natural.get(dom, float('nan')):.4f}"] if natural else []))
    console = Console()
    console.print(table)
    pred, cv, target = spec.get("predicted_target"), prov.get("cv_spearman"), spec["target"]
    ci = f" ({level} {ci_text(unc['predicted_target_ci'])})" if unc else ""
    console.print(f"predicted {target} = {pred:.4f}{ci}, predictor {prov.get('predictor')}, CV Spearman {cv:.3f}")
    nat_pred = (prov.get("natural") or {}).get(target)
    if nat_pred is not None:
        line = f"natural mixture ({prov['natural'].get('source')}): predicted {nat_pred:.4f}"
        if unc:
            line += (
                f"; improvement {level} {ci_text(unc['improvement_ci'])}; P(proposal beats natural) = "
                f"{unc['p_beats_natural']:.2f} over {unc['n_resamples'] - unc['n_failed']} bootstrap refits "
                f"({unc['seconds']:.1f} s)"
            )
        console.print(line)
    uni_pred = (prov.get("uniform") or {}).get(target)
    if uni_pred is not None:
        line = f"uniform weights: predicted {uni_pred:.4f}"
        if unc and unc.get("p_beats_uniform") is not None:
            line += f"; improvement {level} {ci_text(unc['uniform_improvement_ci'])}; "
            line += f"P(proposal beats uniform) = {unc['p_beats_uniform']:.2f}"
        if unc and unc.get("p_beats_uniform_one_run") is not None:
            line += f"; P(one run of the proposal beats one of uniform) = {unc['p_beats_uniform_one_run']:.2f}"
        console.print(line)
    noise = prov.get("noise") or {}
    if noise.get("sd") is not None:
        line = f"run-to-run noise of {target}: sd {noise['sd']:.4f} ({noise.get('dof', '?')} degrees of freedom)"
        if unc and unc.get("p_beats_natural_one_run") is not None:
            line += f"; P(one run of the proposal beats one of natural) = {unc['p_beats_natural_one_run']:.2f}"
        console.print(line)
    if path:
        console.print(f"written to {path}")


def print_front(front: list[dict], targets: list[str]) -> None:
    """Print the Pareto front: one row per mixture, its weights and both predicted targets."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"Pareto front: {targets[0]} vs {targets[1]} (predicted)")
    domains = list(front[0]["weights"])
    for col in [*domains, *targets]:
        table.add_column(col, justify="right")
    for pt in front:
        table.add_row(*[f"{pt['weights'][d]:.4f}" for d in domains], *[f"{pt[t]:.4f}" for t in targets])
    Console().print(table)
