"""bench/transfer.py's tables: the mixtures against the proposal, the scale ladder per domain, the rank transfer."""

from __future__ import annotations

MIXTURES = ("proposal", "natural", "uniform", "best-seen")
Z = 2.0
"""A difference counts as more than the noise when it exceeds Z standard errors."""


def fmt_weights(w: dict) -> str:
    """Weights as `code 0.25 math 0.25 ...`."""
    return " ".join(f"{d[:4]} {v:.2f}" for d, v in w.items())


def print_mixture_table(summary: dict, mix: dict, tag: str, target: str) -> None:
    """Table 1: each mixture's target at both scales, and the proposal against each baseline."""
    x1, xs = summary["x1"]["mixtures"], summary[tag]["mixtures"]
    print(f"\n| mixture | weights | 1x {target} mean ± sd | {tag} mean ± sd | {tag} min – max | Δ vs proposal {tag} "
          f"| {Z:g}·SE | p (one-sided) | beats by > noise {tag} | beats by > noise 1x "
          f"| {Z:g}·SE Welch | beats by > noise {tag}, Welch |")  # fmt: skip
    print("|---" * 12 + "|")
    for name in MIXTURES:
        a, b = x1[name], xs[name]
        cells = [name, fmt_weights(mix[name]), f"{a['mean']:.4f} ± {a['sd']:.4f}", f"{b['mean']:.4f} ± {b['sd']:.4f}"]
        cells.append(f"{b['min']:.4f} – {b['max']:.4f}")
        if name == "proposal":
            cells += ["—"] * 7
        else:
            v, v1 = b["vs_proposal"], a["vs_proposal"]
            yes = {True: "**yes**", False: "no", None: "n/a"}
            cells += [f"{v['delta']:+.4f}", f"{Z * v['se']:.4f}", f"{v['p_one_sided']:.3f}"]
            cells += [yes[v["beats"]], f"{yes[v1['beats']]} (Δ {v1['delta']:+.4f})"]
            w = b["vs_proposal_welch"]
            cells += [f"{Z * w['se']:.4f}", f"{yes[w['beats']]} (p {w['p_one_sided']:.3f})"]
        print("| " + " | ".join(cells) + " |")
    for scale in ("x1", tag):
        s = summary[scale]
        print(f"\npooled per-seed sd at {scale}: {s['pooled_sd']:.4f} ({s['dof']} degrees of freedom)", end="")
    print(f"\nΔ > 0: the proposal is better; beats by > noise: Δ > {Z:g}·SE, SE = pooled sd·sqrt(1/n_p + 1/n_b); "
          "Welch: SE = sqrt(s_p²/n_p + s_b²/n_b)")  # fmt: skip


def print_ladder_tables(summary: dict, domains: dict, target: str) -> None:
    """Table 3: each mixture's target and per-domain metrics at every scale, and its gap to the proposal."""
    labels = list(summary)
    print("\n| mixture | " + " | ".join(f"{lab} {target} (Δ vs proposal)" for lab in labels) + " |")
    print("|---" * (len(labels) + 1) + "|")
    for name in MIXTURES:
        cells = [name]
        for lab in labels:
            row, prop = summary[lab]["mixtures"][name], summary[lab]["mixtures"]["proposal"]["mean"]
            cells.append(f"{row['mean']:.4f}" + ("" if name == "proposal" else f" ({row['mean'] - prop:+.4f})"))
        print("| " + " | ".join(cells) + " |")
    metrics = sorted({k for per in domains.values() for row in per.values() for k in row})
    print("\n| scale | mixture | " + " | ".join(metrics) + " |")
    print("|---" * (len(metrics) + 2) + "|")
    for lab, per in domains.items():
        for name, row in per.items():
            print(f"| {lab} | {name} | " + " | ".join(f"{row.get(k, float('nan')):.3f}" for k in metrics) + " |")
    print("Δ > 0: the baseline is worse than the proposal at that scale; per-domain cells are means over seeds")


def print_rank_table(pairs: dict, stats: dict, tag: str, mix_weights: dict) -> None:
    """Table 2: the 1x and scaled value and rank of every mixture in the rank-transfer set."""
    names = list(pairs)
    r1 = {n: i + 1 for i, n in enumerate(sorted(names, key=lambda n: pairs[n][0]))}
    rs = {n: i + 1 for i, n in enumerate(sorted(names, key=lambda n: pairs[n][1]))}
    print(f"\n| mixture (sweep seed) | weights | 1x | 1x rank | {tag} | {tag} rank |")
    print("|---" * 6 + "|")
    for n in sorted(names, key=lambda n: pairs[n][0]):
        cells = [n, fmt_weights(mix_weights[n]), f"{pairs[n][0]:.4f}", str(r1[n]), f"{pairs[n][1]:.4f}", str(rs[n])]
        print("| " + " | ".join(cells) + " |")
    if stats["n"] >= 3:
        print(
            f"\nrank transfer 1x -> {tag} over n = {stats['n']}: Spearman {stats['spearman']:.3f} "
            f"(p {stats['spearman_p']:.2g}), Kendall {stats['kendall']:.3f} (p {stats['kendall_p']:.2g}); "
            f"sd across these mixtures: 1x {stats['sd_x1']:.4f}, {tag} {stats['sd_scaled']:.4f}"
        )


def print_headroom(room: dict, tag: str) -> None:
    """Table 4: per predictor fit on the scaled runs, its optimum under the same constraints and its gain over uniform."""
    if not room:
        return
    print(
        f"\nheadroom at {tag}: each predictor fit on the {room['n_runs']} {tag} runs, minimised under the same constraints"
    )
    print(f"| predictor | CV Spearman | optimum at {tag} | predicted | uniform predicted | gain over uniform |")
    print("|---" * 6 + "|")
    for name, f in room["fits"].items():
        label = name if f["predictor"] == name else f"{name} ({f['predictor']})"
        cells = [label, f"{f['cv_spearman']:.3f}", fmt_weights(f["weights"]), f"{f['predicted']:.4f}"]
        print("| " + " | ".join([*cells, f"{f['predicted_uniform']:.4f}", f"{f['gain_over_uniform']:+.4f}"]) + " |")
