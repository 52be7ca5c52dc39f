"""`automixer report`: execute the analysis notebooks on a run directory and write one self-contained HTML file."""

from __future__ import annotations

import json
import re
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

REPORT_DIR = "report"
"""The report's folder inside the run directory: report.html, report.json and the executed notebooks."""


@dataclass(frozen=True)
class ReportNotebook:
    """One notebook of the report and the run files it needs."""

    name: str
    """File stem in `notebooks/`, e.g. `sweep_analysis`."""
    title: str
    """Section heading in the HTML report."""
    requires: tuple[str, ...]
    """Paths below the run directory that must exist; else the section is skipped with the reason."""
    how: str
    """The command that makes those files, for the skip message."""


NOTEBOOKS = (
    ReportNotebook("curation_report", "Curation", ("shards/manifest.json", "curation/drops.json"), "automixer curate"),
    ReportNotebook("synth_report", "Synthetic tasks", ("tasks/tasks.parquet", "tasks/report.json"), "automixer synth"),
    ReportNotebook("sweep_analysis", "Sweep and proposal", ("sweep/runs.parquet", "config.yaml"), "automixer sweep"),
)
"""The report's sections, in order."""


class ReportError(RuntimeError):
    """A notebook failed while the report was made (the HTML still shows what ran, error included)."""


@dataclass
class ReportResult:
    """What `build_report` made."""

    html: Path
    executed: dict[str, Path] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)
    figures: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0


def notebooks_dir() -> Path:
    """The folder holding the analysis notebooks (the `notebooks/` beside the installed package)."""
    folder = Path(__file__).resolve().parents[1] / "notebooks"
    if not folder.is_dir():
        raise FileNotFoundError(
            f"analysis notebooks not found at {folder}: install automixer from a checkout (pip install -e .) "
            "or pass --notebooks DIR"
        )
    return folder


def _require_report_deps() -> None:
    import importlib.util

    missing = [m for m in ("papermill", "nbconvert", "matplotlib", "ipykernel") if importlib.util.find_spec(m) is None]
    if missing:
        raise ModuleNotFoundError(f"`automixer report` needs {missing}: pip install 'automixer[report]'")


def figure_count(nb) -> int:
    """Number of PNG figures among a notebook's outputs."""
    return sum(
        "image/png" in o.get("data", {}) for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
    )


def execute(src: Path, out: Path, run_dir: Path, timeout: int) -> tuple[object, str | None]:
    """Execute one notebook with papermill (run_dir as parameter, in this cwd) to `out`; (notebook, error or None)."""
    import nbformat
    import papermill

    from automixer.io import atomic_path

    error = None
    with atomic_path(out) as tmp, warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The specified file .* does not end in")  # the temp name
        try:
            papermill.execute_notebook(
                str(src), str(tmp), parameters={"run_dir": str(run_dir)}, kernel_name="python3",
                progress_bar=False, cwd=str(Path.cwd()), execution_timeout=timeout,
            )  # fmt: skip
        except papermill.PapermillExecutionError as exc:  # papermill has saved the notebook up to the error
            error = f"cell {exc.exec_count}: {exc.ename}: {exc.evalue}"
        nb = nbformat.read(str(tmp), as_version=4)
    return nb, error


_EXTERNAL_SCRIPT = re.compile(r"<script[^>]*\ssrc=\"https?://[^\"]*\"[^>]*>\s*</script>", re.I)


def to_html(sections: list[tuple[str, object]], header: str, show_code: bool = False) -> str:
    """One self-contained HTML page from executed notebooks: a header, then each notebook under its title.

    Figures are embedded as data URIs; the scripts nbconvert would load from the web (MathJax, require.js)
    are left out, so the page needs nothing but itself.
    """
    import nbformat
    from nbconvert import HTMLExporter

    cells = [nbformat.v4.new_markdown_cell(header)]
    for title, nb in sections:
        cells.append(nbformat.v4.new_markdown_cell(f'<a id="{title}"></a>'))
        cells += [c for c in nb.cells if not {"parameters", "injected-parameters"} & set(c.metadata.get("tags", []))]
    merged = nbformat.v4.new_notebook(cells=cells, metadata={"language_info": {"name": "python"}})
    body, _ = HTMLExporter(template_name="lab", exclude_input=not show_code).from_notebook_node(merged)
    return _EXTERNAL_SCRIPT.sub("", body)


def _header(run_dir: Path, result: ReportResult) -> str:
    lines = [f"# automixer report: `{run_dir.name}`", "", f"Run directory `{run_dir}`, made {time.ctime()}.", ""]
    lines += [f"- **{name}**: skipped, {why}" for name, why in result.skipped.items()]
    lines += [f"- **{name}**: FAILED, {why} (the section shows the error)" for name, why in result.failed.items()]
    return "\n".join(lines)


def build_report(
    run_dir: str | Path,
    notebooks: str | Path | None = None,
    only: list[str] | None = None,
    show_code: bool = False,
    timeout: int = 900,
    progress: Callable[[str], None] | None = None,
) -> ReportResult:
    """Execute the analysis notebooks on `run_dir` and write `<run_dir>/report/report.html` (+ report.json).

    A notebook whose inputs are missing is skipped with the reason; one that fails is still shown up to its
    error, and the report is written before `ReportError` is raised.
    """
    from automixer.io import write_json_atomic, write_text_atomic

    _require_report_deps()
    run_dir, t0 = Path(run_dir).resolve(), time.perf_counter()
    if not run_dir.is_dir():
        raise FileNotFoundError(f"run directory not found: {run_dir}")
    src, out_dir = Path(notebooks) if notebooks else notebooks_dir(), run_dir / REPORT_DIR
    result, sections = ReportResult(html=out_dir / "report.html"), []
    for spec in NOTEBOOKS:
        if only and spec.name not in only:
            continue
        missing = [r for r in spec.requires if not (run_dir / r).exists()]
        if missing:
            result.skipped[spec.name] = f"no {', '.join(missing)} in the run (made by `{spec.how}`)"
            continue
        if not (src / f"{spec.name}.ipynb").is_file():
            result.failed[spec.name] = f"notebook not found: {src / f'{spec.name}.ipynb'}"
            continue
        if progress:
            progress(f"report: executing {spec.name}.ipynb")
        nb, error = execute(src / f"{spec.name}.ipynb", out_dir / f"{spec.name}.ipynb", run_dir, timeout)
        result.executed[spec.name], result.figures[spec.name] = out_dir / f"{spec.name}.ipynb", figure_count(nb)
        if error:
            result.failed[spec.name] = error
        sections.append((spec.title, nb))
    write_text_atomic(result.html, to_html(sections, _header(run_dir, result), show_code))
    result.seconds = round(time.perf_counter() - t0, 1)
    summary = {k: v for k, v in vars(result).items() if k != "executed"}
    write_json_atomic(out_dir / "report.json", json.loads(json.dumps(summary, default=str)))
    if result.failed:
        raise ReportError(f"{len(result.failed)} notebook(s) failed: {result.failed}; see {result.html}")
    return result
