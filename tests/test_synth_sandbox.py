"""The sandbox really isolates and limits a child process (real subprocesses, no mocks)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import pytest

from synth.sandbox import SAFE_PATH, run_sandboxed


def _py(code: str) -> list[str]:
    return [sys.executable, "-s", "-c", textwrap.dedent(code)]


def _processes_with(token: str) -> list[int]:
    """Host processes whose command line mentions `token` (the sandbox's own pids are namespace-local)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                if token.encode() in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def test_wall_timeout_kills_the_whole_process_group(tmp_path: Path) -> None:
    token = uuid.uuid4().hex
    code = f"""
        import os, subprocess, sys, time
        subprocess.Popen([sys.executable, "-c",
            "import os; open('grandchild.pid', 'w').write(str(os.getpid()))\\nwhile True: pass", "{token}"])
        while not os.path.exists("grandchild.pid"):
            time.sleep(0.01)
        open("child.pid", "w").write(str(os.getpid()))
        while True:
            pass
    """
    res = run_sandboxed([*_py(code), token], tmp_path, timeout_s=2.0, cpu_s=60)
    assert res.timed_out and res.killed_by == "wall_timeout" and res.status == "timeout"
    assert res.wall_s < 10
    assert (tmp_path / "child.pid").is_file() and (tmp_path / "grandchild.pid").is_file()
    assert _processes_with(token) == [], "the child or grandchild survived the wall timeout"


def test_memory_limit_stops_a_huge_allocation(tmp_path: Path) -> None:
    res = run_sandboxed(_py("x = bytearray(2 * 1024**3)\nprint('allocated')"), tmp_path, memory_mb=256)
    assert res.returncode != 0
    assert "MemoryError" in res.stderr
    assert "allocated" not in res.stdout


def test_file_size_limit_stops_a_big_write(tmp_path: Path) -> None:
    code = "open('big.bin', 'wb').write(b'x' * (4 * 1024 * 1024))\nprint('written')"
    res = run_sandboxed(_py(code), tmp_path, max_file_mb=1)
    assert res.returncode != 0
    assert "written" not in res.stdout
    assert (tmp_path / "big.bin").stat().st_size <= 1024 * 1024


def test_cpu_limit_ends_a_busy_loop(tmp_path: Path) -> None:
    res = run_sandboxed(_py("while True:\n    pass"), tmp_path, timeout_s=30, cpu_s=1)
    assert not res.timed_out
    assert res.killed_by in ("SIGXCPU", "SIGKILL")
    assert res.wall_s < 20


def test_environment_is_scrubbed(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("AUTOMIXER_TEST_SECRET", "hunter2")
    res = run_sandboxed(_py("import json, os\nprint(json.dumps(dict(os.environ)))"), tmp_path)
    env = json.loads(res.stdout)
    assert "AUTOMIXER_TEST_SECRET" not in env and "hunter2" not in res.stdout
    assert env["PATH"] == SAFE_PATH and env["PYTHONHASHSEED"] == "0"
    assert env["HOME"] == str(tmp_path.resolve())


def test_runs_in_its_own_temp_dir_which_is_removed() -> None:
    code = "import os\nopen('left.txt', 'w').write('x')\nprint(os.getcwd())"
    res = run_sandboxed(_py(code))
    cwd = Path(res.stdout.strip())
    assert res.returncode == 0
    assert cwd != Path.cwd().resolve() and cwd.name.startswith("sandbox-")
    assert not cwd.exists(), "the private working dir was not cleaned up"


def test_resource_limits_are_applied(tmp_path: Path) -> None:
    code = """
        import json, os, resource as r
        names = ["RLIMIT_CPU", "RLIMIT_AS", "RLIMIT_FSIZE", "RLIMIT_NOFILE", "RLIMIT_NPROC"]
        out = {n: r.getrlimit(getattr(r, n))[0] for n in names}
        print(json.dumps({**out, "session_leader": os.getsid(0) == os.getpid()}))
    """
    res = run_sandboxed(_py(code), tmp_path, cpu_s=7, memory_mb=300, max_file_mb=3, max_files=50, max_procs=9)
    got = json.loads(res.stdout)
    assert got["RLIMIT_CPU"] == 7
    assert got["RLIMIT_AS"] == 300 << 20
    assert got["RLIMIT_FSIZE"] == 3 << 20
    assert got["RLIMIT_NOFILE"] == 50
    assert got["RLIMIT_NPROC"] >= 9
    assert got["session_leader"], "the child did not run in its own session / process group"


def test_no_network_inside_the_sandbox_where_namespaces_are_allowed(tmp_path: Path) -> None:
    import socket

    from synth.sandbox import isolation_level

    if "netns" not in isolation_level():
        pytest.skip("this machine does not allow network namespaces; isolation is recorded without +netns")
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    probe = (
        "import socket\n"
        "try:\n"
        f"    socket.create_connection(('127.0.0.1', {port}), timeout=2).close(); print('connected')\n"
        "except OSError as e:\n"
        "    print('refused', e.errno)\n"
    )
    try:
        isolated = run_sandboxed([sys.executable, "-c", probe], tmp_path, timeout_s=10)
        allowed = run_sandboxed([sys.executable, "-c", probe], tmp_path, timeout_s=10, network=True)
    finally:
        server.close()
    assert "+netns" in isolated.isolation and isolated.stdout.startswith("refused")
    assert "netns" not in allowed.isolation and allowed.stdout.startswith("connected")


# ---------------------------------------------------------------- the warm pool behind synth.execute.execute

RUNNER = """
import os, sys
import pkg.mod
from lib import double
print(__name__, sys.path[0] == os.getcwd(), sys.argv[1:], pkg.mod.VALUE, double(21))
sys.stdout.flush()
os._exit(int(sys.argv[1]))
"""
WORKSPACE = {"run_tests.py": RUNNER, "pkg/__init__.py": "", "pkg/mod.py": "VALUE = 'pkg'\n",
             "lib.py": "def double(x):\n    return 2 * x\n"}  # fmt: skip


def test_execute_runs_a_script_like_the_interpreter_does() -> None:
    from synth.execute import Limits, execute

    res = execute(WORKSPACE, ["python", "-s", "-P", "run_tests.py", "0", "--flag"], Limits())
    assert (res.status, res.returncode, res.stderr) == ("ok", 0, "")
    assert res.stdout == "__main__ True ['0', '--flag'] pkg 42\n"
    failed = execute(WORKSPACE, ["python", "-s", "-P", "run_tests.py", "3"], Limits())
    assert (failed.status, failed.returncode) == ("error", 3) and "pkg 42" in failed.stdout


@pytest.mark.parametrize(
    ("argv", "status", "returncode", "stdout", "in_stderr"),
    [
        (["python", "-c", "import sys; sys.exit(4)"], "error", 4, "", ""),
        (["python", "-c", "raise ValueError('boom')"], "error", 1, "", "ValueError: boom"),
        (["python", "-c", "def f(:\n pass"], "error", 1, "", "SyntaxError"),
        (["python", "-c", "import sys; sys.exit('bye')"], "error", 1, "", "bye"),
        (["python", "-m", "lib"], "ok", 0, "", ""),
        (["python", "missing.py"], "error", 2, "", "can't open file"),
        (["python", "-X", "dev", "-c", "import sys; print(sys.flags.dev_mode)"], "ok", 0, "True\n", ""),
        (["sh", "-c", "echo from-sh; exit 5"], "error", 5, "from-sh\n", ""),
        (["python", "-c", "import os, signal; os.kill(os.getpid(), signal.SIGSEGV)"], "killed", -11, "", ""),
    ],
)
def test_execute_statuses(argv: list[str], status: str, returncode: int, stdout: str, in_stderr: str) -> None:
    from synth.execute import Limits, execute

    res = execute({"lib.py": "X = 1\n"}, argv, Limits(timeout_s=20))
    assert (res.status, res.returncode, res.stdout) == (status, returncode, stdout), res.stderr
    assert in_stderr in res.stderr
    assert "worker.py" not in res.stderr, "the sandbox's own frames leaked into the traceback"


def test_hash_seed_picks_a_worker_started_with_that_seed() -> None:
    from synth.execute import Limits, execute

    code = "print(hash('automixer'), __import__('os').environ['PYTHONHASHSEED'])"
    for seed in (0, 1, 12345):
        ref = subprocess.run([sys.executable, "-c", code], env={"PYTHONHASHSEED": str(seed)}, capture_output=True,
                             text=True, check=True)  # fmt: skip
        res = execute({}, ["python", "-c", code], Limits(), hash_seed=seed)
        assert res.stdout == ref.stdout
    with pytest.raises(ValueError):
        execute({}, ["python", "-c", "pass"], Limits(), hash_seed=-1)


def test_execute_is_thread_safe_across_seeds() -> None:
    from concurrent.futures import ThreadPoolExecutor

    from synth.execute import Limits, execute

    code = "import sys; print(sys.argv[1], hash('x'))"
    expected = {seed: subprocess.run([sys.executable, "-c", "print(hash('x'))"], env={"PYTHONHASHSEED": str(seed)},
                                     capture_output=True, text=True).stdout.strip() for seed in (0, 1, 2)}  # fmt: skip

    def job(i: int) -> tuple[int, str]:
        res = execute({"job.py": code}, ["python", "job.py", str(i)], Limits(), hash_seed=i % 3)
        return i, res.stdout

    with ThreadPoolExecutor(6) as ex:
        results = list(ex.map(job, range(24)))
    assert all(out == f"{i} {expected[i % 3]}\n" for i, out in results)


def test_workspace_paths_may_not_escape() -> None:
    from synth.execute import Limits, execute

    for name in ("../evil.py", "/etc/evil.py", "a/../../evil.py"):
        with pytest.raises(ValueError, match="escapes"):
            execute({name: "x"}, ["python", "-c", "pass"], Limits())


def test_both_paths_record_the_machine_isolation_level(tmp_path: Path) -> None:
    from synth.execute import Limits, execute
    from synth.sandbox import isolation_level

    warm = execute({}, ["python", "-c", "pass"], Limits())
    fresh = run_sandboxed([sys.executable, "-c", "pass"], tmp_path)
    assert warm.isolation == fresh.isolation == isolation_level()
    assert warm.isolation.startswith("pgroup+rlimits")


def test_the_warm_pool_is_much_cheaper_than_a_fresh_interpreter(tmp_path: Path) -> None:
    import statistics
    import time

    from synth.execute import Limits, execute

    def p50(fn) -> float:
        times = []
        for _ in range(9):
            start = time.perf_counter()
            assert fn().status == "ok"
            times.append(time.perf_counter() - start)
        return statistics.median(times)

    warm = p50(lambda: execute({"job.py": "pass"}, ["python", "-s", "-P", "job.py"], Limits()))
    fresh = p50(lambda: run_sandboxed([sys.executable, "-s", "-P", "-c", "pass"], tmp_path))
    assert warm < fresh / 2, (warm, fresh)


def test_cli_sandbox_run(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from automixer.cli import app

    good, bad = tmp_path / "good.py", tmp_path / "bad.py"
    good.write_text("print('hi from the sandbox')\n")
    bad.write_text("raise SystemExit(3)\n")
    runner = CliRunner()
    res = runner.invoke(app, ["sandbox", "run", str(good), "--timeout", "5", "--memory-mb", "256", "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert set(out) == {"status", "exit_code", "stdout", "stderr", "wall_s", "isolation"}
    assert (out["status"], out["exit_code"], out["stdout"]) == ("ok", 0, "hi from the sandbox\n")
    failed = runner.invoke(app, ["sandbox", "run", str(bad)])
    assert failed.exit_code == 1 and "error (exit 3)" in failed.stdout
    missing = runner.invoke(app, ["sandbox", "run", str(tmp_path / "nope.py"), "--json"])
    assert missing.exit_code == 2 and "no such file" in missing.output


def test_pool_replaces_dead_workers_and_evicts_other_seeds() -> None:
    import signal

    from synth.pool import WorkerPool

    pool = WorkerPool(max_workers=1)
    try:
        first = pool.run({}, ["python", "-c", "print(1)"], hash_seed=0)
        (worker,) = pool.workers()
        os.killpg(worker["pid"], signal.SIGKILL)  # dies while idle: the next job must not notice
        os.waitpid(worker["pid"], 0)
        second = pool.run({}, ["python", "-c", "print(2)"], hash_seed=0)
        (replacement,) = pool.workers()
        third = pool.run({}, ["python", "-c", "print(3)"], hash_seed=5)  # the only slot goes to seed 5
        assert [r.stdout for r in (first, second, third)] == ["1\n", "2\n", "3\n"]
        assert replacement["pid"] != worker["pid"]
        assert [w["hash_seed"] for w in pool.workers()] == [5]
    finally:
        pool.shutdown()
    assert pool.workers() == []
    with pytest.raises(RuntimeError, match="shut down"):
        pool.run({}, ["python", "-c", "pass"])


def test_fallback_without_namespaces_still_limits_and_cleans_up() -> None:
    """What a machine without namespaces gets: no pidns/netns/mountns, but limits and (with the cgroup) cleanup."""
    from synth.pool import WorkerPool

    pool = WorkerPool(max_workers=1, namespaces=False)
    token = uuid.uuid4().hex
    daemon = f"""
import os, sys
print(os.getpid() != 1, os.getcwd() == os.environ["HOME"], flush=True)
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        os.execv(sys.executable, [sys.executable, "-c", "import time; time.sleep(60)", "{token}"])
    os._exit(0)
os.wait()
"""
    try:
        res = pool.run({"job.py": daemon}, ["python", "job.py"])
        (worker,) = pool.workers()
        slow = pool.run({}, ["python", "-c", "while True: pass"], timeout_s=1.0)
    finally:
        pool.shutdown()
    assert (res.status, res.stdout) == ("ok", "True True\n")
    assert "pidns" not in res.isolation and "mountns-ro" not in res.isolation
    assert res.isolation.startswith("pgroup+rlimits") and res.isolation.endswith("nocaps")
    assert slow.status == "timeout"
    if worker["cgroup"]:  # the cgroup finds the daemon that left the job's session
        assert _processes_with(token) == []
        assert not Path(worker["cgroup"]).exists(), "the worker's cgroup was not removed"
