"""Constrained minimisation over the simplex: every constraint kind, infeasibility messages, trust region, top-k."""

from __future__ import annotations

import numpy as np
import pytest

from automixer.config import ConstraintsConfig
from automixer.feasible import InfeasibleError, feasible_set, kl_divergence
from automixer.optimize import minimize_mixture, pareto_front

DOMAINS = ["code", "math", "web", "synthetic"]
TARGET = np.array([0.4, 0.1, 0.35, 0.15])
NATURAL = {"code": 0.2, "math": 0.3, "web": 0.4, "synthetic": 0.1}
NAT = np.array([NATURAL[d] for d in DOMAINS])


def bowl(W: np.ndarray) -> np.ndarray:
    """A quadratic bowl with its minimum at TARGET (inside the simplex)."""
    return ((np.atleast_2d(W) - TARGET) ** 2).sum(axis=1) + 1.0


def _fs(**constraints):
    tokens = constraints.pop("tokens", None)
    return feasible_set(DOMAINS, ConstraintsConfig(**constraints), NATURAL, tokens)


def _solve(predict=bowl, n=3000, **constraints) -> tuple[np.ndarray, float, object]:
    fs = _fs(**constraints)
    w, f = minimize_mixture(predict, fs, seed=0, n_candidates=n)
    assert list(w) == DOMAINS
    x = np.array(list(w.values()))
    assert abs(x.sum() - 1.0) <= 1e-9 and x.min() >= 0.0 and fs.contains(x)[0]
    return x, f, fs


def test_finds_interior_optimum() -> None:
    x, f, _ = _solve()
    np.testing.assert_allclose(x, TARGET, atol=1e-3)
    assert abs(f - 1.0) < 1e-6


def test_active_bounds_are_exact() -> None:
    x, f, _ = _solve(min_weight={"synthetic": 0.3}, max_weight={"code": 0.2})
    assert x[0] == 0.2 and x[3] == 0.3
    # the other 0.5 goes to math and web: their targets (0.1, 0.35) each shifted up by 0.025
    np.testing.assert_allclose(x[1:3], [0.125, 0.375], atol=1e-4)
    assert f == pytest.approx(bowl(np.array([0.2, 0.125, 0.375, 0.3]))[0], abs=1e-6)


def test_pinned_weight_is_exact() -> None:
    x, _, _ = _solve(pinned={"math": 0.3})
    assert x[1] == 0.3
    # the 0.2 taken by math comes off the other three equally (projection of TARGET onto the plane)
    np.testing.assert_allclose(x[[0, 2, 3]], TARGET[[0, 2, 3]] - 0.2 / 3, atol=1e-4)


def test_group_sum_binds() -> None:
    x, _, _ = _solve(groups=[{"name": "code_web", "domains": ["code", "web"], "max": 0.5}])
    assert x[0] + x[2] == pytest.approx(0.5, abs=1e-9)
    np.testing.assert_allclose(x, [0.275, 0.225, 0.225, 0.275], atol=1e-4)
    x, _, _ = _solve(groups=[{"name": "all_code", "domains": ["code", "synthetic"], "min": 0.8}])
    assert x[0] + x[3] >= 0.8 - 1e-12 and x[0] + x[3] == pytest.approx(0.8, abs=1e-9)


def test_repetition_cap_binds_only_when_tokens_are_scarce() -> None:
    scarce = {"code": 1_000_000, "math": 10**9, "web": 10**9, "synthetic": 10**9}
    x, _, fs = _solve(max_repetition_ratio=2.0, full_run_tokens=10_000_000, tokens=scarce)
    assert x[0] == pytest.approx(0.2, abs=1e-12)  # 1M tokens x 2 epochs / 10M = 0.2 < the optimum's 0.4
    assert any(c.name.startswith("max_repetition.code<=0.2 (1000000 tokens x 2") for c in fs.constraints)
    x, _, _ = _solve(max_repetition_ratio=2.0, full_run_tokens=10_000_000, tokens={d: 10**9 for d in DOMAINS})
    np.testing.assert_allclose(x, TARGET, atol=1e-3)
    x, _, _ = _solve(max_repetition_ratio={"web": 1.0}, full_run_tokens=1000, available_tokens={"web": 100})
    assert x[2] == pytest.approx(0.1, abs=1e-12)  # a per-domain ratio caps only that domain


@pytest.mark.parametrize("metric", ["kl", "l1"])
def test_trust_region_keeps_the_proposal_within_the_radius(metric: str) -> None:
    radius = 0.05 if metric == "kl" else 0.2
    x, f, fs = _solve(trust_region={"metric": metric, "radius": radius})
    dist = fs.trust.distance(x)[0]
    assert dist <= radius + 1e-9 and dist >= radius - 1e-4  # the optimum lies outside: the radius binds
    assert f < bowl(NAT)[0]
    far, _, _ = _solve()
    assert fs.trust.distance(far)[0] > radius


def test_kl_penalty_pulls_toward_natural() -> None:
    fs = _fs()
    kls = []
    for lam in (0.0, 0.1, 1.0):
        w, _ = minimize_mixture(bowl, fs, seed=0, n_candidates=2000, kl_penalty=lam, natural=NAT)
        kls.append(kl_divergence(np.array([list(w.values())]), NAT)[0])
    assert kls[0] > kls[1] > kls[2] > 0


