"""The run report: notebooks executed by the pipeline, the HTML seen by headless Chromium, the CLI, the artifact."""

from __future__ import annotations

import ast
import json
import os
import re
import shutil
import struct
import subprocess
from pathlib import Path

import nbformat
import pytest
from typer.testing import CliRunner

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / ".artifacts"
EXPECTED_FIGURES = {"sweep_analysis": 8, "curation_report": 5, "synth_report": 5}
"""Figures per notebook on the tiny run: one per section (the sweep's 4 domains: pairs + parallel coordinates)."""

ALLOWED_IMPORTS = ("automixer.analysis", "automixer.analysis_curation", "automixer.analysis_synth", "automixer.plots")
ALLOWED_IMPORTS += ("matplotlib",)
ALLOWED_IMPORTS += ("numpy", "pandas", "IPython.display")
METHOD_CALLS = {"fit", "fit_transform", "predict", "minimize", "minimize_mixture", "select_predictor", "dirichlet"}
METHOD_CALLS |= {"spearmanr", "linprog", "sample_mixtures", "propose_mixture", "bootstrap_proposal", "train_proxy"}


def _report(tiny_run) -> tuple[Path, dict]:
    cfg, state = tiny_run
    assert state.is_completed(), state
    out = Path(cfg.work_dir) / "report"
    return out, json.loads((out / "report.json").read_text())


def _errors(nb) -> list[str]:
    return [
        f"{o['ename']}: {o['evalue']}" for c in nb.cells for o in c.get("outputs", []) if o["output_type"] == "error"
    ]


def test_the_pipeline_executes_every_notebook_on_the_tiny_run(tiny_run) -> None:
    from automixer.report import figure_count

    out, summary = _report(tiny_run)
    assert summary["failed"] == {} and summary["skipped"] == {}
    assert summary["figures"] == EXPECTED_FIGURES
    for name, n in summary["figures"].items():
        nb = nbformat.read(out / f"{name}.ipynb", as_version=4)
        assert _errors(nb) == [], name
        assert figure_count(nb) == n, name
        params = [c for c in nb.cells if "injected-parameters" in c.metadata.get("tags", [])]
        assert len(params) == 1 and str(tiny_run[0].work_dir) in params[0].source


@pytest.mark.parametrize("name", ["sweep_analysis", "curation_report", "synth_report"])
def test_notebooks_hold_no_method_logic(name: str) -> None:
    nb = nbformat.read(ROOT / "notebooks" / f"{name}.ipynb", as_version=4)
    params = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(params) == 1 and "run_dir" in params[0].source
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code"), "commit notebooks without outputs"
    for cell in (c for c in nb.cells if c.cell_type == "code"):
        tree = ast.parse("\n".join(line for line in cell.source.splitlines() if not line.startswith("%")))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import | ast.ImportFrom):
                mods = [node.module or ""] if isinstance(node, ast.ImportFrom) else [a.name for a in node.names]
                if isinstance(node, ast.ImportFrom) and node.module == "automixer":
                    mods = [f"automixer.{a.name}" for a in node.names]
                assert all(m.startswith(ALLOWED_IMPORTS) for m in mods), (name, mods)
            if isinstance(node, ast.FunctionDef | ast.ClassDef | ast.Lambda):
                pytest.fail(f"{name}: defines {type(node).__name__} (logic belongs in the library)")
            if isinstance(node, ast.Call):
                f = node.func
                called = f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", "")
                assert called not in METHOD_CALLS, (name, called)


def _chromium() -> str:
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is missing in CI: `make test` installs Debian's chromium package")
        pytest.skip("chromium not installed (make test installs it with apt-get where it runs as root)")
    return exe


CHECK_FIGURES = """<script>window.addEventListener("load", () => {
  const sizes = [...document.images].map(i => i.complete ? [i.naturalWidth, i.naturalHeight] : [0, 0]);
  const pre = document.createElement("pre"); pre.id = "figcheck"; pre.textContent = JSON.stringify(sizes);
  document.body.appendChild(pre);
});</script>"""


def test_headless_chromium_loads_every_figure_and_takes_a_screenshot(tiny_run, tmp_path: Path) -> None:
    exe = _chromium()
    out, summary = _report(tiny_run)
    html = (out / "report.html").read_text()
    assert not re.search(r"<(script|link|img)[^>]+(src|href)=\"https?://", html), "the report must be self-contained"
    page = tmp_path / "report.html"
    page.write_text(html.replace("</body>", CHECK_FIGURES + "</body>"))
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--virtual-time-budget=10000"]
    dom = subprocess.run([exe, *flags, "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120)
    found = re.search(r'<pre id="figcheck">(.*?)</pre>', dom.stdout)
    assert found, dom.stderr[-2000:]
    sizes = json.loads(found.group(1))
    assert len(sizes) == sum(summary["figures"].values())
    assert all(w > 0 and h > 0 for w, h in sizes), sizes
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "report.png"
    shot.unlink(missing_ok=True)
    subprocess.run(
        [exe, *flags, "--window-size=1280,6000", f"--screenshot={shot}", (out / "report.html").as_uri()],
        capture_output=True, timeout=120, check=True,
    )  # fmt: skip
    head = shot.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n" and struct.unpack(">II", head[16:24]) == (1280, 6000)


def test_the_report_is_linked_from_the_flow_run_artifacts(tiny_run) -> None:
    from prefect_api import read_artifacts

    out, _ = _report(tiny_run)
    (link,) = read_artifacts({"key": {"any_": ["automixer-report"]}}, limit=1)
    assert f"({(out / 'report.html').as_uri()})" in link.data  # a Prefect link artifact: [text](url)
    (pipeline,) = read_artifacts({"key": {"any_": ["automixer-pipeline"]}}, limit=1)
    assert str(out / "report.html") in pipeline.data


def test_cli_report_skips_what_a_run_lacks_and_keeps_the_html_when_a_notebook_fails(tiny_run, tmp_path) -> None:
    from automixer.cli import app

    cfg, _ = tiny_run
    run = tmp_path / "run"
    run.mkdir()
    for part in ("config.yaml", "sweep", "data"):
        src = Path(cfg.work_dir) / part
        if src.is_dir():
            shutil.copytree(src, run / part)
        else:
            shutil.copy(src, run / part)
    res = CliRunner().invoke(app, ["report", str(run), "--only", "sweep_analysis", "--only", "synth_report"])
    assert res.exit_code == 0, res.output
    assert "skipped synth_report: no tasks/tasks.parquet" in res.output
    assert f"figures: sweep_analysis {EXPECTED_FIGURES['sweep_analysis']})" in res.output
    broken = tmp_path / "notebooks"
    broken.mkdir()
    nb = nbformat.read(ROOT / "notebooks" / "sweep_analysis.ipynb", as_version=4)
    nb.cells.insert(3, nbformat.v4.new_code_cell('raise RuntimeError("planted failure")'))
    nbformat.write(nb, broken / "sweep_analysis.ipynb")
    res = CliRunner().invoke(app, ["report", str(run), "--only", "sweep_analysis", "--notebooks", str(broken)])
    assert res.exit_code == 1 and "planted failure" in res.output
    html = (run / "report" / "report.html").read_text()
    assert "FAILED" in html and "planted failure" in html
