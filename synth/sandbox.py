"""Run untrusted commands isolated and limited: the result type, the isolation level, the fresh-interpreter path.

Both paths go through `synth/worker.py` (see docs/sandbox.md): `run_sandboxed` starts a one-shot worker that execs
the command (a fresh interpreter for Python); `synth.execute.execute` uses the warm pool in `synth.pool`."""

from __future__ import annotations

import functools
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

MAX_OUTPUT_BYTES = 1 << 20
"""At most this much of stdout and of stderr is read back: head and tail when longer (`max_file_mb` caps writing)."""

SAFE_PATH = "/usr/local/bin:/usr/bin:/bin"


STATUSES = ("ok", "error", "timeout", "memory", "killed", "output_limit")
"""What `SandboxResult.status` can say (docs/sandbox.md)."""


@dataclass(frozen=True)
class SandboxResult:
    """What a sandboxed command did."""

    returncode: int
    """Exit code, or -N when signal N ended it."""
    stdout: str
    """At most MAX_OUTPUT_BYTES of it: head and tail around a truncation note when longer."""
    stderr: str
    timed_out: bool
    """The wall timeout ended it."""
    wall_s: float
    killed_by: str | None
    """`wall_timeout`, `output_limit`, `worker_lost`, or the signal that ended the process (e.g. SIGXCPU, SIGKILL);
    None on a normal exit."""
    isolation: str = "pgroup+rlimits"
    """What isolated the run, `+`-joined: pgroup, rlimits, pidns, netns, ipcns, mountns-ro, pids-cgroup, nocaps
    (see `isolation_level` and docs/sandbox.md)."""
    status: str = "ok"
    """ok: exit 0. error: non-zero exit (uncaught exception, failed assertion, sys.exit(n)). timeout: the wall
    timeout or the CPU-time limit. memory: MemoryError / ENOMEM under the address-space limit. killed: ended by a
    signal for another reason (a crash, killed itself, the worker was lost). output_limit: stdout or stderr
    reached the file-size limit (the run is stopped there)."""


@functools.cache
def isolation_level(network: bool = False) -> str:
    """The isolation a sandboxed run gets on this machine (what `SandboxResult.isolation` will say)."""
    from synth.pool import WorkerProcess

    worker = WorkerProcess(once=True, network=network)
    worker.close()
    return worker.isolation


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


def base_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The scrubbed environment without HOME/TMPDIR (the worker points those at the job's private dir)."""
    env = {
        "PATH": SAFE_PATH,
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "PYTHONHASHSEED": "0",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONIOENCODING": "utf-8",
        "PYTHONUTF8": "1",
    }
    env.update(extra or {})
    return env


def scrubbed_env(workdir: Path, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The only environment a sandboxed command sees: a fixed PATH, locale, hash seed and a private HOME."""
    return {**base_env(), "HOME": str(workdir), "TMPDIR": str(workdir), **(extra or {})}


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
    """Run `cmd` in `workdir` (a fresh temp dir when None) under limits, in a one-shot worker (a fresh interpreter).

    Same protections as the warm pool (`isolation_level(network)`): `workdir` is the only host dir it can write;
    everything it started is killed when it ends or times out. With `network` it keeps the host's network."""
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
    from synth.pool import CALL_GRACE_S, WorkerLost, WorkerProcess, result_from_reply

    request = {
        "argv": list(cmd), "files": {}, "env": scrubbed_env(workdir, env), "timeout_s": timeout_s,
        "cpu_s": cpu_s if cpu_s is not None else int(timeout_s) + 1, "memory_mb": memory_mb,
        "max_file_mb": max_file_mb, "max_files": max_files, "max_procs": max_procs, "output_bytes": MAX_OUTPUT_BYTES,
    }  # fmt: skip
    start = time.monotonic()
    worker = WorkerProcess(once=True, workdir=workdir, network=network, max_procs=max_procs)
    try:
        return result_from_reply(worker.call(request, timeout_s + CALL_GRACE_S))
    except WorkerLost as exc:
        wall = time.monotonic() - start
        return SandboxResult(-9, "", f"sandbox: {exc}", False, wall, "worker_lost", worker.isolation, "killed")
    finally:
        worker.close()
