"""Run an untrusted command in a subprocess with its own process group, resource limits and a clean env."""

from __future__ import annotations

import functools
import os
import resource
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

MAX_OUTPUT_BYTES = 1 << 20
"""At most this much of stdout and of stderr is read back (the file-size limit caps what is written)."""

SAFE_PATH = "/usr/local/bin:/usr/bin:/bin"


@dataclass(frozen=True)
class SandboxResult:
    """What a sandboxed command did."""

    returncode: int
    stdout: str
    stderr: str
    timed_out: bool
    wall_s: float
    killed_by: str | None
    """`wall_timeout`, or the signal that ended the process (e.g. SIGXCPU, SIGKILL); None on a normal exit."""
    isolation: str = "process-group+rlimits"
    """What isolated the run: always its own process group with resource limits, a scrubbed environment
    and a private working dir; `+netns` when it also ran in an empty network namespace (no network)."""


def isolation_level(network: bool = False) -> str:
    """The isolation a sandboxed run gets on this machine (what `SandboxResult.isolation` will say)."""
    return "process-group+rlimits" + ("+netns" if not network and netns_prefix() else "")


@functools.cache
def netns_prefix() -> tuple[str, ...]:
    """The command prefix that runs a child in its own empty network namespace, or () where not allowed."""
    exe = shutil.which("unshare")
    if exe is None:
        return ()
    try:
        ok = subprocess.run([exe, "--net", "true"], capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.SubprocessError):
        ok = False
    return (exe, "--net", "--") if ok else ()


def scrubbed_env(workdir: Path, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The only environment a sandboxed command sees: a fixed PATH, locale, hash seed and a private HOME."""
    env = {
        "PATH": SAFE_PATH,
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "PYTHONHASHSEED": "0",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONIOENCODING": "utf-8",
        "PYTHONUTF8": "1",
        "HOME": str(workdir),
        "TMPDIR": str(workdir),
    }
    env.update(extra or {})
    return env


def _user_tasks() -> int:
    """Processes and threads currently owned by this user (RLIMIT_NPROC counts them all)."""
    uid, n = os.getuid(), 0
    if uid == 0:
        return 0  # the limit does not bind root; skip the scan
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                if entry.stat().st_uid == uid:
                    n += len(os.listdir(f"/proc/{entry.name}/task"))
            except OSError:
                continue
    return n


def _limiter(cpu_s: int, memory_mb: int, max_file_mb: int, nproc: int, max_files: int):
    """A preexec function that applies the resource limits in the child before exec."""
    limits = [
        (resource.RLIMIT_CPU, cpu_s),
        (resource.RLIMIT_AS, memory_mb << 20),
        (resource.RLIMIT_FSIZE, max_file_mb << 20),
        (resource.RLIMIT_NPROC, nproc),
        (resource.RLIMIT_NOFILE, max_files),
        (resource.RLIMIT_CORE, 0),
    ]

    def apply() -> None:
        for kind, value in limits:
            resource.setrlimit(kind, (value, value))

    return apply


def _group_running(pgid: int) -> bool:
    """True if a live (not zombie) process of group `pgid` remains; False where /proc is unavailable."""
    if not os.path.isdir("/proc"):
        return False
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                with open(f"/proc/{entry.name}/stat", "rb") as f:
                    fields = f.read().rsplit(b")", 1)[1].split()
            except (OSError, IndexError):
                continue
            if int(fields[2]) == pgid and fields[0] not in (b"Z", b"X"):
                return True
    return False


def _kill_group(pgid: int, grace_s: float = 2.0) -> None:
    """SIGKILL every process of the group and wait until none is running (bounded by `grace_s`)."""
    deadline = time.monotonic() + grace_s
    while True:
        with suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGKILL)
        if not _group_running(pgid) or time.monotonic() > deadline:
            return
        time.sleep(0.005)


def _signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


def _read_capped(path: Path) -> str:
    with open(path, "rb") as f:
        return f.read(MAX_OUTPUT_BYTES).decode("utf-8", errors="replace")


@contextmanager
def private_dir(prefix: str = "sandbox-") -> Iterator[Path]:
    """A fresh private (0700) temp folder, removed afterwards."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def run_sandboxed(
    cmd: list[str],
    workdir: str | Path | None = None,
    *,
    timeout_s: float = 10.0,
    memory_mb: int = 1024,
    cpu_s: int | None = None,
    max_file_mb: int = 16,
    max_procs: int = 32,
    max_files: int = 256,
    env: Mapping[str, str] | None = None,
    network: bool = False,
) -> SandboxResult:
    """Run `cmd` in `workdir` (a fresh temp dir when None) under limits; kill its whole group on timeout.

    Without `network`, the command runs in an empty network namespace where the machine allows it
    (recorded in `SandboxResult.isolation`)."""
    if not cmd:
        raise ValueError("run_sandboxed: cmd is empty")
    if workdir is None:
        with private_dir() as tmp:
            return run_sandboxed(
                cmd, tmp, timeout_s=timeout_s, memory_mb=memory_mb, cpu_s=cpu_s, max_file_mb=max_file_mb,
                max_procs=max_procs, max_files=max_files, env=env, network=network,
            )  # fmt: skip
    workdir = Path(workdir).resolve()
    if not workdir.is_dir():
        raise FileNotFoundError(f"run_sandboxed: working directory {workdir} does not exist")
    cpu = cpu_s if cpu_s is not None else int(timeout_s) + 1
    preexec = _limiter(cpu, memory_mb, max_file_mb, _user_tasks() + max_procs, max_files)
    prefix = () if network else netns_prefix()
    isolation = isolation_level(network)
    with private_dir("sandbox-io-") as io_dir:
        out_path, err_path = io_dir / "stdout", io_dir / "stderr"
        with open(out_path, "wb") as out, open(err_path, "wb") as err:
            start = time.monotonic()
            proc = subprocess.Popen(
                [*prefix, *cmd], cwd=workdir, env=scrubbed_env(workdir, env), stdin=subprocess.DEVNULL, stdout=out,
                stderr=err, start_new_session=True, preexec_fn=preexec, close_fds=True,
            )  # fmt: skip
            timed_out = False
            try:
                proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                timed_out = True
            finally:
                with suppress(ProcessLookupError, PermissionError):
                    os.killpg(proc.pid, signal.SIGKILL)  # also ends grandchildren a normal exit left behind
                proc.wait()
                _kill_group(proc.pid)
            wall = time.monotonic() - start
        rc = proc.returncode
        killed_by = "wall_timeout" if timed_out else (_signal_name(-rc) if rc < 0 else None)
        out, err = _read_capped(out_path), _read_capped(err_path)
        return SandboxResult(rc, out, err, timed_out, wall, killed_by, isolation)