def test_top_k_average_is_feasible_and_near_the_optimum() -> None:
    fs = _fs(max_weight={"code": 0.3})
    w, f = minimize_mixture(bowl, fs, seed=0, n_candidates=5000, top_k=50)
    x = np.array(list(w.values()))
    assert fs.contains(x)[0] and x[0] <= 0.3
    best, fbest = minimize_mixture(bowl, fs, seed=0, n_candidates=5000)
    assert fbest <= f < fbest + 0.01 and w != best
    assert f == pytest.approx(bowl(x)[0])


def test_infeasible_constraints_name_a_minimal_conflict() -> None:
    groups = [{"name": "web_synth", "domains": ["web", "synthetic"], "min": 0.5}]
    with pytest.raises(InfeasibleError) as err:
        _fs(min_weight={"code": 0.6, "math": 0.0}, max_weight={"math": 0.9}, groups=groups).check()
    assert str(err.value) == (
        "infeasible constraints: min_weight.code=0.6 + group 'web_synth'>=0.5 need at least 1.1 > 1 of the total weight"
    )
    assert err.value.conflict == ["min_weight.code=0.6", "group 'web_synth'>=0.5"]  # max_weight.math is not to blame
    with pytest.raises(InfeasibleError, match=r"max_weight.code=0.1 \+ .* allow at most 0.6 < 1"):
        minimize_mixture(bowl, _fs(max_weight={"code": 0.1, "math": 0.1, "web": 0.2, "synthetic": 0.2}))
    with pytest.raises(InfeasibleError, match=r"^infeasible constraints: pinned.code=0.5 \+ group 'cm'<=0.4 need"):
        _fs(pinned={"code": 0.5}, groups=[{"name": "cm", "domains": ["code", "math"], "max": 0.4}]).check()
    with pytest.raises(InfeasibleError, match=r"min_weight.code=0.6 \+ trust_region.kl<=0.01 .* at kl=0.3"):
        _fs(min_weight={"code": 0.6}, max_weight={"web": 0.9}, trust_region={"radius": 0.01}).check()
    tokens = {"code": 10, "math": 10, "web": 10, "synthetic": 10}
    with pytest.raises(InfeasibleError, match=r"max_repetition.code<=0.1 .* allow at most 0.4 < 1"):
        _fs(max_repetition_ratio=1.0, full_run_tokens=100, tokens=tokens).check()


def test_bad_inputs_are_named() -> None:
    with pytest.raises(ValueError, match=r"unknown domain\(s\) \['books'\]"):
        _fs(min_weight={"books": 0.1})
    with pytest.raises(ValueError, match=r"available tokens of \['code'"):
        _fs(max_repetition_ratio=2.0, full_run_tokens=100)
    with pytest.raises(ValueError, match="needs the natural mixture"):
        feasible_set(DOMAINS, ConstraintsConfig(trust_region={"radius": 0.1}))
    with pytest.raises(ValueError, match="pinned.code = 0.5 is outside"):
        ConstraintsConfig(pinned={"code": 0.5}, max_weight={"code": 0.4})
    with pytest.raises(ValueError, match="needs full_run_tokens"):
        ConstraintsConfig(max_repetition_ratio=2.0)
    with pytest.raises(ValueError, match="min 0.6 is above max 0.2"):
        ConstraintsConfig(groups=[{"name": "g", "domains": ["code"], "min": 0.6, "max": 0.2}])


def test_samples_are_exactly_feasible() -> None:
    fs = _fs(
        min_weight={"code": 0.1},
        pinned={"synthetic": 0.05},
        groups=[{"name": "cm", "domains": ["code", "math"], "min": 0.3, "max": 0.7}],
        trust_region={"radius": 0.4},
    )
    W = fs.sample(3000, np.random.default_rng(0))
    assert len(W) > 2500 and fs.contains(W).all()
    assert (W[:, 3] == 0.05).all() and np.abs(W.sum(axis=1) - 1).max() <= 1e-12
    assert np.ptp(W[:, 0]) > 0.3  # spread over the set, not stuck at its centre


def test_deterministic_and_nonsmooth() -> None:
    fs = _fs(min_weight={"web": 0.5})
    first = minimize_mixture(bowl, fs, seed=1, n_candidates=2000)
    assert first == minimize_mixture(bowl, fs, seed=1, n_candidates=2000)

    def rank_only(W: np.ndarray) -> np.ndarray:  # piecewise constant: only the random search can help
        return np.floor(np.abs(W - TARGET).sum(axis=1) * 10)

    x, f, _ = _solve(rank_only, max_weight={"web": 0.3})
    assert f == 0.0 and x[2] <= 0.3
    with pytest.raises(ValueError, match="no finite value"):
        minimize_mixture(lambda W: np.full(len(W), np.nan), _fs(), n_candidates=100)


def test_pareto_front_of_two_bowls() -> None:
    other = np.array([0.1, 0.5, 0.2, 0.2])

    def bowl_b(W: np.ndarray) -> np.ndarray:
        return ((np.atleast_2d(W) - other) ** 2).sum(axis=1)

    front = pareto_front(bowl, bowl_b, _fs(), n_points=7, seed=0, n_candidates=2000)
    assert len(front) >= 5
    fa, fb = [p[1] for p in front], [p[2] for p in front]
    assert fa == sorted(fa) and fb == sorted(fb, reverse=True)  # trading one target for the other
    np.testing.assert_allclose(list(front[0][0].values()), TARGET, atol=1e-3)
    np.testing.assert_allclose(list(front[-1][0].values()), other, atol=1e-3)
