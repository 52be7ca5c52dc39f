"""What the synth-report notebook needs from a run directory, computed by the library.

Every function reads the files `automixer synth` wrote (`tasks/report.json`, and `tasks/tasks.parquet` through the
DuckDB catalog) and returns plain frames or dicts; the notebook only plots them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from automixer.analysis_curation import catalog, require

SYNTH = "automixer synth"
"""The command that makes the task files, for error messages."""

FLAKY_REASONS = ("flaky_no_stable_failure",)
"""Reject reasons that mean the tests were flaky: no test failed in every shuffled, re-seeded run of the bug."""


def synth_report(run_dir: str | Path) -> dict[str, Any]:
    """`tasks/report.json` as a dict."""
    return json.loads(require(run_dir, "tasks/report.json", SYNTH).read_text())


def kept_tasks(run_dir: str | Path) -> pd.DataFrame:
    """One row per kept task: task_id, family, operator, module, function, difficulty, difficulty_score,
    mutation_score, mutants_total, mutants_killed, fail_to_pass, pass_to_pass, flaky_tests (counts),
    description, ordered by family then task_id."""
    require(run_dir, "tasks/tasks.parquet", SYNTH)
    sql = """
        SELECT task_id, family, operator, module, function, difficulty, difficulty_score, mutation_score,
               mutants_total, mutants_killed, len(fail_to_pass) AS fail_to_pass, len(pass_to_pass) AS pass_to_pass,
               len(flaky_tests) AS flaky_tests, description
        FROM tasks ORDER BY family, task_id
    """
    with catalog(run_dir) as con:
        return con.execute(sql).df()


def _ratio(kept: pd.Series, tried: pd.Series) -> pd.Series:
    return (kept / tried.where(tried > 0)).fillna(0.0)


def yield_by_family(run_dir: str | Path) -> pd.DataFrame:
    """Candidates tried, kept and rejected per family, and the yield kept / tried (0 when none was tried)."""
    families = synth_report(run_dir).get("families", {})
    rows = [
        {"family": f, "tried": int(v["tried"]), "kept": int(v["kept"]), "rejected": sum(v["rejected"].values())}
        for f, v in sorted(families.items())
    ]
    frame = pd.DataFrame(rows, columns=["family", "tried", "kept", "rejected"])
    frame["yield"] = _ratio(frame["kept"], frame["tried"])
    return frame


def yield_by_operator(run_dir: str | Path) -> pd.DataFrame:
    """Candidates tried and kept per (family, operator), and the yield kept / tried."""
    families = synth_report(run_dir).get("families", {})
    rows = [
        {"family": f, "operator": op, "tried": int(c["tried"]), "kept": int(c["kept"])}
        for f, v in sorted(families.items())
        for op, c in sorted(v.get("per_operator", {}).items())
    ]
    frame = pd.DataFrame(rows, columns=["family", "operator", "tried", "kept"])
    frame["yield"] = _ratio(frame["kept"], frame["tried"])
    return frame


def rejections_by_reason(run_dir: str | Path) -> pd.DataFrame:
    """Rejected candidates per (family, reason): columns family, reason, count."""
    families = synth_report(run_dir).get("families", {})
    rows = [
        {"family": f, "reason": r, "count": int(n)}
        for f, v in sorted(families.items())
        for r, n in sorted(v.get("rejected", {}).items())
    ]
    return pd.DataFrame(rows, columns=["family", "reason", "count"]).astype({"count": "int64"})


def min_mutation_score(run_dir: str | Path) -> float | None:
    """The run's `synth.min_mutation_score` gate (from config.yaml), or None when the config is absent."""
    import yaml

    path = Path(run_dir, "config.yaml")
    if not path.is_file():
        return None
    value = ((yaml.safe_load(path.read_text()) or {}).get("synth") or {}).get("min_mutation_score")
    return None if value is None else float(value)


