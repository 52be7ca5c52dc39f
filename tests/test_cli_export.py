"""`automixer export` writes a mixture in a training stack's format and fails clearly on bad input."""

from __future__ import annotations

from pathlib import Path

import yaml
from typer.testing import CliRunner

from automixer.cli import app

ROOT = Path(__file__).resolve().parents[1]


def test_export_yaml_with_budget_and_errors(tmp_path: Path) -> None:
    out = tmp_path / "mix.yaml"
    proposal = ROOT / "mixtures" / "demo-proposal.yaml"
    result = CliRunner().invoke(app, ["export", str(proposal), "-f", "yaml", "--tokens", "1M", "-o", str(out)])
    assert result.exit_code == 0, result.output
    spec = yaml.safe_load(out.read_text())
    assert abs(sum(spec["weights"].values()) - 1.0) < 1e-9
    assert spec["provenance"]["export"]["total_tokens"] == 1_000_000
    bad = CliRunner().invoke(app, ["export", str(proposal), "-f", "nope"])
    assert bad.exit_code == 2 and "nope" in bad.output
    olmo = CliRunner().invoke(app, ["export", str(proposal), "-f", "olmo-core"])
    assert olmo.exit_code == 2 and "--tokens" in olmo.output
