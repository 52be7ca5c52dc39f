"""Sandbox worker (stdlib only, run as a script): runs untrusted jobs, each in a forked, limited child.

Started by `synth.pool.WorkerProcess`: warm (`python -s -P worker.py`, many jobs, Python jobs run in the forked child
without a new interpreter) or one-shot (`python -I -S worker.py --once --workdir DIR`, one job, always exec'd).
Where allowed it first enters new pid, network and IPC namespaces (and becomes their PID 1), a pids cgroup and a
private read-only minimal root with private tmpfs scratch dirs; each job child also drops every capability.
Protocol on stdin/stdout: 4-byte big-endian length + UTF-8 JSON. First message out:
{"hello": 1, "isolation": str, "cgroup": str | null}. Then one reply per request
{"argv", "files", "env", "timeout_s", "cpu_s", "memory_mb", "max_file_mb", "max_files", "max_procs", "output_bytes"}:
{"returncode", "stdout", "stderr", "timed_out", "wall_s", "killed_by", "status", "isolation"}.
EOF on stdin ends the worker and everything it started; so does the death of the process that started it.
"""

from __future__ import annotations

import ctypes
import gc
import json
import os
import resource
import select
import signal
import struct
import sys
import time
from contextlib import suppress

MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REMOUNT = 1, 2, 4, 8, 32
MS_BIND, MS_REC, MS_PRIVATE, MNT_DETACH = 4096, 16384, 1 << 18, 2
CLONE_NEWNS, CLONE_NEWIPC, CLONE_NEWPID, CLONE_NEWNET = 0x20000, 0x8000000, 0x20000000, 0x40000000
PIVOT_ROOT = {"x86_64": 155, "aarch64": 41, "riscv64": 41, "i686": 217, "ppc64le": 203, "s390x": 217}
PR_SET_PDEATHSIG, PR_CAPBSET_DROP, PR_SET_NO_NEW_PRIVS, PR_CAP_AMBIENT = 1, 24, 38, 47
SCRATCH = {"/tmp": 256, "/var/tmp": 64, "/run": 16, "/dev/shm": 64}
"""Private tmpfs dirs (size in MB) that jobs may write; fresh for every job of a warm worker."""
STASH = "/.sandbox-prefixes"
"""Where the private root keeps interpreter prefixes that lie under a scratch dir, to bind them back after resets."""
ROOT_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc")
DEVICES = ("null", "zero", "full", "random", "urandom", "tty")
POOL_WORKDIR = "/tmp/ws"
TICK_S = 0.05
PY_FLAGS = set("sPB")
PRELOAD = "ast collections contextlib dataclasses doctest functools importlib.util inspect io itertools json math re"
PRELOAD += " runpy signal string textwrap threading traceback types typing unittest random select shutil"

_libc = ctypes.CDLL(None, use_errno=True)


