"""Iterative sweeps vs one random sweep of the same budget: regret of the proposal on synthetic ground truths.

For each synthetic ground truth of bench/predictors.py (a data-mixing law, a quadratic with interactions,
a sharp optimum; 4-5 domains, the target the mean of per-domain losses, Gaussian noise on every run) and
each budget n, two strategies spend n runs:
- random: n mixtures from the sweep's sampler (Dirichlet around the natural mixture), as `--rounds 1`;
- rounds: the same sampler for the first round, then `automixer.sweep.rounds.plan_round` (batch expected
  improvement of a GP) for the others, as `automixer sweep --rounds R`.
Both then propose exactly as `automixer propose` does (`auto` predictor, multi-start SLSQP on the simplex).
The score is the regret of the proposal, true(proposal) - true(optimum), in units of the target's sd over
the sampler's region (0 is perfect), and the regret of the best run seen; mean over `--reps` repetitions.

    .venv/bin/python bench/rounds.py [--n 32 64] [--rounds 4] [--noise 0.1 0.4] [--reps 8]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))


def _truth(name: str):
    """(per-domain loss function, natural mixture dict, target sd over the sampler's region)."""
    from predictors import NATURAL, SYNTHETIC, _design

    factory, k = SYNTHETIC[name]
    fn = factory(np.random.default_rng(sum(map(ord, name))), k)
    natural = {f"d{i}": p for i, p in enumerate(NATURAL[k])}
    sd = float(fn(_design(k, 257, seed=10_000)[1:]).mean(1).std())
    return fn, natural, sd


def _observe(fn, X: np.ndarray, noise: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Noisy per-domain losses and their mean: half the noise variance shared (a seed), half per domain."""
    k = X.shape[1]
    C = fn(X) + rng.normal(0.0, noise * np.sqrt(0.5), (len(X), 1))
    C = C + rng.normal(0.0, noise * np.sqrt(0.5 * k), (len(X), k))
    return C.mean(1), C


def _draw(natural: dict[str, float]):
    """The sweep's sampler as `draw(n, seed) -> weights`."""
    from automixer.sweep.design import sample_mixtures

    def draw(n: int, seed: int) -> np.ndarray:
        return np.array(
            [list(m["weights"].values()) for m in sample_mixtures(natural, n, 1.0, 0.0, seed, min_distance=0)]
        )

    return draw


def _propose(X: np.ndarray, y: np.ndarray, C: np.ndarray, domains: list[str]) -> np.ndarray:
    """The product's proposal: `auto` predictor, minimised on the simplex."""
    from automixer.feasible import FeasibleSet
    from automixer.optimize import minimize_mixture
    from automixer.predict import select_predictor

    est, _, _ = select_predictor("auto", X, y, components=C)
    w, _ = minimize_mixture(est.predict, FeasibleSet(domains), n_candidates=4000)
    return np.array([w[d] for d in domains])


def run_one(setting: tuple) -> dict:
    """Both strategies on one (truth, noise, n, rounds, rep): regrets of the proposal and the best run seen."""
    from automixer.feasible import FeasibleSet
    from automixer.optimize import minimize_mixture
    from automixer.sweep.rounds import plan_round, round_sizes

    name, noise_frac, n, rounds, rep = setting
    fn, natural, sd = _truth(name)
    domains, draw = list(natural), _draw(natural)
    true = lambda W: fn(np.atleast_2d(W)).mean(1)  # noqa: E731
    w_opt, f_opt = minimize_mixture(true, FeasibleSet(domains), n_candidates=8000)
    noise = noise_frac * sd
    out = {"setting": setting}
    for strategy in ("random", "rounds"):
        rng = np.random.default_rng(1000 + rep)
        sizes = [n] if strategy == "random" else round_sizes(n, rounds)
        X = draw(sizes[0], rep)
        y, C = _observe(fn, X, noise, rng)
        for r, size in enumerate(sizes[1:], start=2):
            items = plan_round(X, y, domains, draw, None, r, size, len(X), n, seed=rep, n_candidates=1000)
            Xr = np.array([[it["weights"][d] for d in domains] for it in items])
            yr, Cr = _observe(fn, Xr, noise, rng)
            X, y, C = np.vstack([X, Xr]), np.append(y, yr), np.vstack([C, Cr])
        w = _propose(X, y, C, domains)
        out[strategy] = float((true(w)[0] - f_opt) / sd)
        out[f"{strategy} best seen"] = float((true(X).min() - f_opt) / sd)
    return out


def main() -> None:
    """Parse arguments, evaluate every setting in a process pool and print the regret table."""
    from concurrent.futures import ProcessPoolExecutor

    import pandas as pd
    from predictors import SYNTHETIC

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, nargs="+", default=[32, 64], help="runs per sweep (the budget)")
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--noise", type=float, nargs="+", default=[0.1, 0.4], help="noise sd / target sd")
    ap.add_argument("--reps", type=int, default=8)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    settings = [
        (name, noise, n, args.rounds, rep)
        for name in SYNTHETIC
        for noise in args.noise
        for n in args.n
        for rep in range(args.reps)
    ]
    t0 = time.perf_counter()
    with ProcessPoolExecutor(args.workers) as pool:
        rows = list(pool.map(run_one, settings, chunksize=1))
    df = pd.DataFrame(rows)
    df["truth"], df["noise"], df["n"] = zip(*((s[0], s[1], s[2]) for s in df["setting"]), strict=True)
    cols = ["random", "rounds", "random best seen", "rounds best seen"]
    table = df.groupby(["truth", "noise", "n"], sort=False)[cols].mean()
    table["rounds / random"] = table["rounds"] / table["random"]
    print(
        f"proposal regret in target sd (0 = optimal), mean of {args.reps} reps, {args.rounds} rounds "
        f"({time.perf_counter() - t0:.0f} s)\n"
    )
    print(table.to_string(float_format=lambda v: f"{v:.3f}"))
    overall = df[cols].mean()
    print(
        f"\nall settings: random {overall['random']:.3f}, rounds {overall['rounds']:.3f} "
        f"(ratio {overall['rounds'] / overall['random']:.2f}); "
        f"rounds better in {(df['rounds'] < df['random']).mean():.0%} of {len(df)} sweeps"
    )


if __name__ == "__main__":
    main()
