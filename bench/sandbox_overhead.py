"""Per-execution overhead of the sandbox: warm pool vs a fresh sandboxed interpreter vs a bare interpreter.

Every path runs the same do-nothing Python program (`pass`); what is timed is the caller's wall time per run:
- `warm pool`: `synth.execute.execute` (a forked child of a pre-started worker; full isolation);
- `fresh interpreter`: `synth.sandbox.run_sandboxed` (a one-shot worker sets up the same isolation, then execs
  a new interpreter);
- `bare subprocess`: `subprocess.run([python, "-c", "pass"])` (no isolation at all; the reference).

    .venv/bin/python bench/sandbox_overhead.py [-n 200]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # before bench/ itself: bench/synth.py must not shadow the synth package


def _time(fn: Callable[[], object], n: int) -> list[float]:
    fn()  # warm-up (starts the pool's worker, fills caches)
    out = []
    for _ in range(n):
        start = time.perf_counter()
        fn()
        out.append((time.perf_counter() - start) * 1000)
    return out


def _row(path: str, times: list[float]) -> dict:
    times = sorted(times)
    return {
        "path": path,
        "executions": len(times),
        "mean_ms": round(statistics.fmean(times), 2),
        "p50_ms": round(statistics.median(times), 2),
        "p95_ms": round(times[min(len(times) - 1, int(0.95 * len(times)))], 2),
    }


def measure(n: int = 200) -> list[dict]:
    """Rows (path, executions, mean_ms, p50_ms, p95_ms) for the warm pool, a fresh interpreter and bare Python."""
    from synth.execute import Limits, execute
    from synth.sandbox import private_dir, run_sandboxed

    def warm() -> None:
        res = execute({"job.py": "pass\n"}, ["python", "-s", "-P", "job.py"], Limits())
        assert res.status == "ok", res

    with private_dir("bench-ws-") as ws:
        (ws / "job.py").write_text("pass\n")

        def fresh() -> None:
            res = run_sandboxed([sys.executable, "-s", "-P", "job.py"], ws)
            assert res.status == "ok", res

        def bare() -> None:
            subprocess.run([sys.executable, "-c", "pass"], check=True)

        return [_row("warm pool", _time(warm, n)), _row("fresh interpreter", _time(fresh, n)),
                _row("bare subprocess", _time(bare, n))]  # fmt: skip


def main() -> None:
    """Print the table, with each path's mean relative to the bare interpreter."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=200, help="executions per path")
    args = parser.parse_args()
    from synth.sandbox import isolation_level

    rows = measure(args.n)
    bare = rows[-1]["mean_ms"]
    print(f"isolation: {isolation_level()}")
    print(f"{'path':<20}{'runs':>6}{'mean ms':>10}{'p50 ms':>10}{'p95 ms':>10}{'x bare':>8}")
    for r in rows:
        ratio = r["mean_ms"] / bare
        print(f"{r['path']:<20}{r['executions']:>6}{r['mean_ms']:>10}{r['p50_ms']:>10}{r['p95_ms']:>10}{ratio:>8.2f}")


if __name__ == "__main__":
    main()