def _check(rc: int, what: str) -> None:
    if rc != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def _mount(src: str | None, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    enc = lambda s: None if s is None else s.encode()  # noqa: E731
    _check(_libc.mount(enc(src), enc(target), enc(fstype), ctypes.c_ulong(flags), enc(data)), f"mount {target}")


def _tmpfs(target: str, mb: int, mode: str = "1777") -> None:
    _mount("sandbox", target, "tmpfs", MS_NOSUID | MS_NODEV, f"mode={mode},size={mb}m,nr_inodes={mb * 256}")


def _send(fd: int, obj: dict) -> None:
    data = json.dumps(obj).encode()
    data = struct.pack(">I", len(data)) + data
    while data:
        data = data[os.write(fd, data) :]


def _recv(fd: int) -> dict | None:
    head = _read_exact(fd, 4)
    return None if head is None else json.loads(_read_exact(fd, struct.unpack(">I", head)[0]) or b"{}")


def _read_exact(fd: int, n: int) -> bytes | None:
    buf = b""
    while len(buf) < n:
        chunk = os.read(fd, n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return buf


class Ctx:
    """What the worker set up: its options, the isolation reached, where jobs run."""

    def __init__(self, argv: list[str]) -> None:
        opts = {"--once": False, "--network": False, "--no-namespaces": False}
        self.ro: list[str] = []
        self.workdir = self.parent = self.cgroup = None
        self.max_procs, i = 64, 0
        while i < len(argv):
            key = argv[i]
            if key in opts:
                opts[key], i = True, i + 1
                continue
            val, i = argv[i + 1], i + 2
            if key == "--ro":
                self.ro.append(val)
            elif key == "--workdir":
                self.workdir = val
            elif key == "--parent":
                self.parent = int(val)
            elif key == "--max-procs":
                self.max_procs = int(val)
        self.once, self.network, self.namespaces = opts["--once"], opts["--network"], not opts["--no-namespaces"]
        self.levels: list[str] = []
        self.pidns = self.rootfs = False
        self.hidden: list[str] = []


# ---------------------------------------------------------------- setup: namespaces, cgroup, minimal root


def _pids_cgroup(ctx: Ctx) -> str | None:
    """Create a pids cgroup for this worker (limit `max_procs` + the worker), or None where not possible."""
    try:
        with open("/proc/self/mountinfo") as f:
            mounts = [line.split() for line in f]
        base = next(m[4] for m in mounts if m[-3] == "cgroup" and "pids" in m[-1].split(","))
        with open("/proc/self/cgroup") as f:
            rel = next(line.split(":", 2)[2].strip() for line in f if "pids" in line.split(":")[1].split(","))
        parent = os.path.join(base, rel.lstrip("/"), "automixer-sandbox")
        os.makedirs(parent, exist_ok=True)
        for name in os.listdir(parent):  # leftovers of workers whose outer process is gone
            pid = name[1:].split("-")[0]
            if pid.isdigit() and not os.path.exists(f"/proc/{pid}"):
                with suppress(OSError):
                    os.rmdir(os.path.join(parent, name))
        path = os.path.join(parent, f"w{os.getpid()}-{time.monotonic_ns()}")
        os.mkdir(path)
        with open(os.path.join(path, "pids.max"), "w") as f:
            f.write(str(ctx.max_procs + 1))
        return path
    except (OSError, StopIteration, IndexError):
        return None


def _enter_namespaces(ctx: Ctx) -> None:
    """unshare pid/net/ipc/mount namespaces and fork PID 1 there; this outer process waits and cleans up."""
    flags = CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC | (0 if ctx.network else CLONE_NEWNET)
    if _libc.unshare(flags) != 0:
        return
    cgroup = _pids_cgroup(ctx)
    pid = os.fork()  # PID 1 of the new pid namespace
    if pid == 0:
        _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        ctx.pidns = True
        ctx.levels += ["pidns"] + ([] if ctx.network else ["netns"]) + ["ipcns"]
        if cgroup:
            try:
                with open(os.path.join(cgroup, "cgroup.procs"), "w") as f:
                    f.write("0")
                ctx.cgroup = cgroup
            except OSError:
                pass
        return
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1):
        os.dup2(devnull, fd)
    os.closerange(3, resource.getrlimit(resource.RLIMIT_NOFILE)[0])  # the command pipes stay with PID 1 only
    _, status = os.waitpid(pid, 0)
    os._exit(os.waitstatus_to_exitcode(status) & 0xFF)  # the starter removes the cgroup


def _bind_into(root: str, path: str) -> None:
    """Make `path` appear at the same place under `root` (a symlink is copied, a dir or file bind-mounted)."""
    dest = root + path
    if not os.path.lexists(path) or (os.path.lexists(dest) and not os.path.isdir(dest)):
        return
    os.makedirs(os.path.dirname(dest), exist_ok=True)
    if os.path.islink(path):
        if not os.path.lexists(dest):
            os.symlink(os.readlink(path), dest)
        return
    if os.path.isdir(path):
        os.makedirs(dest, exist_ok=True)
    else:
        open(dest, "a").close()
    _mount(path, dest, None, MS_BIND | MS_REC)


def _ro_paths(ctx: Ctx) -> list[str]:
    """System dirs, the interpreter prefixes and `--ro` paths, parents before children, duplicates dropped."""
    prefixes = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix, *ctx.ro}
    out: list[str] = []
    for p in sorted({*ROOT_DIRS, *(os.path.abspath(x) for x in prefixes)}, key=lambda s: (s.count("/"), s)):
        if not any(p == q or p.startswith(q + "/") for q in out if not os.path.islink(q)):
            out.append(p)
    return out


