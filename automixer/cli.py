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
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")  # a loaded 2-core box is slow
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")


def _load(config: Path, overrides: dict | None = None):
    from automixer.config import load_config

    return _run(lambda: load_config(config, overrides))


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
    from automixer.cli_show import print_mixture
    from flows.pipeline import pipeline_flow

    out = _run(lambda: pipeline_flow(cfg))
    typer.echo(f"stage wall times (s): {json.dumps(out['timings'])}")
    print_mixture(out["proposal"]["spec"], out["proposal"]["path"])


def _stage(config: Path, flow_path: str, preflight: str | None = None, overrides: dict | None = None) -> None:
    """Load the config, run the cheap `preflight` check (module:function), then the flow; print its summary."""
    import importlib

    _prefect_env()
    cfg = _load(config, overrides)
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
def sweep(
    config: ConfigOpt,
    rounds: Annotated[
        int | None,
        typer.Option(
            "--rounds", min=1, help="Spend sweep.n_runs in R rounds, rounds 2.. chosen by expected improvement."
        ),
    ] = None,
    workers: Annotated[int | None, typer.Option("--workers", min=1, help="Proxy runs trained at once.")] = None,
) -> None:
    """Tokenize, sample mixtures and train one proxy per mixture (finished runs are skipped)."""
    given = {"rounds": rounds, "workers": workers}
    overrides = {"sweep": {k: v for k, v in given.items() if v is not None}}
    _stage(config, "flows.sweep:sweep_flow", "automixer.stages:check_shards", overrides)


@app.command()
def serve(
    config: ConfigOpt,
    only: Annotated[
        list[str], typer.Option("--only", help="Serve only this deployment (repeatable), e.g. sweep-on-demand.")
    ] = [],  # noqa: B006
    once: Annotated[bool, typer.Option("--once", help="Run the flow runs that are due now, then exit.")] = False,
    prefect_file: Annotated[
        Path | None, typer.Option("--prefect-file", help="Deployment declarations (default: ./prefect.yaml).")
    ] = None,
    limit: Annotated[
        int | None, typer.Option("--limit", min=1, help="Most flow runs at once (default: no limit).")
    ] = None,
) -> None:
    """Serve the deployments declared in prefect.yaml from this machine, with their schedules.

    Serving locally: `automixer serve -c my.yaml` registers every deployment (curate-nightly at 02:00 UTC, synthesize-weekly on Sundays at 04:00 UTC, sweep-, propose- and pipeline-on-demand) with the Prefect API (PREFECT_API_URL; `prefect server start` runs one) with its `config` parameter set to my.yaml, then runs every scheduled or triggered flow run here until stopped (Ctrl-C pauses the schedules). Trigger one with `prefect deployment run 'sweep/sweep-on-demand'`.

    Deploying to a work pool instead: `prefect work-pool create automixer-pool --type process`, then `AUTOMIXER_HOME=$PWD prefect deploy --all` (reads the same prefect.yaml: work pool, schedules, parameters), then `prefect worker start --pool automixer-pool` on each machine that runs flows.
    """
    _prefect_env()
    from automixer.deploy import build_deployments
    from automixer.deploy import serve as serve_deployments

    _load(config)  # fail fast on a bad config, before anything is registered
    deployments = _run(lambda: build_deployments(config, only or None, prefect_file))
    names = ", ".join(d.name for d in deployments)
    typer.echo(f"serving {names} with config {config.resolve()}" + (" (once)" if once else " (Ctrl-C to stop)"))
    _run(lambda: serve_deployments(deployments, once=once, limit=limit))


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


def _parse_bounds(items: list[str], flag: str, cast: Callable[[str], Any] = float) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items:
        dom, sep, val = item.partition("=")
        try:
            if not sep:
                raise ValueError
            out[dom.strip()] = cast(float(val))
        except ValueError:
            example = "code=1e9" if cast is int else "code=0.2"
            _fail(f"{flag} expects DOMAIN={'N' if cast is int else 'WEIGHT'} (e.g. {flag} {example}), got {item!r}")
    return out


def _parse_group(text: str) -> dict:
    """`[NAME:]code+synthetic>=0.3` or `...<=0.5` -> a GroupConstraint dict."""
    import re

    m = re.fullmatch(r"\s*(?:([A-Za-z0-9_.+-]+):)?\s*([a-z0-9_+\s]+?)\s*(>=|<=)\s*([0-9.eE+-]+)\s*", text)
    if not m:
        _fail(f"--group expects [NAME:]DOMAIN+DOMAIN>=W or <=W (e.g. code+synthetic>=0.3), got {text!r}")
    domains = [d.strip() for d in m.group(2).split("+")]
    bound = "min" if m.group(3) == ">=" else "max"
    return {"name": m.group(1) or "+".join(domains), "domains": domains, bound: float(m.group(4))}


