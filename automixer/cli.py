"""The `automixer` command line: parses options, calls the library or the flows, prints results."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

app = typer.Typer(
    help="automixer: choose the data mixture for an LLM pre-training run from proxy sweeps.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

ConfigOpt = Annotated[Path, typer.Option("--config", "-c", help="Pipeline config YAML (see README).")]
TargetOpt = Annotated[str, typer.Option("--target", "-t", help="Metric column to predict / minimise.")]
PredictorOpt = Annotated[
    str, typer.Option("--predictor", "-p", help="auto | linear | loglinear | gp (auto: best K-fold Spearman).")
]
PrefixOpt = Annotated[str, typer.Option("--weight-prefix", help="Prefix of the weight columns in a runs table.")]
FoldsOpt = Annotated[int, typer.Option("--folds", help="Folds for cross-validated Spearman.")]

_USER_ERRORS: tuple[type[BaseException], ...] = (FileNotFoundError, ValueError, RuntimeError, KeyError)


@app.callback()
def _setup() -> None:
    """Print library warnings as one plain line on stderr."""
    import warnings

    warnings.formatwarning = lambda msg, cat, *_a, **_k: f"warning: {msg}\n"


def _fail(msg: str, code: int = 2) -> None:
    typer.secho(f"error: {msg}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


def _run(fn: Callable[[], Any]) -> Any:
    """Call `fn`, turning user mistakes into one-line errors (set AUTOMIXER_DEBUG=1 for tracebacks)."""
    from automixer.config import ConfigError

    try:
        return fn()
    except (ConfigError, *_USER_ERRORS) as exc:
        if os.environ.get("AUTOMIXER_DEBUG"):
            raise
        _fail(str(exc).strip() or type(exc).__name__)


def _prefect_env() -> None:
    """Settings that let flows run offline with no Prefect server configured."""
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")


def _load(config: Path):
    from automixer.config import load_config

    return _run(lambda: load_config(config))


def _print_mixture(spec: dict, path: str) -> None:
    from rich.console import Console
    from rich.table import Table

    prov = spec.get("provenance", {})
    table = Table(title=f"proposed mixture '{spec['name']}'")
    table.add_column("domain")
    table.add_column("weight", justify="right")
    for dom, w in spec["weights"].items():
        table.add_row(dom, f"{w:.4f}")
    console = Console()
    console.print(table)
    pred, cv = spec.get("predicted_target"), prov.get("cv_spearman")
    console.print(f"predicted {spec['target']} = {pred:.4f}, predictor {prov.get('predictor')}, CV Spearman {cv:.3f}")
    console.print(f"written to {path}")


@app.command()
def demo(
    preset: Annotated[str, typer.Option(help="full (≈60 proxies) or tiny (seconds, for tests).")] = "full",
    work_dir: Annotated[Path | None, typer.Option(help="Where to put everything (default runs/demo-<preset>).")] = None,
    mixtures_dir: Annotated[Path, typer.Option(help="Where the proposal YAML is written.")] = Path("mixtures"),
) -> None:
    """Build the demo corpus, run curate -> synth -> sweep -> propose, print the proposal."""
    _prefect_env()
    if preset not in ("full", "tiny"):
        _fail(f"--preset must be 'full' or 'tiny', got {preset!r}")
    from automixer.demo import build_demo_corpus, demo_config

    work_dir = work_dir or Path(f"runs/demo-{preset}")
    counts = build_demo_corpus(work_dir / "sources", preset)  # type: ignore[arg-type]
    typer.echo(f"demo corpus under {work_dir / 'sources'}: {counts} documents")
    cfg = demo_config(work_dir, preset, str(mixtures_dir))  # type: ignore[arg-type]
    from flows.pipeline import pipeline_flow

    out = _run(lambda: pipeline_flow(cfg))
    typer.echo(f"stage wall times (s): {json.dumps(out['timings'])}")
    _print_mixture(out["proposal"]["spec"], out["proposal"]["path"])


def _stage(config: Path, flow_path: str, preflight: str | None = None) -> None:
    """Load the config, run the cheap `preflight` check (module:function), then the flow; print its summary."""
    import importlib

    _prefect_env()
    cfg = _load(config)
    if preflight:
        mod, fn = preflight.split(":")
        check = getattr(importlib.import_module(mod), fn)
        _run(lambda: check(cfg))  # fail fast, before a Prefect run starts
    mod, fn = flow_path.split(":")
    flow = getattr(importlib.import_module(mod), fn)
    out = _run(lambda: flow(cfg))
    typer.echo(json.dumps(out, indent=2, default=str))


@app.command()
def curate(config: ConfigOpt) -> None:
    """Read, filter, deduplicate and shard the configured sources."""
    _stage(config, "flows.curate:curate_flow", "automixer.curate:check_sources")


@app.command()
def synth(config: ConfigOpt) -> None:
    """Generate, verify and render synthetic coding tasks into the `synthetic` domain."""
    _stage(config, "flows.synthesize:synthesize_flow")


@app.command()
def sweep(config: ConfigOpt) -> None:
    """Tokenize, sample mixtures and train one proxy per mixture (finished runs are skipped)."""
    _stage(config, "flows.sweep:sweep_flow", "automixer.stages:check_shards")


@app.command()
def fit(
    runs: Annotated[Path, typer.Option("--runs", "-r", help="Runs table (CSV or Parquet) to fit on.")],
    target: TargetOpt = "bpb_mean",
    eval_: Annotated[
        Path | None, typer.Option("--eval", help="Held-out runs table to score the fitted predictor on.")
    ] = None,
    predictor: PredictorOpt = "auto",
    weight_prefix: PrefixOpt = "weight_",
    folds: FoldsOpt = 5,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Fit a predictor from mixture weights to a metric and report its K-fold Spearman."""
    from automixer.fitting import fit_report
    from automixer.sweep.table import load_runs_table

    def go() -> dict:
        train = load_runs_table(runs, target, weight_prefix)
        held = load_runs_table(eval_, target, weight_prefix) if eval_ else None
        return fit_report(train, target, predictor, folds, 0, held)

    report = _run(go)
    if as_json:
        typer.echo(json.dumps(report, default=float))
        return
    for key, value in report.items():
        typer.echo(f"{key}: {value}")