def _make_dev(dev: str) -> None:
    _tmpfs(dev, 1, "0755")
    for name in DEVICES:
        if os.path.exists("/dev/" + name):
            open(f"{dev}/{name}", "w").close()
            _mount("/dev/" + name, f"{dev}/{name}", None, MS_BIND)
    for name, target in (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"), ("stdout", "/proc/self/fd/1")):
        os.symlink(target, f"{dev}/{name}")
    os.symlink("/proc/self/fd/2", f"{dev}/stderr")
    os.mkdir(f"{dev}/shm")


def _remount_ro(root: str, keep_rw: set[str]) -> None:
    """Every mount in the tree on top of `root`, except `keep_rw`, becomes read-only (nosuid; nodev outside /dev)."""
    with open("/proc/self/mountinfo") as f:
        rows = [(r[0], r[1], r[4].encode().decode("unicode_escape")) for r in (line.split() for line in f)]
    tree, grown = {[mid for mid, _, mp in rows if mp == root][-1]}, True  # the last mount on `root` is on top
    while grown:
        before = len(tree)
        tree |= {mid for mid, parent, _ in rows if parent in tree}
        grown = len(tree) > before
    for mid, _, mp in rows:
        if mid in tree and mp != root and mp not in keep_rw:
            nodev = 0 if mp.startswith(root + "/dev") else MS_NODEV
            _mount(None, mp, None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | nodev)
    _mount(None, root, None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV)


def _under_scratch(path: str) -> bool:
    return any(path == d or path.startswith(d + "/") for d in SCRATCH)


def _bind_hidden(ctx: Ctx, root: str = "") -> None:
    """Bind the stashed prefixes that lie under a scratch dir back at their own paths, read-only."""
    for i, path in enumerate(ctx.hidden):
        dest = root + path
        os.makedirs(dest, exist_ok=True)
        _mount(f"{root}{STASH}/{i}", dest, None, MS_BIND | MS_REC)
        _mount(None, dest, None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV)


def _minimal_root(ctx: Ctx) -> None:
    """Pivot into a read-only root holding only the system dirs, the interpreter, a fresh /proc and a tiny /dev,
    with private tmpfs scratch dirs (and, one-shot, the caller's workdir bound read-write at its own path).
    An interpreter prefix under a scratch dir (a venv in /tmp) is stashed at STASH and bound back into each
    fresh scratch tmpfs."""
    paths = _ro_paths(ctx)
    ctx.hidden = [p for p in paths if _under_scratch(p)]
    bad = [p for p in ctx.hidden if not os.path.isdir(p) or os.path.islink(p)]
    if bad:
        raise OSError(f"{bad} lie under the scratch dirs {sorted(SCRATCH)} and are not plain dirs")
    hfds = [os.open(p, os.O_PATH | os.O_DIRECTORY) for p in ctx.hidden]  # before the root's tmpfs covers /tmp
    wfd = os.open(ctx.workdir, os.O_PATH | os.O_DIRECTORY) if ctx.workdir else None
    _mount(None, "/", None, MS_REC | MS_PRIVATE)
    root = "/tmp"  # any existing dir will do as the mount point; the old root is detached below
    _tmpfs(root, 1, "0755")
    for path in paths:
        if path not in ctx.hidden:
            _bind_into(root, path)
    for i, fd in enumerate(hfds):
        os.makedirs(f"{root}{STASH}/{i}")
        _mount(f"/proc/self/fd/{fd}", f"{root}{STASH}/{i}", None, MS_BIND | MS_REC)
        os.close(fd)
    for secret in ("/etc/shadow", "/etc/gshadow"):
        if os.path.isfile(root + secret):
            _mount("/dev/null", root + secret, None, MS_BIND)
    os.mkdir(root + "/proc")
    _mount("proc", root + "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    os.mkdir(root + "/dev")
    _make_dev(root + "/dev")
    for d, mb in SCRATCH.items():
        os.makedirs(root + d, exist_ok=True)
        _tmpfs(root + d, mb)
    _bind_hidden(ctx, root)
    keep_rw = {root + d for d in SCRATCH}
    if wfd is not None:
        os.makedirs(root + ctx.workdir, exist_ok=True)
        _mount(f"/proc/self/fd/{wfd}", root + ctx.workdir, None, MS_BIND)
        os.close(wfd)
        keep_rw.add(root + ctx.workdir)
    _remount_ro(root, keep_rw)
    os.chdir(root)
    number = PIVOT_ROOT.get(os.uname().machine)
    if number is None:
        raise OSError(f"pivot_root: unknown syscall number on {os.uname().machine}")
    _check(_libc.syscall(number, b".", b"."), "pivot_root")
    _check(_libc.umount2(b".", MNT_DETACH), "umount old root")
    os.chdir("/")


def setup(ctx: Ctx) -> None:
    """Enter what isolation the machine allows; record it in `ctx.levels`."""
    _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if ctx.parent is not None and os.getppid() != ctx.parent:
        os._exit(0)  # the starter died before the death signal was armed
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_DFL if os.getpid() == 1 else signal.SIG_IGN)
    if ctx.namespaces:
        _enter_namespaces(ctx)
    if ctx.pidns:
        try:
            _minimal_root(ctx)
            ctx.rootfs = True
        except OSError as exc:
            print(f"sandbox worker: no private root ({exc})", file=sys.stderr)
            with suppress(OSError):
                _libc.umount2(b"/tmp", MNT_DETACH)
    if ctx.cgroup is None and not ctx.pidns:
        ctx.cgroup = _pids_cgroup(ctx)
        try:
            with open(os.path.join(ctx.cgroup, "cgroup.procs"), "w") as f:  # type: ignore[arg-type]
                f.write("0")
        except (OSError, TypeError):
            ctx.cgroup = None
    ctx.levels = ["pgroup", "rlimits", *ctx.levels, *(["mountns-ro"] if ctx.rootfs else [])]
    ctx.levels += (["pids-cgroup"] if ctx.cgroup else []) + ["nocaps"]


# ---------------------------------------------------------------- one job


def _last_cap() -> int:
    try:
        with open("/proc/sys/kernel/cap_last_cap") as f:
            return int(f.read())
    except OSError:
        return 63


LAST_CAP = _last_cap()


def _drop_caps() -> None:
    """Empty the bounding, ambient, effective, permitted and inheritable capability sets (no way back)."""
    _libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
    _libc.prctl(PR_CAP_AMBIENT, 4, 0, 0, 0)
    for cap in range(LAST_CAP + 1):
        _libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0)
    header = (ctypes.c_uint32 * 2)(0x20080522, 0)
    _check(_libc.capset(header, (ctypes.c_uint32 * 6)()), "capset")


