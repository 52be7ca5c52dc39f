"""The mixture spec YAML: round trip and validation."""

from __future__ import annotations

import numpy as np
import pytest
import yaml
from pydantic import ValidationError

from automixer.mixture import MixtureSpec, Uncertainty, read_mixture, write_mixture


def _spec(**kw) -> MixtureSpec:
    base = {
        "name": "proposal",
        "weights": {"code": 0.3, "math": 0.2, "web": 0.45, "synthetic": 0.05},
        "target": "bpb_mean",
        "predicted_target": 1.234,
        "provenance": {"predictor": "gp", "cv_spearman": np.float64(0.91), "n_runs": np.int64(60)},
    }
    return MixtureSpec(**{**base, **kw})


def test_roundtrip_and_key_order(tmp_path) -> None:
    spec = _spec()
    path = write_mixture(spec, tmp_path / "mixtures")
    assert path == tmp_path / "mixtures" / "proposal.yaml"
    back = read_mixture(path)
    assert back.weights == spec.weights and back.predicted_target == 1.234
    assert back.provenance == {"predictor": "gp", "cv_spearman": 0.91, "n_runs": 60}
    assert list(yaml.safe_load(path.read_text())) == ["name", "target", "predicted_target", "weights", "provenance"]
    assert list(back.weights) == ["code", "math", "web", "synthetic"]
    assert [p.name for p in path.parent.iterdir()] == ["proposal.yaml"]


def test_sums_checked() -> None:
    with pytest.raises(ValidationError, match="sum to 1"):
        _spec(weights={"code": 0.5, "web": 0.6})
    with pytest.raises(ValidationError, match="non-negative"):
        _spec(weights={"code": 1.1, "web": -0.1})
    with pytest.raises(ValidationError, match="name"):
        _spec(name="bad name/with slash")
    assert _spec(weights={"code": 0.5, "web": 0.5000005}).weights["web"] == 0.5000005  # within 1e-6


def test_bad_file_rejected_with_path(tmp_path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("name: bad\ntarget: bpb_mean\nweights: {code: 0.7, web: 0.7}\n")
    with pytest.raises(ValueError, match=r"bad.yaml: invalid mixture spec: weights: .*sum to 1"):
        read_mixture(path)
    with pytest.raises(FileNotFoundError):
        read_mixture(tmp_path / "none.yaml")


def _uncertainty() -> Uncertainty:
    return Uncertainty(
        n_resamples=50,
        n_failed=1,
        level=0.9,
        seed=0,
        predicted_target_ci=(1.2, 1.25),
        weights_ci={"code": (0.25, 0.35), "math": (0.15, 0.25), "web": (0.4, 0.5), "synthetic": (0.0, 0.1)},
        natural={"code": 0.4, "math": 0.1, "web": 0.4, "synthetic": 0.1},
        natural_predicted_target_ci=(1.3, 1.32),
        improvement_ci=(0.06, 0.1),
        reoptimised_target_ci=(1.18, 1.22),
        p_beats_natural=0.96,
        seconds=2.5,
    )


def test_uncertainty_roundtrip(tmp_path) -> None:
    spec = _spec(uncertainty=_uncertainty())
    path = write_mixture(spec, tmp_path)
    doc = yaml.safe_load(path.read_text())
    assert list(doc) == ["name", "target", "predicted_target", "weights", "uncertainty", "provenance"]
    assert doc["uncertainty"]["predicted_target_ci"] == [1.2, 1.25]
    assert doc["uncertainty"]["p_beats_natural"] == 0.96
    assert read_mixture(path) == spec


def test_specs_without_uncertainty_still_read(tmp_path) -> None:
    path = tmp_path / "old.yaml"
    path.write_text(
        "name: old\ntarget: bpb_mean\npredicted_target: 2.9\nweights: {code: 0.5, web: 0.5}\nprovenance: {}\n"
    )
    assert read_mixture(path).uncertainty is None
    bad = tmp_path / "bad.yaml"
    bad.write_text(path.read_text().replace("provenance: {}", "uncertainty: {n_resamples: 5, p_beats_natural: 2}"))
    with pytest.raises(ValueError, match=r"uncertainty.p_beats_natural: .*less than or equal to 1"):
        read_mixture(bad)