def _propose_config(base: Any, opts: dict) -> Any:
    """The ProposeConfig of a config file (or the defaults) with the command-line overrides applied."""
    from automixer.config import ConstraintsConfig, ProposeConfig, validated
    from automixer.fitting import parse_target

    c = base.constraints.model_dump()
    c["min_weight"].update(_parse_bounds(opts["min_w"], "--min"))
    c["max_weight"].update(_parse_bounds(opts["max_w"], "--max"))
    c["pinned"].update(_parse_bounds(opts["pin"], "--pin"))
    c["available_tokens"].update(_parse_bounds(opts["tokens"], "--tokens", int))
    groups = {g["name"]: g for g in [*c["groups"], *map(_parse_group, opts["group"])]}
    c["groups"] = list(groups.values())
    if opts["max_repetition"] is not None:
        c["max_repetition_ratio"] = opts["max_repetition"]
    if opts["full_run_tokens"] is not None:
        c["full_run_tokens"] = int(opts["full_run_tokens"])
    trust = {k: v for k, v in opts["trust"].items() if v is not None}
    if trust:
        c["trust_region"] = {**(c["trust_region"] or {}), **trust}
    constraints = _run(lambda: validated(ConstraintsConfig, c, "propose constraints (--min/--max/--pin/--group ...)"))
    raw = base.model_dump()
    raw.update({k: v for k, v in opts["propose"].items() if v is not None}, constraints=constraints.model_dump())
    if opts["target"]:
        raw["target"] = _run(lambda: parse_target(opts["target"]))
    return _run(lambda: validated(ProposeConfig, raw, "propose options"))


@app.command()
def propose(
    config: Annotated[Path | None, typer.Option("--config", "-c", help="Pipeline config (its sweep).")] = None,
    runs: Annotated[Path | None, typer.Option("--runs", "-r", help="A runs table instead of a sweep.")] = None,
    target: Annotated[
        str | None, typer.Option("--target", "-t", help="Metric to minimise, or a weighted mean: bpb_code=2,bpb_web=1.")
    ] = None,
    predictor: Annotated[str | None, typer.Option("--predictor", "-p", help="Predictor name, or auto.")] = None,
    min_w: Annotated[list[str], typer.Option("--min", help="Lower bound DOMAIN=W (repeatable).")] = [],  # noqa: B006
    max_w: Annotated[list[str], typer.Option("--max", help="Upper bound DOMAIN=W (repeatable).")] = [],  # noqa: B006
    pin: Annotated[list[str], typer.Option("--pin", help="Fixed weight DOMAIN=W (repeatable).")] = [],  # noqa: B006
    group: Annotated[list[str], typer.Option("--group", help="Group sum [NAME:]D1+D2>=W or <=W.")] = [],  # noqa: B006
    max_repetition: Annotated[
        float | None, typer.Option("--max-repetition", help="Most epochs over any domain's tokens in the full run.")
    ] = None,
    full_run_tokens: Annotated[
        float | None, typer.Option("--full-run-tokens", help="Token budget of the full run (e.g. 1e9).")
    ] = None,
    tokens: Annotated[
        list[str], typer.Option("--tokens", help="Available tokens DOMAIN=N (default: the shards manifest).")
    ] = [],  # noqa: B006
    trust_kl: Annotated[float | None, typer.Option("--trust-kl", help="Max KL(proposal || natural), nats.")] = None,
    trust_l1: Annotated[float | None, typer.Option("--trust-l1", help="Max L1 distance to natural.")] = None,
    kl_penalty: Annotated[
        float | None, typer.Option("--kl-penalty", help="Minimise predicted + this x KL(w || natural).")
    ] = None,
    natural: Annotated[
        list[str], typer.Option("--natural", help="Natural mixture DOMAIN=W (default: the sweep's, else its mean).")
    ] = [],  # noqa: B006
    top_k: Annotated[int | None, typer.Option("--top-k", help="Average the k best simulated mixtures.")] = None,
    bootstrap: Annotated[int | None, typer.Option("--bootstrap", help="Bootstrap resamples (0: off).")] = None,
    ci: Annotated[float | None, typer.Option("--ci", help="Interval coverage, e.g. 0.9.")] = None,
    seed: Annotated[int | None, typer.Option("--seed", help="Seed of folds, candidates, bootstrap.")] = None,
    pareto: Annotated[
        str | None, typer.Option("--pareto", help="Report the Pareto front of two targets T1,T2 (writes nothing).")
    ] = None,
    name: Annotated[str | None, typer.Option("--name", help="Mixture name (file <out>/<name>.yaml).")] = None,
    out: Annotated[Path | None, typer.Option("--out", help="Folder for the mixture YAML.")] = None,
    weight_prefix: PrefixOpt = "weight_",
) -> None:
    """Fit on a sweep (or runs table) and write the best mixture under constraints, with bootstrap intervals."""
    if config is None and runs is None:
        _fail("give --config (use its sweep) or --runs (a runs table from anywhere)")
    if trust_kl is not None and trust_l1 is not None:
        _fail("give --trust-kl or --trust-l1, not both")
    from automixer.config import ProposeConfig
    from automixer.fitting import load_target_table, pareto_front, propose_mixture

    cfg = _load(config) if config else None
    opts = {
        "min_w": min_w, "max_w": max_w, "pin": pin, "tokens": tokens, "group": group, "target": target,
        "max_repetition": max_repetition, "full_run_tokens": full_run_tokens,
        "trust": {"radius": trust_kl if trust_kl is not None else trust_l1, "kl_penalty": kl_penalty,
                  "metric": "kl" if trust_kl is not None else ("l1" if trust_l1 is not None else None)},
        "propose": {"predictor": predictor, "name": name, "mixtures_dir": str(out) if out else None,
                    "top_k_average": top_k, "bootstrap": bootstrap, "ci_level": ci, "seed": seed},
    }  # fmt: skip
    from automixer.cli_show import print_front, print_mixture

    p = _propose_config(cfg.propose if cfg else ProposeConfig(), opts)
    inputs = {"natural": None, "available_tokens": None}
    if cfg:
        from automixer.stages import propose_inputs

        inputs = propose_inputs(cfg)
    if natural:
        inputs["natural"] = _parse_bounds(natural, "--natural")
    table_path = runs or cfg.path("sweep", "runs.parquet")  # type: ignore[union-attr]
    if pareto:
        targets = [t.strip() for t in pareto.split(",")]
        if len(targets) != 2:
            _fail(f"--pareto expects two targets T1,T2, got {pareto!r}")
        front = _run(
            lambda: pareto_front(load_target_table(table_path, targets[0], weight_prefix), targets, p, **inputs)
        )
        print_front(front, targets)
        return

    def go():
        table = load_target_table(table_path, p.target, weight_prefix)
        return propose_mixture(table, p, str(table_path), **inputs)

    spec, path = _run(go)
    print_mixture(spec.model_dump(mode="json"), str(path))


