"""The sweep design: Dirichlet mixtures around the natural distribution."""

from __future__ import annotations

import json

import numpy as np
import pytest

from automixer.sweep.design import read_design, sample_mixtures, write_design

NATURAL = {"code": 3000.0, "math": 2000.0, "web": 4950.0, "synthetic": 50.0}  # synthetic: 0.5 % of tokens


def _matrix(design: list[dict]) -> np.ndarray:
    return np.array([list(r["weights"].values()) for r in design])


def test_sums_bounds_and_natural_first() -> None:
    design = sample_mixtures(NATURAL, n=60, concentration=1.0, min_weight=0.01, seed=0)
    W = _matrix(design)
    assert len(design) == 60
    assert [r["run_id"] for r in design[:2]] == ["run-000", "run-001"]
    assert list(design[0]["weights"]) == list(NATURAL)
    assert np.all(np.abs(W.sum(axis=1) - 1.0) <= 1e-9)
    assert W.min() >= 0.01
    # natural first (through the min_weight map w -> m + (1 - K m) w)
    p = np.array(list(NATURAL.values())) / sum(NATURAL.values())
    np.testing.assert_allclose(W[0], 0.01 + (1 - 4 * 0.01) * p, atol=1e-12)


def test_natural_is_exact_without_min_weight_and_tiny_domain_is_explored() -> None:
    W = _matrix(sample_mixtures(NATURAL, n=60, concentration=1.0, min_weight=0.0, seed=1))
    np.testing.assert_allclose(W[0], np.array(list(NATURAL.values())) / 10000.0, atol=1e-12)
    # synthetic is 0.5 % naturally; the floor makes a good share of runs give it >= 5 %
    assert (W[1:, 3] >= 0.05).mean() > 0.15


def test_deterministic_and_seed_dependent() -> None:
    a = sample_mixtures(NATURAL, n=20, concentration=1.0, min_weight=0.0, seed=3)
    b = sample_mixtures(NATURAL, n=20, concentration=1.0, min_weight=0.0, seed=3)
    c = sample_mixtures(NATURAL, n=20, concentration=1.0, min_weight=0.0, seed=4)
    assert a == b
    assert a[1:] != c[1:]


def test_no_near_duplicates() -> None:
    W = _matrix(sample_mixtures(NATURAL, n=80, concentration=20.0, min_weight=0.0, seed=0, min_distance=0.05))
    dist = np.abs(W[:, None, :] - W[None, :, :]).sum(axis=2) + np.eye(len(W)) * 9
    assert dist.min() >= 0.05


def test_impossible_distinctness_raises() -> None:
    with pytest.raises(ValueError, match="distinct mixtures"):
        sample_mixtures({"a": 1.0, "b": 1.0}, n=200, concentration=1.0, min_weight=0.0, seed=0, min_distance=0.5)


def test_mean_near_natural() -> None:
    natural = {"code": 0.4, "math": 0.3, "web": 0.2, "synthetic": 0.1}  # all above the floor
    W = _matrix(sample_mixtures(natural, n=400, concentration=1.0, min_weight=0.0, seed=0))
    np.testing.assert_allclose(W.mean(axis=0), list(natural.values()), atol=0.03)


def test_bad_inputs() -> None:
    with pytest.raises(ValueError, match="min_weight"):
        sample_mixtures(NATURAL, n=5, concentration=1.0, min_weight=0.3, seed=0)
    with pytest.raises(ValueError, match="two domains"):
        sample_mixtures({"code": 1.0}, n=5, concentration=1.0, min_weight=0.0, seed=0)


def test_write_read_roundtrip(tmp_path) -> None:
    design = sample_mixtures(NATURAL, n=10, concentration=1.0, min_weight=0.0, seed=0)
    path = write_design(design, tmp_path / "sweep" / "design.json")
    assert read_design(path) == design
    assert [p.name for p in path.parent.iterdir()] == ["design.json"]  # no temp files left
    path.write_text(json.dumps([{"run_id": "r", "weights": {"a": 0.5, "b": 0.4}}]))
    with pytest.raises(ValueError, match="sum to 1"):
        read_design(path)
    with pytest.raises(FileNotFoundError, match="automixer sweep"):
        read_design(tmp_path / "missing.json")