def _user_tasks() -> int:
    """Processes and threads of this (non-root) user: RLIMIT_NPROC counts them all."""
    uid, n = os.getuid(), 0
    if uid == 0:
        return 0
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            with suppress(OSError):
                if entry.stat().st_uid == uid:
                    n += len(os.listdir(f"/proc/{entry.name}/task"))
    return n


def _limits(job: dict) -> None:
    cpu = int(job["cpu_s"])
    for kind, soft, hard in (
        (resource.RLIMIT_CPU, cpu, cpu + 1),
        (resource.RLIMIT_AS, job["memory_mb"] << 20, job["memory_mb"] << 20),
        (resource.RLIMIT_FSIZE, job["max_file_mb"] << 20, job["max_file_mb"] << 20),
        (resource.RLIMIT_NPROC, _user_tasks() + job["max_procs"], _user_tasks() + job["max_procs"]),
        (resource.RLIMIT_NOFILE, job["max_files"], job["max_files"]),
        (resource.RLIMIT_CORE, 0, 0),
    ):
        resource.setrlimit(kind, (soft, hard))


def _parse_python(args: list[str]) -> tuple[str, str, list[str]] | None:
    """(kind, target, sys.argv) for `python [-s -P -B] (SCRIPT | -c CODE | -m MODULE) ARGS`; None otherwise."""
    i = 0
    while i < len(args) and args[i].startswith("-") and args[i] not in ("-c", "-m"):
        if len(args[i]) < 2 or not set(args[i][1:]) <= PY_FLAGS:
            return None
        i += 1
    if i >= len(args) or (args[i] in ("-c", "-m") and i + 1 >= len(args)):
        return None
    if args[i] == "-c":
        return "code", args[i + 1], ["-c", *args[i + 2 :]]
    if args[i] == "-m":
        return "module", args[i + 1], [args[i + 1], *args[i + 2 :]]
    return "script", args[i], args[i:]


