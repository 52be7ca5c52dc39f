"""Warm sandbox workers: pre-started `synth/worker.py` processes, keyed by hash seed, shared by all threads."""

from __future__ import annotations

import atexit
import json
import os
import queue
import select
import signal
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from contextlib import suppress
from pathlib import Path

from synth.sandbox import MAX_OUTPUT_BYTES, SandboxResult, base_env

WORKER = Path(__file__).with_name("worker.py")
HELLO_TIMEOUT_S = 60.0
"""How long a worker may take to start and report its isolation level."""
CALL_GRACE_S = 15.0
"""How much longer than a job's own wall timeout the pool waits for a worker's reply before giving it up."""
MAX_JOBS_PER_WORKER = 5000
DEFAULT_MAX_PROCS = 64
"""Processes and threads a job may have at once in a warm worker (the pids cgroup limit)."""


class WorkerLost(RuntimeError):
    """The worker died or stopped answering."""


class WorkerProcess:
    """One started worker and its command pipes; not thread-safe (a pool hands it to one thread at a time)."""

    def __init__(
        self,
        *,
        hash_seed: int = 0,
        once: bool = False,
        workdir: str | Path | None = None,
        network: bool = False,
        max_procs: int = DEFAULT_MAX_PROCS,
        namespaces: bool = True,
        popen: Callable[..., subprocess.Popen] = subprocess.Popen,
    ) -> None:
        flags = ["-I", "-S"] if once else ["-s", "-P"]
        args = [sys.executable, *flags, str(WORKER), "--parent", str(os.getpid()), "--max-procs", str(max_procs)]
        args += ["--once"] * once + ["--network"] * network + ["--no-namespaces"] * (not namespaces)
        args += ["--workdir", str(workdir)] if workdir else []
        for prefix in sorted({sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix}):
            args += ["--ro", prefix]
        debug = os.environ.get("AUTOMIXER_SANDBOX_DEBUG")
        self.hash_seed, self.jobs, self.last_used = hash_seed, 0, time.monotonic()
        env = {**base_env({"PYTHONHASHSEED": str(hash_seed)}), "HOME": "/tmp", "TMPDIR": "/tmp"}
        self.proc = popen(
            args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=None if debug else subprocess.DEVNULL,
            env=env, cwd="/", close_fds=True, start_new_session=True, bufsize=0,
        )  # fmt: skip
        self._w, self._r = self.proc.stdin.fileno(), self.proc.stdout.fileno()  # type: ignore[union-attr]
        hello = self._recv(time.monotonic() + HELLO_TIMEOUT_S)
        if hello is None or "isolation" not in hello:
            self.close(0)
            raise WorkerLost("the sandbox worker did not start (set AUTOMIXER_SANDBOX_DEBUG=1 to see why)")
        self.isolation: str = hello["isolation"]
        self.cgroup: str | None = hello.get("cgroup")

    def call(self, request: dict, timeout_s: float) -> dict:
        """Send one job and wait for its reply; raise WorkerLost if the worker dies or exceeds `timeout_s`."""
        deadline = time.monotonic() + timeout_s
        data = json.dumps(request).encode()
        try:
            self._send(struct.pack(">I", len(data)) + data, deadline)
        except OSError as exc:
            raise WorkerLost(f"cannot send to the sandbox worker: {exc}") from exc
        reply = self._recv(deadline)
        if reply is None:
            raise WorkerLost("the sandbox worker died or stopped answering")
        self.jobs, self.last_used = self.jobs + 1, time.monotonic()
        return reply

    def _send(self, data: bytes, deadline: float) -> None:
        while data:
            if not select.select([], [self._w], [], max(0.0, deadline - time.monotonic()))[1]:
                raise OSError("timed out")
            data = data[os.write(self._w, data[: 1 << 16]) :]

    def _recv(self, deadline: float) -> dict | None:
        head = self._read(4, deadline)
        body = None if head is None else self._read(struct.unpack(">I", head)[0], deadline)
        return None if body is None else json.loads(body)

    def _read(self, n: int, deadline: float) -> bytes | None:
        buf = bytearray()
        while len(buf) < n:
            if not select.select([self._r], [], [], max(0.0, deadline - time.monotonic()))[0]:
                return None
            chunk = os.read(self._r, n - len(buf))
            if not chunk:
                return None
            buf += chunk
        return bytes(buf)

    def close(self, grace_s: float = 2.0) -> None:
        """End the worker (EOF first, SIGKILL after `grace_s`) and remove its cgroup."""
        for pipe in (self.proc.stdin, self.proc.stdout):
            with suppress(OSError):
                pipe.close()  # type: ignore[union-attr]
        try:
            self.proc.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            with suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        cgroup = getattr(self, "cgroup", None)
        if cgroup:
            with suppress(OSError):
                os.rmdir(cgroup)


