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


# ----- caps, the Sobol sampler, anchors


def test_caps_are_respected_exactly_and_the_natural_run_stays_the_reference() -> None:
    caps = {"code": 0.25, "synthetic": 0.08}  # natural code is 0.30: above its cap
    for sampler in ("dirichlet", "sobol"):
        design = sample_mixtures(NATURAL, n=80, concentration=0.5, min_weight=0.01, seed=0, caps=caps, sampler=sampler)
        W = _matrix(design)
        assert np.all(W[1:, 0] <= 0.25) and np.all(W[1:, 3] <= 0.08)  # exactly: no tolerance
        assert (W[1:, 0] == 0.25).any() and (W[1:, 3] == 0.08).any()  # the caps bind, so they were tested
        assert np.all(np.abs(W.sum(axis=1) - 1.0) <= 1e-9) and W.min() >= 0.01
        assert W[0, 0] > 0.25  # the natural mixture is not capped
    uncapped = _matrix(sample_mixtures(NATURAL, n=80, concentration=0.5, min_weight=0.01, seed=0))
    assert (uncapped[1:, 0] > 0.25).mean() > 0.2


def test_projection_clips_and_redistributes_in_proportion() -> None:
    from automixer.sweep.design import project_to_caps

    w = np.array([0.6, 0.3, 0.1])
    np.testing.assert_allclose(project_to_caps(w, np.array([0.4, 1.0, 1.0])), [0.4, 0.45, 0.15])
    np.testing.assert_allclose(project_to_caps(w, np.array([0.4, 0.4, 1.0])), [0.4, 0.4, 0.2])  # two rounds
    # above min_weight 0.05 the free domains keep their shape: (0.3-0.05):(0.1-0.05) = 5:1
    np.testing.assert_allclose(
        project_to_caps(w, np.array([0.4, 1.0, 1.0]), 0.05), [0.4, 0.3 + 0.2 * 5 / 6, 0.1 + 0.2 / 6]
    )
    np.testing.assert_array_equal(project_to_caps(w, np.ones(3)), w)


def test_infeasible_caps_name_the_domains() -> None:
    four = dict.fromkeys(NATURAL, 0.2)
    with pytest.raises(ValueError, match=r"caps \{'code': 0\.2.*'synthetic': 0\.2\} allow at most 0\.8 < 1"):
        sample_mixtures(NATURAL, n=5, concentration=1.0, min_weight=0.0, seed=0, caps=four)
    with pytest.raises(ValueError, match=r"\{'synthetic': 0\.005\} are below the sweep's min_weight=0\.01"):
        sample_mixtures(NATURAL, n=5, concentration=1.0, min_weight=0.01, seed=0, caps={"synthetic": 0.005})
    with pytest.raises(ValueError, match=r"unknown domain\(s\) \['books'\]"):
        sample_mixtures(NATURAL, n=5, concentration=1.0, min_weight=0.0, seed=0, caps={"books": 0.1})
    with pytest.raises(ValueError, match="sampler"):
        sample_mixtures(NATURAL, n=5, concentration=1.0, min_weight=0.0, seed=0, sampler="latin")


def test_sobol_is_deterministic_and_seeded() -> None:
    a = sample_mixtures(NATURAL, n=30, concentration=1.0, min_weight=0.0, seed=3, sampler="sobol")
    assert a == sample_mixtures(NATURAL, n=30, concentration=1.0, min_weight=0.0, seed=3, sampler="sobol")
    assert a[1:] != sample_mixtures(NATURAL, n=30, concentration=1.0, min_weight=0.0, seed=4, sampler="sobol")[1:]
    assert a[1:] != sample_mixtures(NATURAL, n=30, concentration=1.0, min_weight=0.0, seed=3)[1:]
    assert a[0] == sample_mixtures(NATURAL, n=30, concentration=1.0, min_weight=0.0, seed=3)[0]


def _energy_distance(X: np.ndarray, Y: np.ndarray, yy: float) -> float:
    """Energy distance between the samples X and Y (yy: Y's mean within-sample distance, precomputed)."""
    d = lambda A, B: float(np.linalg.norm(A[:, None] - B[None], axis=2).mean())  # noqa: E731
    return 2 * d(X, Y) - d(X, X) - yy


def test_sobol_covers_the_design_distribution_better_than_iid_draws() -> None:
    # both samplers target the same distribution (log-uniform concentration, then a Dirichlet); a large iid
    # sample of it is the reference, and the energy distance to it measures how well n points cover it
    ref = _matrix(sample_mixtures(NATURAL, n=1501, concentration=1.0, min_weight=0.0, seed=99, min_distance=0.0))[1:]
    yy = float(np.linalg.norm(ref[:, None] - ref[None], axis=2).mean())
    dist = {
        s: [
            _energy_distance(_matrix(sample_mixtures(NATURAL, 65, 1.0, 0.0, seed, sampler=s))[1:], ref, yy)
            for seed in range(4)
        ]
        for s in ("dirichlet", "sobol")
    }
    assert np.mean(dist["sobol"]) < 0.5 * np.mean(dist["dirichlet"])
    assert max(dist["sobol"]) < np.mean(dist["dirichlet"])
    nat = np.array(list(NATURAL.values())) / sum(NATURAL.values())
    base = np.maximum(nat, 0.05) / np.maximum(nat, 0.05).sum()
    W = _matrix(sample_mixtures(NATURAL, 257, 1.0, 0.0, 0, sampler="sobol", min_distance=0.0))[1:]
    np.testing.assert_allclose(W.mean(axis=0), base, atol=0.01)  # the same mean as the iid draws


