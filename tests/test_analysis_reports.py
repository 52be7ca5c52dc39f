"""The curation and synth report functions on a real tiny run, the duplicate-cluster histogram, and both notebooks."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from datatrove.pipeline.dedup.minhash import MinhashConfig, MinhashDedupCluster

from automixer import analysis_curation as ac
from automixer import analysis_synth as asy
from automixer.curate.dedup import BoundedMinhashCluster

ROOT = Path(__file__).resolve().parents[1]
SECTIONS = {"curation_report": 5, "synth_report": 5}
"""Sections (hence PNG figures) of each notebook."""


@pytest.fixture(scope="module")
def run_dir(tiny_run) -> Path:
    return Path(tiny_run[0].work_dir)


def _excluded(run_dir: Path) -> pd.DataFrame:
    files = sorted((run_dir / "curation" / "excluded").glob("*.parquet"))
    return pd.concat([pq.read_table(f).to_pandas() for f in files], ignore_index=True)


def _result(run_dir: Path) -> dict:
    (path,) = (run_dir / "curation").glob("run-*/result.json")
    return json.loads(path.read_text())


def _lines(path: Path) -> int:
    return sum(1 for line in path.read_text().splitlines() if line.strip())


def test_flow_counts_agree_with_manifest_result_and_exclusions(run_dir: Path) -> None:
    flow = ac.flow_by_domain(run_dir)
    manifest = json.loads((run_dir / "shards" / "manifest.json").read_text())["domains"]
    result = _result(run_dir)["domains"]
    assert sorted(flow["domain"]) == sorted(result) and "synthetic" not in set(flow["domain"])
    excluded = _excluded(run_dir).groupby("domain").size()
    for row in flow.itertuples():
        assert row.docs_kept == manifest[row.domain]["docs"] == result[row.domain]["docs_kept"]
        assert row.tokens_kept == manifest[row.domain]["tokens"]
        assert row.docs_excluded == excluded.get(row.domain, 0)
        assert row.docs_kept + row.docs_excluded == result[row.domain]["docs_in"]  # after the reader
        assert row.docs_in == row.docs_kept + row.docs_excluded + row.docs_reader_errors
        ratio = manifest[row.domain]["tokens"] / manifest[row.domain]["bytes"]
        assert row.tokens_dropped_est == pytest.approx(row.bytes_excluded * ratio, abs=1)
    assert flow["docs_reader_errors"].sum() == _lines(run_dir / "curation" / "reader_errors.jsonl")
    assert flow["docs_excluded"].sum() > 0 and flow["tokens_dropped_est"].sum() > 0
    by_source = ac.flow_by_source(run_dir)
    assert by_source.groupby("domain")["docs_in"].sum().to_dict() == dict(
        zip(flow["domain"], flow["docs_in"], strict=True)
    )


def test_drops_by_reason_sum_to_excluded_rows_and_reader_errors(run_dir: Path) -> None:
    drops = ac.drops_by_reason(run_dir)
    excluded = _excluded(run_dir)
    documented = drops[drops["filter"] != "reader"]
    assert documented["count"].sum() == len(excluded) == documented["excluded"].sum()
    assert (documented["count"] == documented["excluded"]).all()
    counts = excluded.groupby(["filter", "drop_reason"]).size().to_dict()
    assert {(f, r): c for f, r, c in documented[["filter", "reason", "count"]].itertuples(index=False)} == counts
    reader = drops.loc[drops["filter"] == "reader", "count"].sum()
    assert reader == _lines(run_dir / "curation" / "reader_errors.jsonl")


def test_drop_examples_are_few_short_and_deterministic(run_dir: Path) -> None:
    examples = ac.drop_examples(run_dir, per_reason=2, chars=80)
    assert examples.equals(ac.drop_examples(run_dir, per_reason=2, chars=80))
    excluded = _excluded(run_dir)
    for (f, r), part in excluded.groupby(["filter", "drop_reason"]):
        shown = examples[(examples["filter"] == f) & (examples["reason"] == r)]
        assert list(shown["id"]) == sorted(part["id"])[:2]
    assert examples["snippet"].str.len().max() <= 80 and (examples["snippet"].str.len() > 0).all()
    assert len(ac.drop_examples(run_dir, per_reason=1)) == excluded.groupby(["filter", "drop_reason"]).ngroups


def test_cluster_sizes_account_for_every_near_duplicate_drop(run_dir: Path) -> None:
    dedup = ac.duplicate_clusters(run_dir)
    assert (run_dir / "curation" / "dedup_clusters.json").is_file() and dedup["note"] == ""
    sizes = dedup["sizes"]
    assert (sizes["size"] >= 2).all() and (sizes["clusters"] > 0).all()
    assert dedup["near_removed"] == int(sizes["removed"].sum()) > 0  # no index: (size - 1) per cluster
    assert dedup["near_removed"] == int(((sizes["size"] - 1) * sizes["clusters"]).sum())
    drops = json.loads((run_dir / "curation" / "drops.json").read_text())
    assert dedup["exact_removed"] == sum(drops.get("exact_dedup", {}).values())


def test_run_curated_before_cluster_sizes_gives_an_empty_frame_and_a_note(run_dir: Path, tmp_path: Path) -> None:
    (tmp_path / "curation").mkdir()
    shutil.copy(run_dir / "curation" / "drops.json", tmp_path / "curation" / "drops.json")
    dedup = ac.duplicate_clusters(tmp_path)
    assert dedup["sizes"].empty and list(dedup["sizes"].columns) == ["size", "clusters", "removed"]
    assert dedup["note"] == ac.CLUSTERS_NOT_RECORDED and dedup["near_removed"] > 0


def test_histogram_counts_the_same_clusters_as_datatrove(tmp_path: Path) -> None:
    """Clusters {0,1,2}, {3,4}, {5,6,7,8} (chained) and {9,10} across two files: sizes 3, 2, 4, 2."""
    edges = [((0, 0), (0, 1)), ((0, 1), (0, 2)), ((0, 3), (1, 0)), ((1, 1), (1, 2)), ((1, 2), (1, 3))]
    edges += [((1, 3), (1, 4)), ((0, 5), (1, 5)), ((0, 0), (0, 2))]
    folder = tmp_path / "dups"
    folder.mkdir()
    np.array([[*a, *b] for a, b in edges], dtype="<u4").tofile(folder / "000.dups")
    cfg = MinhashConfig(num_buckets=1)
    BoundedMinhashCluster(str(folder), str(tmp_path / "ours"), config=cfg, save_size_histogram=True).run()
    MinhashDedupCluster(str(folder), str(tmp_path / "theirs"), config=cfg, save_cluster_size=True).run()
    per_doc = np.concatenate(
        [np.fromfile(p, dtype="<u4").reshape(-1, 2) for p in (tmp_path / "theirs").glob("*.sizes")]
    )
    theirs = {str(size): n // size for size, n in sorted(Counter(int(s) for s in per_doc[:, 1]).items())}
    ours = json.loads((tmp_path / "ours" / "cluster_sizes.json").read_text())
    assert ours == theirs == {"2": 2, "3": 1, "4": 1}
    assert not any(p.name.endswith(".tmp") for p in (tmp_path / "ours").iterdir())
    BoundedMinhashCluster(str(folder), str(tmp_path / "off"), config=cfg).run()
    assert not (tmp_path / "off" / "cluster_sizes.json").exists()  # opt-in: datatrove's file set otherwise


def test_decontamination_and_shard_sizes(run_dir: Path) -> None:
    hits = ac.decontamination_hits(run_dir)
    assert list(hits.columns) == ["eval_set", "domain", "documents", "items"]
    assert hits["documents"].sum() == len({r["id"] for r in _jsonl(run_dir / "curation" / "decontamination.jsonl")})
    shards = ac.shard_sizes(run_dir)
    manifest = json.loads((run_dir / "shards" / "manifest.json").read_text())
    assert len(shards) == len(manifest["shards"])
    assert shards.groupby("domain")["docs"].sum().to_dict() == {d: v["docs"] for d, v in manifest["domains"].items()}


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_missing_inputs_name_the_file_and_the_command(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"shards/manifest\.json.*automixer curate"):
        ac.flow_by_source(tmp_path)
    with pytest.raises(FileNotFoundError, match=r"curation/drops\.json.*automixer curate"):
        ac.drops_by_reason(tmp_path)
    with pytest.raises(FileNotFoundError, match=r"tasks/report\.json.*automixer synth"):
        asy.yield_by_family(tmp_path)
    with pytest.raises(FileNotFoundError, match=r"tasks/tasks\.parquet.*automixer synth"):
        asy.kept_tasks(tmp_path)


def test_yield_per_family_and_operator_match_report(run_dir: Path) -> None:
    report = json.loads((run_dir / "tasks" / "report.json").read_text())["families"]
    fam = asy.yield_by_family(run_dir).set_index("family")
    assert sorted(fam.index) == sorted(report) and fam["tried"].sum() > 0
    for name, rec in report.items():
        assert (fam.loc[name, "tried"], fam.loc[name, "kept"]) == (rec["tried"], rec["kept"])
        assert fam.loc[name, "rejected"] == rec["tried"] - rec["kept"] == sum(rec["rejected"].values())
        assert fam.loc[name, "yield"] == pytest.approx(rec["kept"] / rec["tried"] if rec["tried"] else 0.0)
        assert round(fam.loc[name, "yield"], 4) == rec["yield"]
    ops = asy.yield_by_operator(run_dir)
    sums = ops.groupby("family")[["tried", "kept"]].sum()
    for name in sums.index:
        assert tuple(sums.loc[name]) == (report[name]["tried"], report[name]["kept"])
    reasons = asy.rejections_by_reason(run_dir).groupby("family")["count"].sum()
    assert reasons.to_dict() == {f: v["tried"] - v["kept"] for f, v in report.items() if v["tried"] > v["kept"]}


def test_synth_distributions_outcomes_and_examples(run_dir: Path) -> None:
    report = json.loads((run_dir / "tasks" / "report.json").read_text())
    tasks = pq.read_table(run_dir / "tasks" / "tasks.parquet").to_pandas()
    kept = asy.kept_tasks(run_dir)
    assert len(kept) == len(tasks) == report["kept"] > 0
    scores = asy.mutation_scores(run_dir)
    assert sorted(scores.loc[scores["group"] == "gated", "score"]) == report["verifier"]["mutation_scores"]
    assert sorted(scores.loc[scores["group"] == "kept", "score"]) == sorted(tasks["mutation_score"])
    diff = asy.difficulty_counts(run_dir).groupby("difficulty")["tasks"].sum()
    assert diff.to_dict() == report["difficulty"]
    flaky = asy.flaky_rejections(run_dir).set_index("family")
    for name, rec in report["families"].items():
        assert flaky.loc[name, "rejected_flaky"] == sum(rec["rejected"].get(r, 0) for r in asy.FLAKY_REASONS)
    assert flaky["flaky_tests_left_out"].sum() == sum(len(t) for t in tasks["flaky_tests"])
    box = asy.sandbox_outcomes(run_dir)
    stats = report["verifier"]
    assert box["verdicts"]["drafts"].sum() == sum(
        v for k, v in stats.items() if k == "verified" or k.startswith("rejected:")
    )
    assert box["runs"]["runs"].sum() == stats["runs"] and box["isolation"] == report["isolation"]
    examples = asy.kept_examples(run_dir, per_family=1)
    assert list(examples["family"]) == sorted(set(tasks["family"]))
    assert list(examples["task_id"]) == [min(g["task_id"]) for _, g in tasks.groupby("family")]


def _execute(name: str, run: Path, out: Path):
    import nbformat
    import papermill

    papermill.execute_notebook(
        str(ROOT / "notebooks" / f"{name}.ipynb"), str(out), parameters={"run_dir": str(run)},
        kernel_name="python3", progress_bar=False, cwd=str(ROOT),
    )  # fmt: skip
    return nbformat.read(str(out), as_version=4)


def _check_sections(nb, expected: int) -> None:
    """No error output, and every section's code cell (after the imports) ends in exactly one PNG figure."""
    code = [c for c in nb.cells if c.cell_type == "code"]
    outputs = [o for c in code for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    assert sum("image/png" in o.get("data", {}) for o in outputs) == expected
    sections = [c for c in code if "plt.show()" in c.source]
    assert len(sections) == expected
    for cell in sections:
        pngs = [o for o in cell.outputs if "image/png" in o.get("data", {})]
        assert len(pngs) == 1 and cell.outputs[-1] is pngs[0], cell.source[:80]


@pytest.mark.parametrize("name", sorted(SECTIONS))
def test_notebook_executes_with_one_figure_per_section(run_dir: Path, tmp_path: Path, name: str) -> None:
    import nbformat

    source = nbformat.read(str(ROOT / "notebooks" / f"{name}.ipynb"), as_version=4)
    params = [c for c in source.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(params) == 1 and params[0].source == 'run_dir = "runs/demo-full"' and source.cells[1] is params[0]
    assert not any(c.get("outputs") for c in source.cells if c.cell_type == "code")  # stored without outputs
    _check_sections(_execute(name, run_dir, tmp_path / f"{name}.ipynb"), SECTIONS[name])


def test_curation_notebook_on_a_run_without_cluster_sizes(run_dir: Path, tmp_path: Path) -> None:
    old = tmp_path / "old-run"
    for part in ("curation", "shards"):
        shutil.copytree(run_dir / part, old / part)
    shutil.copy(run_dir / "config.yaml", old / "config.yaml")
    (old / "curation" / "dedup_clusters.json").unlink()
    assert ac.duplicate_clusters(old)["note"] == ac.CLUSTERS_NOT_RECORDED
    _check_sections(_execute("curation_report", old, tmp_path / "out.ipynb"), SECTIONS["curation_report"])
