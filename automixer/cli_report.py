"""`automixer report`: the HTML report of a run directory (registered on the app in cli.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def report(
    run_dir: Annotated[Path, typer.Argument(help="A run's work_dir, e.g. runs/demo-full.")],
    open_it: Annotated[bool, typer.Option("--open", help="Open the report in a web browser when written.")] = False,
    only: Annotated[
        list[str] | None,
        typer.Option("--only", help="Only this notebook: sweep_analysis | curation_report | synth_report (repeat)."),
    ] = None,
    show_code: Annotated[bool, typer.Option("--show-code", help="Show the notebooks' code cells.")] = False,
    notebooks: Annotated[
        Path | None, typer.Option("--notebooks", help="Folder of the notebooks (default: the checkout's notebooks/).")
    ] = None,
    timeout: Annotated[int, typer.Option("--timeout", help="Longest one notebook cell may run (s).")] = 900,
) -> None:
    """Execute the analysis notebooks on RUN_DIR and write RUN_DIR/report/report.html (figures embedded)."""
    from automixer.cli import _fail, _run
    from automixer.report import NOTEBOOKS, ReportError, build_report

    unknown = sorted(set(only or []) - {nb.name for nb in NOTEBOOKS})
    if unknown:
        _fail(f"--only: unknown notebook(s) {unknown}; choose from {[nb.name for nb in NOTEBOOKS]}")

    def go():
        try:
            return build_report(run_dir, notebooks, only, show_code, timeout, progress=typer.echo), None
        except ReportError as exc:  # the HTML is written; say which notebook failed, exit 1
            return None, exc

    result, failure = _run(go)
    if failure is not None:
        typer.secho(f"error: {failure}", fg=typer.colors.RED, err=True)
        raise typer.Exit(1)
    for name, why in result.skipped.items():
        typer.echo(f"skipped {name}: {why}")
    figures = ", ".join(f"{name} {n}" for name, n in result.figures.items())
    typer.echo(f"report written to {result.html} in {result.seconds:.1f}s (figures: {figures or 'none'})")
    if open_it:
        import webbrowser

        webbrowser.open(result.html.as_uri())
