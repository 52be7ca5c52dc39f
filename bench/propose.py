"""Optimiser and bootstrap benchmark on synthetic sweeps with a known mixing law (so the truth is known).

Table 1, the optimiser under each constraint kind: ours (automixer.optimize.minimize_mixture) vs a plain
reference (scipy SLSQP from 20 random feasible starts, found by rejection sampling Dirichlet draws), on the
fitted log-linear law of one sweep: objective gap (ours - reference), worst constraint violation, time ratio.

Table 2, uncertainty: over `--reps` independent sweeps, the share of 90% bootstrap intervals on the
predicted target that contain the TRUE law value at the proposal, the mean interval width, P(beats natural)
against whether the proposal truly beats the natural mixture, and the bootstrap's cost with B=0 and B=50,
for a strong law and a weak one (its effect within a few noise sds, so P(beats natural) has to be calibrated).

    .venv/bin/python bench/propose.py [--reps 10] [--runs 60] [--noise 0.01] [--effects 1.0 0.01]
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np

from automixer.config import ConstraintsConfig, ProposeConfig
from automixer.feasible import feasible_set
from automixer.optimize import minimize_mixture

DOMAINS = ["code", "math", "web", "synthetic"]
NATURAL = np.array([0.45, 0.1, 0.4, 0.05])
T = np.array([-2.0, -1.0, 0.6, -0.5])
EFFECT = {"scale": 1.0}
"""Multiplies T: 1 is a strong law (the proposal clearly beats natural), small values a weak one."""


def law(W: np.ndarray) -> np.ndarray:
    """The true mixing law: bpb = 1 + 0.6 exp(effect * t . w)."""
    return 1.0 + 0.6 * np.exp(EFFECT["scale"] * (np.atleast_2d(W) @ T))


def sweep(n: int, noise: float, seed: int):
    """A sweep of n Dirichlet mixtures around the natural one, with noisy law values, as a RunsTable."""
    import pandas as pd

    from automixer.sweep.table import RunsTable

    rng = np.random.default_rng(seed)
    W = rng.dirichlet(NATURAL * 8 + 0.2, size=n)
    df = pd.DataFrame({f"weight_{d}": W[:, j] for j, d in enumerate(DOMAINS)})
    df.insert(0, "run_id", [f"r{i}" for i in range(n)])
    df["bpb_mean"] = law(W) + rng.normal(0, noise, n)
    return RunsTable(df, DOMAINS)


CASES = {
    "bounds": {"min_weight": {"web": 0.1}, "max_weight": {"code": 0.5, "synthetic": 0.13}},
    "pinned + groups": {"pinned": {"synthetic": 0.1},
                        "groups": [{"name": "cm", "domains": ["code", "math"], "max": 0.6}]},
    "repetition caps": {"max_repetition_ratio": 4.0, "full_run_tokens": 10**8,
                        "available_tokens": {"code": 10**7, "math": 3 * 10**6, "web": 10**8, "synthetic": 10**6}},
    "KL trust region": {"trust_region": {"radius": 0.1}},
    "L1 trust region": {"trust_region": {"metric": "l1", "radius": 0.3}},
}  # fmt: skip


def reference(predict, fs, rng: np.random.Generator, starts: int = 20) -> tuple[np.ndarray, float]:
    """Plain multi-start SLSQP from rejection-sampled feasible Dirichlet draws."""
    from scipy.optimize import minimize

    found = []
    while len(found) < starts:
        D = rng.dirichlet(np.ones(len(DOMAINS)), size=20000)
        found.extend(D[fs.contains(D, 1e-6)][: starts - len(found)])
        if len(found) == 0 and fs.lo.sum() > 0:  # pinned or tight sets: draw the free part only
            found.extend(fs.pull(D[:starts]))
    best = (None, np.inf)
    for x0 in found:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            res = minimize(lambda w: float(predict(w[None, :])[0]), x0, method="SLSQP",
                           bounds=list(zip(fs.lo, fs.hi, strict=True)), constraints=fs.scipy_constraints(),
                           options={"maxiter": 300, "ftol": 1e-12})  # fmt: skip
        if res.fun < best[1]:
            best = (res.x, float(res.fun))
    return best


def violation(fs, w: np.ndarray) -> float:
    """The worst constraint violation of w (0: exactly feasible)."""
    v = [max(0.0, -w.min()), abs(w.sum() - 1.0)] + [max(0.0, float(c.residual(w)[0])) for c in fs.constraints]
    if fs.trust is not None:
        v.append(max(0.0, float(fs.trust.distance(w)[0]) - fs.trust.radius))
    return max(v)


def optimiser_table(runs: int, noise: float) -> None:
    from automixer.predict import LogLinearPredictor

    table = sweep(runs, noise, seed=0)
    est = LogLinearPredictor().fit(table.X, table.y("bpb_mean"))
    natural = dict(zip(DOMAINS, NATURAL, strict=True))
    print(f"\nTable 1: optimiser on the fitted log-linear law ({runs} runs), ours vs multi-start SLSQP reference")
    print(f"{'constraints':<18}{'ours f':>10}{'ref f':>10}{'gap':>11}{'ours viol':>11}{'ref viol':>11}"
          f"{'ours s':>8}{'ref s':>8}{'time ratio':>11}")  # fmt: skip
    for name, c in CASES.items():
        fs = feasible_set(DOMAINS, ConstraintsConfig(**c), natural)
        t = time.perf_counter()
        w, f = minimize_mixture(est.predict, fs, seed=0)
        t_ours = time.perf_counter() - t
        t = time.perf_counter()
        x_ref, f_ref = reference(est.predict, fs, np.random.default_rng(0))
        t_ref = time.perf_counter() - t
        x = np.array(list(w.values()))
        print(f"{name:<18}{f:>10.5f}{f_ref:>10.5f}{f - f_ref:>11.2e}{violation(fs, x):>11.1e}"
              f"{violation(fs, x_ref):>11.1e}{t_ours:>8.2f}{t_ref:>8.2f}{t_ours / t_ref:>11.2f}")  # fmt: skip


def bootstrap_table(reps: int, runs: int, noise: float) -> None:
    from automixer.fitting import propose_mixture

    print(f"\nTable 2 (law effect x{EFFECT['scale']:g}): 90% bootstrap intervals over {reps} sweeps of {runs} runs "
          f"(noise sd {noise}); the true law is known")  # fmt: skip
    print(f"{'predictor':<11}{'B':>4}{'CI covers truth':>17}{'mean width':>12}{'mean P(beat)':>14}"
          f"{'truly beats':>13}{'true regret':>13}{'propose s':>11}")  # fmt: skip
    natural = dict(zip(DOMAINS, NATURAL, strict=True))
    for predictor in ("linear", "loglinear", "gp"):
        for B in (0, 50):
            cover, width, p_beat, beats, regret, secs = [], [], [], [], [], []
            for r in range(reps if B else min(reps, 3)):
                table = sweep(runs, noise, seed=100 + r)
                cfg = ProposeConfig(predictor=predictor, bootstrap=B, seed=r, mixtures_dir="/tmp/automixer-bench")
                t = time.perf_counter()
                spec, _ = propose_mixture(table, cfg, "bench", natural=natural)
                secs.append(time.perf_counter() - t)
                w = np.array([[spec.weights[d] for d in DOMAINS]])
                truth = float(law(w)[0])
                beats.append(truth < float(law(NATURAL)[0]))
                regret.append(truth - float(law(np.eye(4)[:1])[0]))  # the law's optimum is all code
                if B:
                    lo, hi = spec.uncertainty.predicted_target_ci
                    cover.append(lo <= truth <= hi)
                    width.append(hi - lo)
                    p_beat.append(spec.uncertainty.p_beats_natural)
            ci = f"{np.mean(cover):.0%}" if cover else "-"
            wd = f"{np.mean(width):.4f}" if width else "-"
            pb = f"{np.mean(p_beat):.2f}" if p_beat else "-"
            print(f"{predictor:<11}{B:>4}{ci:>17}{wd:>12}{pb:>14}{np.mean(beats):>13.0%}{np.mean(regret):>13.4f}"
                  f"{np.mean(secs):>11.2f}")  # fmt: skip


def main() -> None:
    """Run both tables."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=10)
    ap.add_argument("--runs", type=int, default=60)
    ap.add_argument("--noise", type=float, default=0.01)
    ap.add_argument("--effects", type=float, nargs="+", default=[1.0, 0.01], help="law strengths for table 2")
    args = ap.parse_args()
    optimiser_table(args.runs, args.noise)
    for effect in args.effects:
        EFFECT["scale"] = effect
        bootstrap_table(args.reps, args.runs, args.noise)


if __name__ == "__main__":
    main()
