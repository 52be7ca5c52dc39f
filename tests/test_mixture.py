"""The mixture spec YAML: round trip and validation."""

from __future__ import annotations

import numpy as np
import pytest
import yaml
from pydantic import ValidationError

from automixer.mixture import MixtureSpec, read_mixture, write_mixture


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
