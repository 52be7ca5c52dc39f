"""Synthetic-task benchmark: verified tasks per second per core by family, yield by family and operator,
sandbox overhead per execution (warm pool vs a fresh interpreter), mutation-score distribution.

Source: the real Python files of ../shared/data/code (TheAlgorithms + pip, with doctests), decontaminated
against HumanEval and MBPP from ../shared/data/evalsets.

    .venv/bin/python bench/synth.py [--max-tasks 600] [--workers 2] [--out /tmp/amx-bench-synth]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
# this script's folder would shadow the `synth` package with this very file: import from the repo root instead
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]
sys.path.insert(0, str(ROOT))


def bench_config(max_tasks: int, workers: int, seed: int):
    """The synth config of the benchmark: the shared code corpus, decontaminated against HumanEval and MBPP."""
    from automixer.config import SynthConfig

    evalsets = DATA / "evalsets"
    return SynthConfig(
        sources=[str(DATA / "code" / "code_corpus_python.jsonl.gz")], max_tasks=max_tasks, workers=workers, seed=seed,
        eval_sets=[
            {"name": "humaneval", "path": str(evalsets / "HumanEval.jsonl.gz")},
            {"name": "mbpp", "path": str(evalsets / "sanitized-mbpp.json")},
            {"name": "mbppplus", "path": str(evalsets / "MbppPlus_evalplus_2023-11.jsonl")},
        ],
    )  # fmt: skip


def _table(title: str, header: list[str], rows: list[list]) -> str:
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows, strict=True)]
    line = lambda cells: "| " + " | ".join(str(c).ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"  # noqa: E731
    sep = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([f"\n{title}\n", line(header), sep, *(line(r) for r in rows)])


def family_rows(report: dict, cores: int) -> list[list]:
    """Per family: kept, tried, yield, wall, verified tasks per second per core."""
    rows = []
    for name, f in report["families"].items():
        rate = f["kept"] / (f["wall_s"] * cores) if f["wall_s"] else 0.0
        top = ", ".join(f"{k} {v}" for k, v in sorted(f["rejected"].items(), key=lambda kv: -kv[1])[:3])
        rows.append([name, f["quota"], f["kept"], f["tried"], f"{f['yield']:.2f}", f"{f['wall_s']:.1f}",
                     f"{rate:.2f}", top])  # fmt: skip
    return rows


def operator_rows(report: dict) -> list[list]:
    """Per family and operator: tried, kept, yield."""
    return [
        [fam, op, c["tried"], c["kept"], f"{c['kept'] / c['tried']:.2f}" if c["tried"] else "-"]
        for fam, f in report["families"].items()
        for op, c in f["per_operator"].items()
    ]


def main() -> None:
    """Generate tasks from the shared corpus and print the benchmark tables."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--max-tasks", type=int, default=600)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--overhead-runs", type=int, default=200)
    ap.add_argument("--out", type=Path, default=Path("/tmp/amx-bench-synth"))
    args = ap.parse_args()
    if not DATA.is_dir():
        sys.exit(f"bench/synth.py needs the shared data at {DATA}")
    import importlib.util

    spec = importlib.util.spec_from_file_location("sandbox_overhead", ROOT / "bench" / "sandbox_overhead.py")
    overhead_mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(overhead_mod)
    from synth.generate import generate_tasks

    shutil.rmtree(args.out, ignore_errors=True)
    cores = min(args.workers, os.cpu_count() or 1)

    def progress(kept: int, total: int) -> None:
        if kept % 50 == 0 or kept == total:
            print(f"  verified {kept} / {total}", file=sys.stderr, flush=True)

    report = generate_tasks(bench_config(args.max_tasks, args.workers, args.seed), args.out, progress)
    print(f"{report['kept']} verified tasks in {report['wall_s']:.0f} s on {cores} core(s); "
          f"isolation {report['isolation']}")  # fmt: skip
    print(_table("Verified tasks by family", ["family", "quota", "kept", "tried", "yield", "wall s",
                 "tasks/s/core", "top rejects"], family_rows(report, cores)))  # fmt: skip
    print(
        _table("Yield by family and operator", ["family", "operator", "tried", "kept", "yield"], operator_rows(report))
    )
    overhead = overhead_mod.measure(args.overhead_runs)
    base = next((r["mean_ms"] for r in overhead if "fresh" in r["path"]), None)
    print(_table("Sandbox overhead per execution (trivial script)", ["path", "runs", "mean ms", "p50 ms", "p95 ms",
                 "vs fresh"], [[r["path"], r["executions"], f"{r['mean_ms']:.1f}", f"{r['p50_ms']:.1f}",
                 f"{r['p95_ms']:.1f}", f"{r['mean_ms'] / base:.2f}x" if base else "-"] for r in overhead]))  # fmt: skip
    print(
        _table("Mutation score of kept tasks", ["bin", "tasks"], [[k, v] for k, v in report["mutation_score"].items()])
    )
    print(_table("Difficulty", ["label", "tasks"], [[k, v] for k, v in report["difficulty"].items()]))
    print("\nscreen:", json.dumps({k: v for k, v in report["screen"].items() if not isinstance(v, list)}))


if __name__ == "__main__":
    main()
