"""Hostile programs are contained, reported with a sensible status, and leave no process or file behind.

Each runs through the warm pool (`synth.execute.execute`) and through the fresh-interpreter path
(`synth.sandbox.run_sandboxed`); after each, a normal run must still work."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import pytest

from synth.execute import Limits, execute
from synth.pool import WorkerPool, default_pool
from synth.sandbox import MAX_OUTPUT_BYTES, SandboxResult, isolation_level, run_sandboxed

ROOT = Path(__file__).resolve().parents[1]
LEVEL = isolation_level()
PATHS = ["pool", "fresh"]


def _needs(*parts: str) -> None:
    missing = [p for p in parts if p not in LEVEL.split("+")]
    if missing:
        pytest.skip(f"this machine does not allow {', '.join(missing)} (isolation {LEVEL})")


def _run(path: str, code: str, tmp_path: Path, *args: str, timeout_s: float = 5.0, **kw) -> SandboxResult:
    """Run `code` as job.py through the warm pool or a fresh interpreter."""
    code = textwrap.dedent(code)
    if path == "pool":
        return execute({"job.py": code}, ["python", "-s", "-P", "job.py", *args], Limits(timeout_s, **kw))
    ws = tmp_path / "ws"
    ws.mkdir(exist_ok=True)
    (ws / "job.py").write_text(code)
    return run_sandboxed([sys.executable, "-s", "-P", "job.py", *args], ws, timeout_s=timeout_s, **kw)


def _processes_with(token: str) -> list[int]:
    """Host processes whose command line mentions `token`."""
    found = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                if token.encode() in Path(f"/proc/{entry.name}/cmdline").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def _assert_clean_and_alive(path: str, tmp_path: Path, token: str) -> None:
    """Nothing of the job survives (no process, no task left in a warm worker's cgroup) and a normal run works."""
    assert _processes_with(token) == []
    assert not [p for p in Path("/tmp").iterdir() if token in p.name], "a file leaked into the host /tmp"
    if path == "pool":
        for worker in default_pool().workers():
            if worker["cgroup"]:
                procs = Path(worker["cgroup"], "cgroup.procs").read_text().split()
                assert len(procs) == 1, f"stray tasks in the worker's cgroup: {procs}"
    res = _run(path, "print('fine')", tmp_path)
    assert (res.status, res.stdout) == ("ok", "fine\n")


def test_the_isolation_level_on_this_machine_is_complete() -> None:
    """This machine (and CI, the same image) must reach every level; elsewhere the hostile tests skip."""
    if os.getuid() != 0 or not os.access("/sys/fs/cgroup/pids", os.W_OK):
        pytest.skip("not root with a writable cgroup v1 pids controller: a lower level is expected")
    assert LEVEL == "pgroup+rlimits+pidns+netns+ipcns+mountns-ro+pids-cgroup+nocaps"


PROBE = "import sys\ntry:\n    open(sys.prefix + '/x', 'w')\nexcept OSError as e:\n    print(sys.prefix, type(e).__name__)\n"
SCRATCH_VENV_CHECK = f"""
import json, sys
from synth.execute import Limits, execute
from synth.sandbox import run_sandboxed
probe = {PROBE!r}
pool = [execute({{"job.py": probe}}, ["python", "job.py"], Limits(10.0)) for _ in range(3)]  # resets between jobs
fresh = run_sandboxed([sys.executable, "-c", probe])
print(json.dumps([[r.status, r.stdout, r.isolation] for r in [*pool, fresh]]))
"""


def test_a_venv_under_tmp_keeps_the_private_root(tmp_path: Path) -> None:
    """A venv in a scratch dir (/tmp) is bound back into each job's fresh /tmp, read-only, at full isolation."""
    _needs("mountns-ro")
    venv = tmp_path / "venv"  # pytest's tmp_path lies under /tmp, which every job gets as a private tmpfs
    assert str(venv).startswith("/tmp/")
    subprocess.run([sys._base_executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([venv / "bin" / "python", "-c", SCRATCH_VENV_CHECK], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    runs = json.loads(out.stdout.splitlines()[-1])
    assert [r[0] for r in runs] == ["ok"] * 4
    assert all(r[1] == f"{venv} OSError\n" for r in runs), runs  # its own prefix, and not writable
    assert all(r[2] == LEVEL for r in runs)  # the same isolation as a venv outside the scratch dirs
    assert not (venv / "x").exists()


@pytest.mark.parametrize("path", PATHS)
def test_fork_bomb_is_capped_and_cleared(path: str, tmp_path: Path) -> None:
    _needs("pidns", "pids-cgroup")
    token = uuid.uuid4().hex
    res = _run(path, "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n", tmp_path,
               token, timeout_s=2.0)  # fmt: skip
    assert res.status == "timeout" and res.timed_out
    assert res.wall_s < 10
    _assert_clean_and_alive(path, tmp_path, token)


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize(
    "code", ["x = bytearray(4 * 1024**3)", "xs = []\nwhile True:\n    xs.append(bytearray(10**7))"]
)
def test_memory_bomb_reports_memory(path: str, code: str, tmp_path: Path) -> None:
    res = _run(path, code, tmp_path, memory_mb=300)
    assert res.status == "memory" and res.returncode == 1
    assert "MemoryError" in res.stderr
    _assert_clean_and_alive(path, tmp_path, uuid.uuid4().hex)


@pytest.mark.parametrize("path", PATHS)
def test_infinite_loop_hits_the_wall_timeout(path: str, tmp_path: Path) -> None:
    token = uuid.uuid4().hex
    res = _run(path, "while True:\n    pass", tmp_path, token, timeout_s=1.0)
    assert (res.status, res.killed_by, res.returncode) == ("timeout", "wall_timeout", -9)
    assert 1.0 <= res.wall_s < 5
    _assert_clean_and_alive(path, tmp_path, token)


@pytest.mark.parametrize("path", PATHS)
def test_writes_outside_the_workdir_do_not_reach_the_host(path: str, tmp_path: Path) -> None:
    _needs("mountns-ro", "nocaps")
    token = uuid.uuid4().hex
    canary = tmp_path / "canary.txt"
    canary.write_text("keep me")
    targets = [tmp_path / f"outside-{token}", ROOT / f"evil-{token}", Path(f"/tmp/evil-{token}"),
               Path(f"/etc/evil-{token}"), Path(f"/usr/evil-{token}"), Path(f"/root/evil-{token}")]  # fmt: skip
    code = f"""
        import ctypes, os, shutil
        for target in {[str(t) for t in targets]!r}:
            try:
                with open(target, "w") as f:
                    f.write("pwned")
            except OSError as exc:
                print("denied", target, exc.errno)
        for victim in ({str(canary)!r}, {str(ROOT / "pyproject.toml")!r}):
            try:
                os.remove(victim)
            except OSError as exc:
                print("kept", victim, exc.errno)
        shutil.copy("/bin/true", "suid")
        os.chmod("suid", 0o6755)  # a set-user-id root program left for the host to run
        libc = ctypes.CDLL(None, use_errno=True)
        print("remount", libc.mount(None, b"/", None, 32, None), ctypes.get_errno())  # MS_REMOUNT rw: EPERM
        print("chroot", libc.chroot(b"/tmp"), ctypes.get_errno())
    """
    res = _run(path, code, tmp_path)
    assert res.status == "ok", res.stderr
    assert "remount -1 1" in res.stdout and "chroot -1 1" in res.stdout  # EPERM: no capabilities
    assert canary.read_text() == "keep me" and (ROOT / "pyproject.toml").is_file()
    assert [t for t in targets if t.exists()] == []
    if path == "fresh":
        assert (tmp_path / "ws" / "suid").stat().st_mode & 0o7777 == 0o755, "a set-id bit survived in the workdir"
    _assert_clean_and_alive(path, tmp_path, token)


@pytest.mark.parametrize("path", PATHS)
def test_a_loopback_server_cannot_be_reached(path: str, tmp_path: Path) -> None:
    _needs("netns")
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    code = f"""
        import socket
        for host in ("127.0.0.1", "localhost", "::1"):
            try:
                socket.create_connection((host, {port}), timeout=2).close()
                print("connected", host)
            except OSError as exc:
                print("refused", host, exc.errno)
    """
    try:
        res = _run(path, code, tmp_path)
        server.setblocking(False)
        with pytest.raises(BlockingIOError):
            server.accept()  # nothing ever reached the server
    finally:
        server.close()
    assert res.status == "ok" and "connected" not in res.stdout and res.stdout.count("refused") == 3
    _assert_clean_and_alive(path, tmp_path, uuid.uuid4().hex)


@pytest.mark.parametrize("path", PATHS)
def test_killing_the_parent_and_everything_fails(path: str, tmp_path: Path) -> None:
    _needs("pidns")
    before = sorted(w["pid"] for w in default_pool().workers())
    code = f"""
        import os, signal, subprocess
        for target in (os.getppid(), 1, -1, {os.getpid()}, {os.getppid()}):
            try:
                os.kill(target, signal.SIGKILL)
            except OSError as exc:
                print("no", target, exc.errno)
        print("survived", os.getppid(), flush=True)
        subprocess.run(["kill", "-9", "-1"])  # kills this job too (never its worker or anything outside)
        print("unreachable")
    """
    res = _run(path, code, tmp_path)
    assert "survived 1" in res.stdout and "unreachable" not in res.stdout
    assert (res.status, res.killed_by) == ("killed", "SIGKILL")
    if path == "pool":
        assert sorted(w["pid"] for w in default_pool().workers()) == before or not before
    _assert_clean_and_alive(path, tmp_path, uuid.uuid4().hex)


@pytest.mark.parametrize("path", PATHS)
def test_environment_secrets_cannot_be_read(path: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    secret = f"hunter2-{uuid.uuid4().hex}"
    monkeypatch.setenv("AUTOMIXER_TEST_SECRET", secret)
    code = """
        import glob, os
        print(dict(os.environ))
        for name in glob.glob("/proc/*/environ") + glob.glob("/proc/*/cmdline"):
            try:
                print(name, open(name, "rb").read())
            except OSError as exc:
                print(name, "denied", exc.errno)
    """
    if path == "pool":
        pool = WorkerPool(max_workers=1)  # started after the secret was set
        try:
            res = pool.run({"job.py": textwrap.dedent(code)}, ["python", "job.py"])
        finally:
            pool.shutdown()
    else:
        res = _run(path, code, tmp_path)
    assert res.status == "ok" and "/proc/1/" in res.stdout
    assert secret not in res.stdout and "AUTOMIXER_TEST_SECRET" not in res.stdout
    _assert_clean_and_alive(path, tmp_path, uuid.uuid4().hex)


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize(
    "code",
    [
        "import sys\nwhile True:\n    sys.stdout.write('x' * 65536)",
        "import os\nwhile True:\n    try:\n        os.write(2, b'y' * 65536)\n    except OSError:\n        pass",
    ],
)
def test_endless_output_is_cut_at_the_limit(path: str, code: str, tmp_path: Path) -> None:
    res = _run(path, code, tmp_path, timeout_s=20.0)
    assert res.status == "output_limit"
    assert res.wall_s < 15
    stream = res.stdout if "stdout" in code else res.stderr
    assert MAX_OUTPUT_BYTES <= len(stream) < MAX_OUTPUT_BYTES + 100 and "bytes truncated" in stream
    _assert_clean_and_alive(path, tmp_path, uuid.uuid4().hex)


@pytest.mark.parametrize("path", PATHS)
def test_ignoring_sigterm_does_not_help(path: str, tmp_path: Path) -> None:
    token = uuid.uuid4().hex
    code = """
        import signal, subprocess, sys, time
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        subprocess.Popen([sys.executable, "-c", "import signal, time\\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\\n"
                          "while True: time.sleep(0.05)", sys.argv[1]])
        while True:
            time.sleep(0.05)
    """
    res = _run(path, code, tmp_path, token, timeout_s=1.5)
    assert (res.status, res.killed_by) == ("timeout", "wall_timeout")
    _assert_clean_and_alive(path, tmp_path, token)


@pytest.mark.parametrize("path", PATHS)
def test_a_double_forked_daemon_is_killed_with_its_job(path: str, tmp_path: Path) -> None:
    if "pidns" not in LEVEL and "pids-cgroup" not in LEVEL:
        pytest.skip(f"neither pidns nor pids-cgroup: a daemon that leaves the session is not found ({LEVEL})")
    token = uuid.uuid4().hex
    late = tmp_path / "ws" / "late.txt"
    code = f"""
        import os, sys
        if os.fork() == 0:
            os.setsid()
            if os.fork() == 0:
                daemon = "import sys, time\\ntime.sleep(30)\\nopen(sys.argv[1], 'w').write('late')"
                os.execv(sys.executable, [sys.executable, "-c", daemon, {str(late)!r}, sys.argv[1]])
            os._exit(0)
        os.wait()
        print("daemon started")
    """
    res = _run(path, code, tmp_path, token)
    assert (res.status, res.stdout) == ("ok", "daemon started\n")
    _assert_clean_and_alive(path, tmp_path, token)  # the daemon is already gone, so it never writes late.txt
    assert not late.exists()


def test_workers_die_with_their_parent(tmp_path: Path) -> None:
    """SIGKILL the process that owns a warm pool: its workers and their jobs go too."""
    _needs("pidns")
    script = """
        import json, sys
        from synth.execute import Limits, execute
        from synth.pool import default_pool
        res = execute({"job.py": "import time\\ntime.sleep(60)"}, ["python", "job.py"], Limits(timeout_s=0.01))
        print(json.dumps(default_pool().workers()), flush=True)
        sys.stdin.read()
    """
    proc = subprocess.Popen([sys.executable, "-c", textwrap.dedent(script)], cwd=ROOT, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)  # fmt: skip
    import json
    import select

    (worker,) = json.loads(proc.stdout.readline())  # type: ignore[union-attr]
    init_pids = Path(worker["cgroup"], "cgroup.procs").read_text().split() if worker["cgroup"] else []
    fds = [os.pidfd_open(int(pid)) for pid in [worker["pid"], *init_pids]]
    proc.kill()
    proc.wait()
    for fd in fds:
        assert select.select([fd], [], [], 10)[0], "a worker outlived its parent"
        os.close(fd)


def test_a_worker_whose_command_pipe_closes_mid_job_ends_the_job_and_itself() -> None:
    """EOF on the command pipe (what a dead parent leaves) stops a running job and its worker."""
    import json
    import struct

    from synth.pool import WorkerProcess
    from synth.sandbox import base_env

    token = uuid.uuid4().hex
    worker = WorkerProcess()
    argv = ["sh", "-c", f"exec python3 -c 'import time; time.sleep(60)' {token}"]
    job = {"argv": argv, "files": {}, "env": base_env(), "timeout_s": 60, "cpu_s": 60, "memory_mb": 512,
           "max_file_mb": 1, "max_files": 64, "max_procs": 8, "output_bytes": 1000}  # fmt: skip
    data = json.dumps(job).encode()
    os.write(worker.proc.stdin.fileno(), struct.pack(">I", len(data)) + data)  # type: ignore[union-attr]
    assert worker._read(1, 0) is None  # no reply while the job runs
    worker.proc.stdin.close()  # type: ignore[union-attr]
    assert worker.proc.wait(timeout=10) == 0
    assert _processes_with(token) == []
    worker.close()
