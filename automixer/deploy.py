"""Deployments of the flows, declared once in `prefect.yaml`: served from this machine or deployed to a work pool.

`prefect deploy --all` reads `prefect.yaml` itself (work pool, pull step, schedules); `automixer serve` reads
the same declarations here and serves them with `prefect.runner.Runner`, with the parameters pointed at one
config file.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from prefect import Flow
    from prefect.deployments.runner import RunnerDeployment
    from prefect.runner import Runner

PREFECT_FILE = "prefect.yaml"


def prefect_file(path: str | Path | None = None) -> Path:
    """`path`, else prefect.yaml in the current folder, else the one of this checkout (beside `automixer/`)."""
    candidates = (
        [Path(path)] if path else [Path.cwd() / PREFECT_FILE, Path(__file__).resolve().parents[1] / PREFECT_FILE]
    )
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f"no {PREFECT_FILE} found (looked at {[str(c) for c in candidates]})")


def declarations(path: str | Path | None = None) -> list[dict]:
    """The deployments declared in prefect.yaml, each with at least `name` and `entrypoint`."""
    import yaml

    file = prefect_file(path)
    decls = (yaml.safe_load(file.read_text()) or {}).get("deployments") or []
    for i, decl in enumerate(decls):
        if not isinstance(decl, dict) or not decl.get("name") or ":" not in str(decl.get("entrypoint", "")):
            raise ValueError(f"{file}: deployments[{i}] needs a name and an entrypoint like flows/sweep.py:sweep_flow")
    return decls


def load_entrypoint(entrypoint: str) -> Flow:
    """The flow an entrypoint names (`flows/sweep.py:sweep_flow`), imported from the installed package."""
    import importlib

    from prefect import Flow

    file, _, name = entrypoint.partition(":")
    module = importlib.import_module(Path(file).with_suffix("").as_posix().replace("/", "."))
    found = getattr(module, name, None)
    if not isinstance(found, Flow):
        raise ValueError(f"entrypoint {entrypoint!r} is not a Prefect flow")
    return found


def schedules_of(decl: dict) -> list:
    """The declaration's schedules (cron, interval or rrule entries, as `prefect deploy` reads them)."""
    from prefect.schedules import Cron, Interval, RRule

    out = []
    for entry in decl.get("schedules") or []:
        common = {"timezone": entry.get("timezone"), "active": entry.get("active", True)}
        if "cron" in entry:
            out.append(Cron(entry["cron"], **common))
        elif "interval" in entry:
            out.append(Interval(entry["interval"], **common))
        elif "rrule" in entry:
            out.append(RRule(entry["rrule"], **common))
        else:
            raise ValueError(f"deployment {decl['name']!r}: a schedule needs cron, interval or rrule, got {entry}")
    return out


def build_deployments(
    config: str | Path | None = None, only: list[str] | None = None, path: str | Path | None = None
) -> list[RunnerDeployment]:
    """Runner deployments of the declarations (only those named in `only`), parameter `config` set to `config`."""
    from prefect.deployments.runner import EntrypointType

    decls = declarations(path)
    unknown = sorted(set(only or []) - {d["name"] for d in decls})
    if unknown:
        raise ValueError(
            f"no deployment named {unknown} in {prefect_file(path)}; declared: {[d['name'] for d in decls]}"
        )
    out = []
    for decl in decls:
        if only and decl["name"] not in only:
            continue
        params: dict[str, Any] = dict(decl.get("parameters") or {})
        if config is not None:
            params["config"] = str(Path(config).resolve())
        out.append(
            load_entrypoint(decl["entrypoint"]).to_deployment(
                name=decl["name"],
                schedules=schedules_of(decl),
                parameters=params,
                description=decl.get("description"),
                tags=decl.get("tags"),
                entrypoint_type=EntrypointType.MODULE_PATH,
            )
        )
    return out


def make_runner(
    deployments: list[RunnerDeployment], limit: int | None = None, pause_on_shutdown: bool = True
) -> Runner:
    """A runner with the deployments registered (schedules included) in the Prefect API."""
    from prefect.runner import Runner

    runner = Runner(name="automixer", pause_on_shutdown=pause_on_shutdown, limit=limit)
    for deployment in deployments:
        runner.add_deployment(deployment)
    return runner


def serve(deployments: list[RunnerDeployment], once: bool = False, limit: int | None = None) -> None:
    """Serve the deployments until stopped (Ctrl-C pauses their schedules); `once`: run what is due, then return."""
    runner = make_runner(deployments, limit, pause_on_shutdown=not once)
    asyncio.run(runner.start(run_once=once))