@app.command("export")
def export(
    mixture: Annotated[Path, typer.Argument(help="Mixture spec YAML, e.g. mixtures/proposal.yaml.")],
    fmt: Annotated[
        str, typer.Option("--format", "-f", help="megatron | megatron-args | olmo-core | hf-interleave | yaml")
    ] = "yaml",
    tokens: Annotated[
        str | None, typer.Option("--tokens", help="Total token budget, e.g. 2B or 500M (default: the spec's).")
    ] = None,
    manifest: Annotated[
        Path | None, typer.Option("--manifest", "-m", help="shards/manifest.json for real paths (else <domain>).")
    ] = None,
    config: Annotated[
        Path | None, typer.Option("--config", "-c", help="Pipeline config: use <work_dir>/shards/manifest.json.")
    ] = None,
    max_repetition: Annotated[
        float | None, typer.Option("--max-repetition", help="Fail if a budget needs more passes over its data.")
    ] = None,
    global_batch_size: Annotated[
        int | None, typer.Option("--global-batch-size", help="OLMo-core: tokens per global batch.")
    ] = None,
    seed: Annotated[int | None, typer.Option("--seed", help="Sampling seed (default: the spec's).")] = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Write here (default: print to stdout).")] = None,
) -> None:
    """Export a mixture for a training stack: Megatron/NeMo, OLMo-core, HF interleave_datasets, or our YAML."""
    if manifest is not None and config is not None:
        _fail("give --manifest or --config, not both")
    man_path = manifest or (_load(config).path("shards", "manifest.json") if config else None)
    from automixer.export import export_mixture, parse_token_count, write_export
    from automixer.io import location, read_structured
    from automixer.mixture import read_mixture

    def go() -> str | None:
        spec = read_mixture(mixture)
        kwargs: dict[str, Any] = {
            "total_tokens": parse_token_count(tokens) if tokens else None,
            "max_repetition_ratio": max_repetition,
            "global_batch_size": global_batch_size,
            "seed": seed,
        }
        if man_path is not None:
            kwargs["manifest"] = read_structured(man_path, "shards manifest", "run `automixer curate` first")
            where = location(man_path)  # a local path or an fsspec URL (s3://..., memory://...)
            kwargs["paths_root"] = str(where.resolve().parent if isinstance(where, Path) else where.parent)
        if out is None:
            return export_mixture(spec, fmt, **kwargs)
        write_export(spec, fmt, out, **kwargs)
        return None

    text = _run(go)
    if text is not None:
        typer.echo(text, nl=False)
    else:
        typer.echo(f"wrote the {fmt} export of {mixture} to {out}", err=True)


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


from automixer.cli_report import report as _report  # noqa: E402  (its heavy imports are inside the command)

app.command("report")(_report)


def main() -> None:
    """Entry point for `python -m automixer`."""
    app(prog_name="automixer")


if __name__ == "__main__":
    sys.exit(main())
