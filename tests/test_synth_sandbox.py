"""The sandbox really isolates and limits a child process (real subprocesses, no mocks)."""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path

import pytest

from synth.sandbox import SAFE_PATH, run_sandboxed


def _py(code: str) -> list[str]:
    return [sys.executable, "-s", "-c", textwrap.dedent(code)]


def _dead(pid: int) -> bool:
    """True if the process is gone or a zombie (PID 1 here may not reap orphans)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return True
    return state in ("Z", "X")


def test_wall_timeout_kills_the_whole_process_group(tmp_path: Path) -> None:
    code = """
        import os, subprocess, sys, time
        subprocess.Popen([sys.executable, "-c",
            "import os; open('grandchild.pid', 'w').write(str(os.getpid()))\\nwhile True: pass"])
        while not os.path.exists("grandchild.pid"):
            time.sleep(0.01)
        open("child.pid", "w").write(str(os.getpid()))
        while True:
            pass
    """
    res = run_sandboxed(_py(code), tmp_path, timeout_s=2.0, cpu_s=60)
    assert res.timed_out and res.killed_by == "wall_timeout"
    assert res.wall_s < 10
    child, grandchild = (int((tmp_path / f"{n}.pid").read_text()) for n in ("child", "grandchild"))
    assert _dead(child)
    assert _dead(grandchild), "the grandchild survived the wall timeout"


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

    from synth.sandbox import netns_prefix

    if not netns_prefix():
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
    assert isolated.isolation.endswith("+netns") and isolated.stdout.startswith("refused")
    assert allowed.isolation == "process-group+rlimits" and allowed.stdout.startswith("connected")