def _run_in_process(kind: str, target: str, argv: list[str]) -> int:
    """Run Python code as `python` would run it as __main__; return the exit status."""
    import atexit
    import builtins
    import importlib.machinery
    import runpy
    import threading
    import types

    sys.argv = argv
    sys.path.insert(
        0, os.path.dirname(os.path.abspath(target)) if kind == "script" else "" if kind == "code" else os.getcwd()
    )
    try:
        if kind == "module":
            runpy.run_module(target, run_name="__main__", alter_sys=True)
        else:
            main = types.ModuleType("__main__")
            main.__builtins__ = builtins  # type: ignore[attr-defined]
            name = "<string>"
            if kind == "script":
                name = os.path.abspath(target)
                try:
                    with open(name, "rb") as f:
                        target = f.read()  # type: ignore[assignment]
                except OSError as exc:
                    print(f"python: can't open file {name!r}: [Errno {exc.errno}] {exc.strerror}", file=sys.stderr)
                    return 2
                main.__file__, main.__cached__ = name, None  # type: ignore[attr-defined]
                main.__loader__ = importlib.machinery.SourceFileLoader("__main__", name)
            sys.modules["__main__"] = main
            code_obj = _TRUSTED.get(target) if isinstance(target, bytes) else None
            exec(code_obj or compile(target, name, "exec"), main.__dict__)
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 0 if exc.code is None else 1
        if not isinstance(exc.code, int | None):
            print(exc.code, file=sys.stderr)
    except BaseException as exc:  # noqa: BLE001 - like the interpreter: print the traceback, exit 1
        tb = exc.__traceback__.tb_next if kind != "module" and exc.__traceback__ else exc.__traceback__
        sys.excepthook(type(exc), exc.with_traceback(tb), tb)
        code = 1
    with suppress(OSError):
        threading._shutdown()  # type: ignore[attr-defined]
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            code = 120
    return code & 0xFF