def _parse_bounds(items: list[str], flag: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for item in items:
        dom, sep, val = item.partition("=")
        try:
            if not sep:
                raise ValueError
            out[dom.strip()] = float(val)
        except ValueError:
            _fail(f"{flag} expects DOMAIN=WEIGHT (e.g. {flag} code=0.2), got {item!r}")
    return out


@app.command()
def propose(
    config: Annotated[Path | None, typer.Option("--config", "-c", help="Pipeline config (its sweep).")] = None,
    runs: Annotated[Path | None, typer.Option("--runs", "-r", help="A runs table instead of a sweep.")] = None,
    target: Annotated[str | None, typer.Option("--target", "-t", help="Metric to minimise.")] = None,
    predictor: Annotated[str | None, typer.Option("--predictor", "-p", help="auto|linear|loglinear|gp")] = None,
    min_w: Annotated[list[str], typer.Option("--min", help="Lower bound DOMAIN=W (repeatable).")] = [],  # noqa: B006
    max_w: Annotated[list[str], typer.Option("--max", help="Upper bound DOMAIN=W (repeatable).")] = [],  # noqa: B006
    name: Annotated[str | None, typer.Option("--name", help="Mixture name (file <out>/<name>.yaml).")] = None,
    out: Annotated[Path | None, typer.Option("--out", help="Folder for the mixture YAML.")] = None,
    weight_prefix: PrefixOpt = "weight_",
) -> None:
    """Fit on a sweep (or runs table) and write the best mixture under constraints."""
    if config is None and runs is None:
        _fail("give --config (use its sweep) or --runs (a runs table from anywhere)")
    from automixer.config import ConstraintsConfig, ProposeConfig, validated

    cfg = _load(config) if config else None
    base = cfg.propose if cfg else ProposeConfig()
    constraints = base.constraints.model_copy(
        update={
            "min_weight": {**base.constraints.min_weight, **_parse_bounds(min_w, "--min")},
            "max_weight": {**base.constraints.max_weight, **_parse_bounds(max_w, "--max")},
        }
    )
    p = _run(lambda: validated(ConstraintsConfig, constraints.model_dump(), "--min/--max"))
    from automixer.fitting import propose_mixture
    from automixer.sweep.table import load_runs_table

    table_path = runs or cfg.path("sweep", "runs.parquet")  # type: ignore[union-attr]
    tgt = target or base.target

    def go():
        table = load_runs_table(table_path, tgt, weight_prefix)
        return propose_mixture(
            table,
            tgt,
            p,
            predictor or base.predictor,
            name or base.name,
            out or Path(base.mixtures_dir),
            str(table_path),
            base.cv_folds,
            0,
        )

    spec, path = _run(go)
    _print_mixture(spec.model_dump(mode="json"), str(path))


@app.command("export-tasks")
def export_tasks(
    tasks: Annotated[Path, typer.Argument(help="tasks.parquet written by `automixer synth`.")],
    out: Annotated[Path, typer.Argument(help="Where to write the SWE-bench-style JSONL.")],
) -> None:
    """Export verified synthetic tasks as SWE-bench-style JSONL (one instance per line)."""
    from synth.export import export_swebench

    n = _run(lambda: export_swebench(tasks, out))
    typer.echo(f"wrote {n} task(s) to {out}")


sandbox_app = typer.Typer(help="Run programs in the synth sandbox.", no_args_is_help=True)
app.add_typer(sandbox_app, name="sandbox")
SANDBOX_OUTPUT_CHARS = 4000
"""The CLI prints at most this much of the program's stdout and of its stderr (head and tail)."""


def _clip(text: str, limit: int = SANDBOX_OUTPUT_CHARS) -> str:
    half = limit // 2
    return text if len(text) <= limit else f"{text[:half]}\n...[{len(text) - 2 * half} chars cut]...\n{text[-half:]}"


@sandbox_app.command("run")
def sandbox_run(
    file: Annotated[Path, typer.Argument(help="Python file to run (alone, as the main script).")],
    timeout: Annotated[float, typer.Option("--timeout", help="Wall timeout in seconds.")] = 10.0,
    memory_mb: Annotated[int, typer.Option("--memory-mb", help="Address-space limit in MB.")] = 1024,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Run FILE.py in the sandbox; print its status, exit code, output, wall time and isolation level.

    Exits 0 when the program's status is ok, 1 otherwise, 2 on a usage error."""
    if not file.is_file():
        _fail(f"no such file: {file}")
    if timeout <= 0 or memory_mb <= 0:
        _fail("--timeout and --memory-mb must be positive")
    from synth.execute import Limits, execute

    source = _run(lambda: file.read_text(encoding="utf-8"))
    res = execute(
        {file.name: source}, ["python", "-s", "-P", file.name], Limits(timeout_s=timeout, memory_mb=memory_mb)
    )
    out = {
        "status": res.status, "exit_code": res.returncode, "stdout": _clip(res.stdout), "stderr": _clip(res.stderr),
        "wall_s": round(res.wall_s, 4), "isolation": res.isolation,
    }  # fmt: skip
    if as_json:
        typer.echo(json.dumps(out))
    else:
        typer.echo(f"{file.name}: {res.status} (exit {res.returncode}) in {res.wall_s:.3f} s [{res.isolation}]")
        for name in ("stdout", "stderr"):
            if out[name]:
                typer.echo(f"--- {name}\n{out[name].rstrip()}")
    raise typer.Exit(0 if res.status == "ok" else 1)


def main() -> None:
    """Entry point for `python -m automixer`."""
    app(prog_name="automixer")


if __name__ == "__main__":
    sys.exit(main())