def test_anchor_replicates_ids_seeds_and_order(tmp_path) -> None:
    from automixer.sweep.design import add_anchor_replicates

    design = sample_mixtures(NATURAL, n=5, concentration=1.0, min_weight=0.0, seed=0)
    out = add_anchor_replicates(design, anchors=2, anchor_seeds=3, seed=7)
    assert [r["run_id"] for r in out] == [
        *(r["run_id"] for r in design),
        "run-000-s1",
        "run-000-s2",
        "run-001-s1",
        "run-001-s2",
    ]
    reps = out[5:]
    assert [r["seed"] for r in reps] == [1007, 2007, 1007, 2007]
    assert [r["replicate_of"] for r in reps] == ["run-000", "run-000", "run-001", "run-001"]
    assert reps[0]["weights"] == design[0]["weights"] and reps[2]["weights"] == design[1]["weights"]
    assert all("seed" not in r and "replicate_of" not in r for r in out[:5])
    assert add_anchor_replicates(out, 2, 3, 7) == out  # idempotent
    assert add_anchor_replicates(design, 0, 3, 7) == design == add_anchor_replicates(design, 2, 1, 7)
    rounds = add_anchor_replicates([{**design[0], "round": 2, "seed": 5}, design[1]], 1, 2, 7)
    assert rounds[-1] == {**design[0], "run_id": "run-000-s1", "seed": 1005, "replicate_of": "run-000", "round": 2}
    assert read_design(write_design(out, tmp_path / "d.json")) == out
    with pytest.raises(ValueError, match="exceeds the 5 runs"):
        add_anchor_replicates(design, 6, 2, 0)
    (tmp_path / "bad.json").write_text(json.dumps([out[0], {**out[5], "replicate_of": "run-999"}]))
    with pytest.raises(ValueError, match="run-999|replicate"):
        read_design(tmp_path / "bad.json")
    (tmp_path / "bad.json").write_text(json.dumps([{**out[0], "seed": "1"}]))
    with pytest.raises(ValueError, match="`seed` of run-000 must be an integer"):
        read_design(tmp_path / "bad.json")


def test_stage_design_samples_within_the_proposal_caps_and_adds_anchors(tmp_path) -> None:
    from automixer import stages
    from automixer.config import config_from_dict

    def cfg(**constraints):
        raw = {
            "work_dir": str(tmp_path),
            "domains": list(NATURAL),
            "sweep": {"n_runs": 12, "anchors": 2, "anchor_seeds": 2, "sampler": "sobol"},
            "propose": {"constraints": {"max_weight": {"code": 0.35}, **constraints}},
        }
        return config_from_dict(raw, where="test")

    meta = {"domains": {d: {"train_tokens": int(v)} for d, v in NATURAL.items()}, "tokenizer_sha256": "t"}
    manifest = {"domains": {d: {"tokens": int(v) * 100} for d, v in NATURAL.items()}}  # synthetic: 5000
    (tmp_path / "shards").mkdir(parents=True)
    (tmp_path / "shards" / "manifest.json").write_text(json.dumps(manifest))
    c = cfg(max_repetition_ratio={"synthetic": 4.0}, full_run_tokens=200_000)  # synthetic <= 5000*4/2e5 = 0.1
    assert stages.sweep_caps(c) == {"code": 0.35, "synthetic": 0.1}
    design = stages.design(c, meta)
    assert len(design) == 14 and [r["run_id"] for r in design[-2:]] == ["run-000-s1", "run-001-s1"]
    W = _matrix([r for r in design[1:] if "replicate_of" not in r])
    assert W[:, 0].max() <= 0.35 and W[:, 3].max() <= 0.1
    saved = json.loads((tmp_path / "sweep" / "fingerprint.json").read_text())
    assert saved["caps"] == {"code": 0.35, "synthetic": 0.1}
    other = cfg(max_repetition_ratio={"synthetic": 4.0}, full_run_tokens=100_000)  # other caps: another sweep
    assert stages.sweep_fingerprint(other, meta) != stages.sweep_fingerprint(c, meta)
    with pytest.raises(RuntimeError, match="or caps"):
        stages.design(other, meta)
    assert stages.sweep_caps(c.model_copy(update={"sweep": c.sweep.model_copy(update={"respect_caps": False})})) == {}