def _child(job: dict, ctx: Ctx, out: int, err: int, workdir: str) -> None:
    """The forked job: new session, limits, no capabilities, scrubbed env; then run the command. Never returns."""
    code = 126
    try:
        os.setsid()
        null = os.open(os.devnull, os.O_RDONLY)
        for src, dst in ((null, 0), (out, 1), (err, 2)):
            os.dup2(src, dst)
        os.closerange(3, resource.getrlimit(resource.RLIMIT_NOFILE)[0])
        _limits(job)
        _drop_caps()
        os.chdir(workdir)
        os.environ.clear()
        os.environ.update({"HOME": workdir, "TMPDIR": workdir, **job["env"]})
        if "tempfile" in sys.modules:
            sys.modules["tempfile"].tempdir = None  # re-read TMPDIR
        for sig in (signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        argv = job["argv"]
        parsed = _parse_python(argv[1:]) if argv[:1] == ["python"] and not ctx.once else None
        if parsed is not None:
            code = _run_in_process(*parsed)
        else:
            cmd = [sys.executable, *argv[1:]] if argv[:1] == ["python"] else argv
            for sig in (signal.SIGINT, signal.SIGPIPE, signal.SIGXFSZ):
                signal.signal(sig, signal.SIG_DFL)
            try:
                os.execvpe(cmd[0], cmd, os.environ)
            except OSError as exc:
                print(f"sandbox: cannot run {cmd[0]!r}: {exc}", file=sys.stderr)
                code = 127
    except BaseException as exc:  # noqa: BLE001 - the child must never return into the worker loop
        with suppress(OSError):
            os.write(2, f"sandbox: job setup failed: {exc!r}\n".encode())
    os._exit(code)


def _prepare_workdir(job: dict, ctx: Ctx) -> str:
    """The job's working dir with its files written (refusing paths that escape it)."""
    if ctx.workdir:
        root = ctx.workdir
    elif ctx.rootfs:
        root = POOL_WORKDIR
        os.mkdir(root, 0o700)
    else:
        import tempfile

        root = tempfile.mkdtemp(prefix="sandbox-ws-")
    for name, text in job.get("files", {}).items():
        path = os.path.realpath(os.path.join(root, name))
        if not path.startswith(os.path.realpath(root) + os.sep):
            raise ValueError(f"workspace file {name!r} escapes the workspace")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
    return root


def _wait(pid: int, job: dict, out: int, err: int, start: float, cmd_fd: int) -> tuple[str | None, int, float]:
    """Wait for the child until it exits, the wall timeout, the output cap or the starter's death; kill if needed.

    Returns (why it was killed or None, wait status, CPU seconds used)."""
    deadline, cap = start + float(job["timeout_s"]), job["max_file_mb"] << 20
    pidfd = os.pidfd_open(pid)
    reason = None
    try:
        while reason is None:
            left = deadline - time.monotonic()
            if left <= 0:
                reason = "wall_timeout"
                break
            ready = select.select([pidfd, cmd_fd], [], [], min(left, TICK_S))[0]
            if pidfd in ready:
                break
            if cmd_fd in ready:
                reason = "starter_gone"
            elif max(os.fstat(out).st_size, os.fstat(err).st_size) >= cap:
                reason = "output_limit"
    finally:
        os.close(pidfd)
    if reason is not None:
        for kill in (os.killpg, os.kill):
            with suppress(OSError):
                kill(pid, signal.SIGKILL)
    _, status, usage = os.wait4(pid, 0)
    return reason, status, usage.ru_utime + usage.ru_stime


def _kill_rest(pid: int, ctx: Ctx) -> None:
    """SIGKILL whatever the job left running (daemons included) and reap it."""
    with suppress(OSError):
        os.killpg(pid, signal.SIGKILL)
    deadline = time.monotonic() + 5.0
    while time.monotonic() < deadline:
        if os.getpid() == 1:
            with suppress(OSError):
                os.kill(-1, signal.SIGKILL)  # PID 1 of its own namespace: everything but itself
        elif ctx.cgroup:
            with suppress(OSError), open(os.path.join(ctx.cgroup, "cgroup.procs")) as f:
                for other in f.read().split():
                    if int(other) != os.getpid():
                        with suppress(OSError):
                            os.kill(int(other), signal.SIGKILL)
        try:
            while os.waitpid(-1, os.WNOHANG)[0] > 0:
                pass
        except ChildProcessError:
            if os.getpid() == 1 or not ctx.cgroup or _cgroup_empty(ctx.cgroup):
                return
        time.sleep(0.001)


def _cgroup_empty(path: str) -> bool:
    """True if only this process is left in the cgroup (or it cannot be read)."""
    try:
        with open(os.path.join(path, "cgroup.procs")) as f:
            return f.read().split() == [str(os.getpid())]
    except OSError:
        return True


def _read_capped(fd: int, limit: int) -> tuple[str, int]:
    """(text, size): the whole stream, or its head and tail around a truncation note when over `limit`."""
    size = os.fstat(fd).st_size
    if size <= limit:
        data = os.pread(fd, size, 0)
    else:
        half = limit // 2
        note = f"\n...[{size - 2 * half} bytes truncated]...\n".encode()
        data = os.pread(fd, half, 0) + note + os.pread(fd, half, size - half)
    return data.decode("utf-8", errors="replace"), size


def _status(reason: str | None, status: int, cpu_s: float, job: dict, sizes: tuple[int, int], stderr: str) -> str:
    """ok | error | timeout | memory | killed | output_limit (see synth.sandbox.SandboxResult.status)."""
    if reason == "wall_timeout":
        return "timeout"
    if reason == "output_limit" or max(sizes) >= job["max_file_mb"] << 20:
        return "output_limit"
    tail = stderr.rstrip().splitlines()[-4:]
    out_of_memory = any(line.startswith("MemoryError") or "Cannot allocate memory" in line for line in tail)
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        if sig == signal.SIGXCPU or (sig == signal.SIGKILL and cpu_s >= int(job["cpu_s"]) - 0.05):
            return "timeout"
        return "memory" if out_of_memory else "killed"
    if os.WEXITSTATUS(status) == 0:
        return "ok"
    return "memory" if out_of_memory else "error"


def _reset_scratch(ctx: Ctx, workdir: str) -> None:
    """Give the next job fresh scratch dirs: new tmpfs mounts, or an emptied temp dir; no SysV IPC left."""
    if ctx.rootfs and not ctx.once:
        for d, mb in SCRATCH.items():
            _check(_libc.umount2(d.encode(), MNT_DETACH), f"umount {d}")
            _tmpfs(d, mb)
        _bind_hidden(ctx)
    elif not ctx.workdir:
        import shutil

        shutil.rmtree(workdir, ignore_errors=True)
    else:  # the caller's own dir: a root job must not leave set-user/group-id programs there
        for folder, _, names in os.walk(workdir):
            for name in names:
                with suppress(OSError):
                    st = os.lstat(path := os.path.join(folder, name))
                    if st.st_mode & 0o6000 and not os.path.islink(path):
                        os.chmod(path, st.st_mode & 0o1777)
    if ctx.pidns:  # private IPC namespace: drop what the job created
        for kind, ctl in (("shm", _libc.shmctl), ("sem", _libc.semctl), ("msg", _libc.msgctl)):
            with suppress(OSError), open(f"/proc/sysvipc/{kind}") as f:
                for line in f.readlines()[1:]:
                    ctl(int(line.split()[1]), 0, None)  # IPC_RMID


def run_job(job: dict, ctx: Ctx, cmd_fd: int) -> dict:
    """Run one job in a forked child under its limits; clean up after it; return the reply."""
    isolation = "+".join(ctx.levels)
    try:
        workdir = _prepare_workdir(job, ctx)
    except (OSError, ValueError) as exc:
        return {"returncode": 126, "stdout": "", "stderr": f"sandbox: {exc}", "timed_out": False, "wall_s": 0.0,
                "killed_by": None, "status": "error", "isolation": isolation}  # fmt: skip
    out, err = os.memfd_create("stdout"), os.memfd_create("stderr")
    sys.stdout.flush()
    sys.stderr.flush()
    start = time.monotonic()
    try:
        pid = os.fork()
    except OSError as exc:
        for fd in (out, err):
            os.close(fd)
        _reset_scratch(ctx, workdir)
        return {"returncode": 126, "stdout": "", "stderr": f"sandbox: fork failed: {exc}", "timed_out": False,
                "wall_s": 0.0, "killed_by": None, "status": "error", "isolation": isolation}  # fmt: skip
    if pid == 0:
        _child(job, ctx, out, err, workdir)
    reason, status, cpu_s = _wait(pid, job, out, err, start, cmd_fd)
    _kill_rest(pid, ctx)
    wall = time.monotonic() - start
    (stdout, n_out), (stderr, n_err) = (_read_capped(fd, int(job["output_bytes"])) for fd in (out, err))
    os.close(out)
    os.close(err)
    _reset_scratch(ctx, workdir)
    code = os.waitstatus_to_exitcode(status)
    killed_by = reason if reason in ("wall_timeout", "output_limit") else None
    if killed_by is None and code < 0:
        killed_by = signal.Signals(-code).name if -code in signal.valid_signals() else f"signal {-code}"
    state = _status(reason, status, cpu_s, job, (n_out, n_err), stderr)
    return {"returncode": code, "stdout": stdout, "stderr": stderr, "timed_out": reason == "wall_timeout",
            "wall_s": wall, "killed_by": killed_by, "status": state, "isolation": isolation,
            "starter_gone": reason == "starter_gone"}  # fmt: skip


TRUSTED_SCRIPTS = ("test_runner.py",)
"""Our own scripts beside this file, compiled once at start: a job whose script has exactly these bytes skips the
compile (about 10 ms per run). Only their exact bytes hit the cache, so job code is never compiled outside a job."""
_TRUSTED: dict[bytes, object] = {}


def _precompile() -> None:
    here = os.path.dirname(os.path.abspath(__file__))
    for name in TRUSTED_SCRIPTS:
        with suppress(OSError, SyntaxError, ValueError):
            with open(os.path.join(here, name), "rb") as f:
                text = f.read()
            _TRUSTED[text] = compile(text, name, "exec")


def main(argv: list[str]) -> None:
    """Set up, say hello, then answer requests until EOF (one request with --once)."""
    cmd_fd, reply_fd = os.dup(0), os.dup(1)
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1):
        os.dup2(null, fd)
    os.close(null)
    ctx = Ctx(argv)
    if not ctx.once:
        _precompile()  # before setup: this folder is not visible inside the sandbox's root
    setup(ctx)
    if not ctx.once:
        import importlib

        for name in PRELOAD.split():
            importlib.import_module(name)
        gc.collect()
        gc.freeze()  # forked jobs then do not touch (and copy) the worker's objects when they collect
    _send(reply_fd, {"hello": 1, "isolation": "+".join(ctx.levels), "cgroup": ctx.cgroup})
    while (job := _recv(cmd_fd)) is not None:
        reply = run_job(job, ctx, cmd_fd)
        if reply.pop("starter_gone"):
            break
        _send(reply_fd, reply)
        if ctx.once:
            break
    sys.stderr.flush()
    os._exit(0)  # no interpreter teardown; the starter removes the cgroup


if __name__ == "__main__":
    main(sys.argv[1:])