def mutation_scores(run_dir: str | Path) -> pd.DataFrame:
    """Mutation scores: every draft the test-strength gate scored (`gated`, kept or weak) and every kept task
    (`kept`). Columns: group, score."""
    gated = synth_report(run_dir).get("verifier", {}).get("mutation_scores", [])
    kept = kept_tasks(run_dir)["mutation_score"].astype(float).tolist()
    rows = [("gated", float(s)) for s in gated] + [("kept", s) for s in kept]
    return pd.DataFrame(rows, columns=["group", "score"]).astype({"score": "float64"})


def difficulty_thresholds() -> dict[str, float]:
    """Score bounds of the difficulty labels: `easy_below` and `hard_from` (medium in between)."""
    from synth.difficulty import EASY_BELOW, HARD_FROM

    return {"easy_below": float(EASY_BELOW), "hard_from": float(HARD_FROM)}


def difficulty_counts(run_dir: str | Path) -> pd.DataFrame:
    """Kept tasks per (family, difficulty label): columns family, difficulty, tasks (labels easy/medium/hard)."""
    tasks = kept_tasks(run_dir)
    frame = tasks.groupby(["family", "difficulty"], as_index=False).size().rename(columns={"size": "tasks"})
    return frame.astype({"tasks": "int64"})


def flaky_rejections(run_dir: str | Path) -> pd.DataFrame:
    """Per family: candidates rejected as flaky (`FLAKY_REASONS`), and kept tasks that left flaky tests out.

    Columns: family, rejected_flaky, kept_with_flaky_tests, flaky_tests_left_out.
    """
    reasons = rejections_by_reason(run_dir)
    flaky = reasons[reasons["reason"].isin(FLAKY_REASONS)].groupby("family")["count"].sum()
    tasks = kept_tasks(run_dir)
    with_flaky = tasks[tasks["flaky_tests"] > 0].groupby("family").size()
    left_out = tasks.groupby("family")["flaky_tests"].sum()
    frame = pd.DataFrame({"family": sorted(synth_report(run_dir).get("families", {}))})
    frame["rejected_flaky"] = frame["family"].map(flaky).fillna(0).astype("int64")
    frame["kept_with_flaky_tests"] = frame["family"].map(with_flaky).fillna(0).astype("int64")
    frame["flaky_tests_left_out"] = frame["family"].map(left_out).fillna(0).astype("int64")
    return frame


def sandbox_outcomes(run_dir: str | Path) -> dict[str, Any]:
    """What the sandboxed verification did: `verdicts` (frame outcome, drafts: `verified` or a reject reason),
    `runs` (frame phase, runs, wall_s: sandbox runs and their total wall time per phase), `isolation` (list)."""
    report = synth_report(run_dir)
    stats = report.get("verifier", {})
    verdicts = [("verified", int(stats.get("verified", 0)))]
    verdicts += [(k.removeprefix("rejected:"), int(v)) for k, v in sorted(stats.items()) if k.startswith("rejected:")]
    wall = stats.get("run_wall_s", {})
    phases = sorted({k.removeprefix("runs_") for k in stats if k.startswith("runs_")} | set(wall))
    runs = [(p, int(stats.get(f"runs_{p}", 0)), float(wall.get(p, 0.0))) for p in phases]
    return {
        "verdicts": pd.DataFrame(verdicts, columns=["outcome", "drafts"]).astype({"drafts": "int64"}),
        "runs": pd.DataFrame(runs, columns=["phase", "runs", "wall_s"]).astype({"runs": "int64"}),
        "isolation": list(report.get("isolation", [])),
    }


def kept_examples(run_dir: str | Path, per_family: int = 2, chars: int = 120) -> pd.DataFrame:
    """The first `per_family` kept tasks (by task_id) of each family, with the description cut to `chars`."""
    tasks = kept_tasks(run_dir)
    cols = ["family", "task_id", "operator", "module", "function", "difficulty", "mutation_score"]
    cols += ["fail_to_pass", "pass_to_pass", "description"]
    frame = tasks.groupby("family", sort=True).head(per_family)[cols].reset_index(drop=True)
    frame["description"] = [d if len(d) <= chars else d[: chars - 1] + "…" for d in frame["description"].astype(str)]
    return frame