class _Spawner:
    """Starts workers from one long-lived thread, so that their parent-death signal fires only when this
    process ends (Linux ties PR_SET_PDEATHSIG to the thread that forked the child, not to the process)."""

    def __init__(self) -> None:
        self._jobs: queue.SimpleQueue = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def popen(self, *args, **kwargs) -> subprocess.Popen:
        """subprocess.Popen(*args, **kwargs), run on the spawner thread."""
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._loop, name="sandbox-spawner", daemon=True)
                self._thread.start()
        fut: Future = Future()
        self._jobs.put((args, kwargs, fut))
        return fut.result()

    def _loop(self) -> None:
        while True:
            args, kwargs, fut = self._jobs.get()
            try:
                fut.set_result(subprocess.Popen(*args, **kwargs))
            except BaseException as exc:  # noqa: BLE001 - handed to the caller
                fut.set_exception(exc)


class WorkerPool:
    """Warm workers keyed by hash seed (PYTHONHASHSEED is fixed when an interpreter starts); thread-safe.

    A caller takes an idle worker of its seed or starts one (at most `max_workers` in all; an idle worker
    of another seed is closed to make room), runs one job on it and gives it back."""

    def __init__(
        self, max_workers: int | None = None, max_procs: int = DEFAULT_MAX_PROCS, namespaces: bool = True
    ) -> None:
        self.max_workers = max_workers or max(8, 4 * (os.cpu_count() or 1))  # 4 hash seeds x callers
        self.max_procs, self.namespaces = max_procs, namespaces
        self._cond = threading.Condition()
        self._idle: dict[int, list[WorkerProcess]] = {}
        self._total = 0
        self._live: set[WorkerProcess] = set()
        self._closed = False
        self._spawner = _Spawner()

    def run(
        self,
        files: dict[str, str],
        argv: list[str],
        *,
        timeout_s: float = 10.0,
        memory_mb: int = 1024,
        cpu_s: int | None = None,
        hash_seed: int = 0,
        max_file_mb: int = 16,
        max_files: int = 256,
        env: dict[str, str] | None = None,
    ) -> SandboxResult:
        """Run `argv` on a warm worker of `hash_seed`, in a fresh private dir holding `files`."""
        if not argv:
            raise ValueError("WorkerPool.run: argv is empty")
        request = {
            "argv": list(argv), "files": files, "env": base_env({"PYTHONHASHSEED": str(hash_seed), **(env or {})}),
            "timeout_s": timeout_s, "cpu_s": cpu_s if cpu_s is not None else int(timeout_s) + 1,
            "memory_mb": memory_mb, "max_file_mb": max_file_mb, "max_files": max_files,
            "max_procs": self.max_procs, "output_bytes": MAX_OUTPUT_BYTES,
        }  # fmt: skip
        worker = self._acquire(hash_seed)
        start = time.monotonic()
        try:
            reply = worker.call(request, timeout_s + CALL_GRACE_S)
        except WorkerLost as exc:
            self._release(worker, healthy=False)
            wall = time.monotonic() - start
            return SandboxResult(-9, "", f"sandbox: {exc}", False, wall, "worker_lost", worker.isolation, "killed")
        self._release(worker, healthy=worker.jobs < MAX_JOBS_PER_WORKER)
        return result_from_reply(reply)

    def warm(self, hash_seeds: tuple[int, ...] = (0,), per_seed: int = 1) -> None:
        """Start workers ahead of time (otherwise they start on first use)."""
        workers = [self._acquire(seed) for seed in hash_seeds for _ in range(per_seed)]
        for worker in workers:
            self._release(worker, healthy=True)

    def workers(self) -> list[dict]:
        """The idle workers: hash seed, isolation, cgroup, pid, jobs run."""
        with self._cond:
            return [
                {
                    "hash_seed": w.hash_seed,
                    "isolation": w.isolation,
                    "cgroup": w.cgroup,
                    "pid": w.proc.pid,
                    "jobs": w.jobs,
                }  # fmt: skip
                for ws in self._idle.values()
                for w in ws
            ]

    def _acquire(self, seed: int) -> WorkerProcess:
        worker, victim, dead = None, None, []
        with self._cond:
            while True:
                if self._closed:
                    raise RuntimeError("the sandbox pool is shut down")
                idle = self._idle.get(seed, [])
                while idle and worker is None:
                    candidate = idle.pop()
                    if candidate.proc.poll() is None:
                        worker = candidate
                    else:  # died while idle (killed from outside): start another
                        self._total -= 1
                        self._live.discard(candidate)
                        dead.append(candidate)
                if worker is not None:
                    break
                if self._total < self.max_workers:
                    self._total += 1
                    break
                others = [w for ws in self._idle.values() for w in ws]
                if others:  # its slot goes to the new worker
                    victim = min(others, key=lambda w: w.last_used)
                    self._idle[victim.hash_seed].remove(victim)
                    break
                self._cond.wait()
        for w in dead:
            w.close(0)
        if worker is not None:
            return worker
        if victim is not None:
            self._release(victim, healthy=False, count=False)
        try:
            worker = WorkerProcess(
                hash_seed=seed, max_procs=self.max_procs, namespaces=self.namespaces, popen=self._spawner.popen
            )
        except BaseException:
            with self._cond:
                self._total -= 1
                self._cond.notify_all()
            raise
        with self._cond:
            self._live.add(worker)
        return worker

    def _release(self, worker: WorkerProcess, healthy: bool, count: bool = True) -> None:
        with self._cond:
            keep = healthy and not self._closed
            if keep:
                self._idle.setdefault(worker.hash_seed, []).append(worker)
            else:
                self._total -= count
                self._live.discard(worker)
            self._cond.notify_all()
        if not keep:
            worker.close(0.5)

    def shutdown(self) -> None:
        """Close every idle worker; busy ones are closed when they come back."""
        with self._cond:
            self._closed = True
            workers = [w for ws in self._idle.values() for w in ws]
            self._idle.clear()
            self._total -= len(workers)
            self._live.difference_update(workers)
            self._cond.notify_all()
        for w in workers:
            with suppress(OSError):
                w.proc.stdin.close()  # type: ignore[union-attr]  # EOF: all end together, then reap
        for w in workers:
            w.close()


def result_from_reply(reply: dict) -> SandboxResult:
    """The SandboxResult a worker's reply describes."""
    return SandboxResult(
        int(reply["returncode"]), reply["stdout"], reply["stderr"], bool(reply["timed_out"]), float(reply["wall_s"]),
        reply["killed_by"], reply["isolation"], reply["status"],
    )  # fmt: skip


_POOL: WorkerPool | None = None
_POOL_LOCK = threading.Lock()
_HOOKS = False


def default_pool() -> WorkerPool:
    """The process-wide pool (started on first use, shut down at interpreter exit)."""
    global _POOL, _HOOKS
    with _POOL_LOCK:
        if _POOL is None:
            _POOL = WorkerPool()
            if not _HOOKS:
                atexit.register(shutdown_default_pool)
                os.register_at_fork(after_in_child=_forget_pool_in_child)
                _HOOKS = True
        return _POOL


def shutdown_default_pool() -> None:
    """Stop the process-wide pool's workers (a later default_pool() starts a new pool)."""
    global _POOL
    with _POOL_LOCK:
        pool, _POOL = _POOL, None
    if pool is not None:
        pool.shutdown()


def _forget_pool_in_child() -> None:
    """In a forked child: drop (without stopping) the parent's workers, closing our copies of their pipes."""
    global _POOL, _POOL_LOCK
    pool, _POOL, _POOL_LOCK = _POOL, None, threading.Lock()
    if pool is not None:
        for w in pool._live:
            for fd in (w._w, w._r):
                with suppress(OSError):
                    os.close(fd)
