"""POSIX process control: own session per child, group signals, parent-death signal, fd pipes."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import errno
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import anyio
import psutil

from orchestrator.errors import SpawnError
from orchestrator.platform.base import Child, LeftoverRecord
from orchestrator.platform.common import EnvSelector, kill_and_wait, kill_marked, marked_processes
from orchestrator.platform.pipes import enlarge_pipe
from orchestrator.platform.procname import process_name

if sys.platform == "win32":  # for mypy --platform win32 too: nothing below exists there
    raise ImportError("orchestrator.platform.posix is not for Windows")

__all__ = ["PipeSource", "PosixChild", "PosixPlatform"]

_PR_SET_PDEATHSIG = 1
_PR_SET_CHILD_SUBREAPER = 36  # linux/prctl.h, Linux 3.4+
_RESET_SIGNALS = ("SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT", "SIGPIPE", "SIGUSR1", "SIGUSR2")


def _libc_function(name: str) -> Callable[..., int] | None:
    """A function of the C library this process runs on, or None where it has none by that name."""
    try:
        fn: Callable[..., int] = getattr(ctypes.CDLL(None, use_errno=True), name)
    except (OSError, AttributeError):  # pragma: no cover - exotic libc
        return None
    return fn


def _load_prctl() -> Callable[..., int] | None:
    return _libc_function("prctl") if sys.platform.startswith("linux") else None


def _load_malloc_trim() -> Callable[..., int] | None:
    """glibc's malloc_trim, or None (musl, macOS: nothing to call)."""
    return _libc_function("malloc_trim")


class PipeSource:
    """The read end of a pipe, read with large non-blocking reads on the event loop (an FdSource: the
    pump watches `fileno()` and calls `readinto` with its reused buffer; `read` for other callers)."""

    def __init__(self, fd: int) -> None:
        os.set_blocking(fd, False)
        self._fd: int | None = fd

    def fileno(self) -> int:
        if self._fd is None:
            raise ValueError("the pipe is closed")
        return self._fd

    def readinto(self, buf: memoryview, /) -> int | None:
        if self._fd is None:
            return 0
        try:
            return os.readv(self._fd, (buf,))
        except BlockingIOError:
            return None

    async def read(self, n: int = 1 << 20, /) -> bytes:
        while self._fd is not None:
            try:
                data = os.read(self._fd, n)
            except BlockingIOError:
                await anyio.wait_readable(self._fd)
                continue
            if not data:
                self.close()
            return data
        return b""

    def close(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)


class _Exit(Protocol):
    """How a child's exit reaches us: asyncio's Process, or a PidfdExit."""

    @property
    def pid(self) -> int: ...

    async def wait(self) -> int: ...


class PidfdExit:
    """A child reaped on the event loop when its pidfd turns readable (Linux 5.3+).

    asyncio's own way on Python 3.11 (ThreadedChildWatcher) starts a thread per child, which blocks
    in waitpid() and hands the exit to the loop; `Thread.start()` waits until that thread runs,
    inside the spawn. See PosixPlatform.spawn for what it cost."""

    def __init__(self, popen: subprocess.Popen[bytes], pidfd: int) -> None:
        self.pid = popen.pid
        self._popen = popen
        self._pidfd: int | None = pidfd
        self._done = asyncio.Event()
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(pidfd, self._reap)

    def _reap(self) -> None:
        if self._pidfd is not None:
            self._loop.remove_reader(self._pidfd)
            os.close(self._pidfd)
            self._pidfd = None
        self._popen.wait()  # readable: the child has exited, so this only collects its status
        self._done.set()

    async def wait(self) -> int:
        await self._done.wait()
        rc = self._popen.returncode
        return rc if rc is not None else 255


class PosixChild:
    def __init__(self, proc: _Exit, stdout: PipeSource, stderr: PipeSource,
                 on_exit: Callable[[int], None] = lambda pid: None) -> None:
        self.pid = proc.pid
        self._proc = proc
        self._on_exit = on_exit
        self.stdout = stdout
        self.stderr = stderr
        # Descendants seen so far: one that left the group (setsid) is still ours after the leader dies.
        self.known: dict[int, psutil.Process] = {}
        try:
            self.create_time = psutil.Process(proc.pid).create_time()
        except psutil.Error:  # it may already be gone; the state file then records 0
            self.create_time = 0.0

    def remember_descendants(self) -> None:
        with contextlib.suppress(psutil.Error):
            for p in psutil.Process(self.pid).children(recursive=True):
                self.known.setdefault(p.pid, p)

    def live_known(self) -> list[psutil.Process]:
        live = []
        for p in self.known.values():
            with contextlib.suppress(psutil.Error):
                if p.is_running() and p.status() != psutil.STATUS_ZOMBIE:
                    live.append(p)
        return live

    async def wait(self) -> int:
        rc = await self._proc.wait()
        self._on_exit(self.pid)
        return rc


def _pipe() -> tuple[int, int]:
    r, w = os.pipe()
    enlarge_pipe(r)  # a 1 MiB pipe lets a fast writer run ahead of our reads
    return r, w


def _check_spawnable(argv: Sequence[str], cwd: str | None, env: Mapping[str, str]) -> None:
    """Name the path that is missing or forbidden, before fork makes the error vague."""
    if cwd is not None and not Path(cwd).is_dir():
        raise SpawnError(argv[0], f"working directory not found: {cwd}")
    exe = argv[0]
    if os.sep in exe:
        path = Path(cwd or ".", exe) if not os.path.isabs(exe) else Path(exe)
        if not path.exists():
            raise SpawnError(exe, f"executable not found: {path}")
        if not os.access(path, os.X_OK) or path.is_dir():
            raise SpawnError(exe, f"permission denied: {path} is not executable")
    elif shutil.which(exe, path=env.get("PATH", os.defpath)) is None:
        raise SpawnError(exe, f"executable not found on PATH: {exe}")


def _find_setpriv() -> str | None:
    """util-linux's setpriv, if it knows --pdeathsig (2.33 and later)."""
    path = shutil.which("setpriv")
    if path is None:
        return None
    try:
        usage = subprocess.run([path, "--help"], capture_output=True, text=True, timeout=5).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return path if "--pdeathsig" in usage else None


def _pidfd_works() -> bool:
    """Linux 5.3+ (and no seccomp filter refusing it)."""
    if not hasattr(os, "pidfd_open"):
        return False
    try:
        os.close(os.pidfd_open(os.getpid()))
    except OSError:
        return False
    return True


class PosixPlatform:
    name = "posix"

    def __init__(self, *, pidfd: bool | None = None) -> None:
        """`pidfd`: reap children through pidfds (None: where the kernel has them), else asyncio's way."""
        self._prctl = _load_prctl()
        self._malloc_trim = _load_malloc_trim()
        self._reset = [getattr(signal, n) for n in _RESET_SIGNALS if hasattr(signal, n)]
        self._setpriv = _find_setpriv() if self._prctl is not None else None
        self._pidfd = _pidfd_works() if pidfd is None else pidfd
        # Our own children (asyncio waits for them) as against orphans re-parented to us as subreaper.
        self._own: set[int] = set()
        self._spawning = 0  # a spawn in flight has a child whose pid we do not know yet
        self._spawn_seq = 0  # spawns begun so far
        self.subreaper = False

    def become_subreaper(self) -> bool:
        """Linux: orphaned descendants are re-parented to us, not to init, so the parent links still
        find them and we collect their exit status (`reap_adopted`). Call only in a process that is
        the supervisor and nothing else: every child it did not spawn is then treated as an orphan."""
        if self._prctl is None or self._prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
            return False
        self.subreaper = True
        return True

    def kill_marked(
        self, select: EnvSelector, timeout_s: float, required: Mapping[str, str] | None = None,
        *, incremental: bool = False,
    ) -> list[str]:
        return kill_marked(select, timeout_s, required, incremental=incremental)

    def _adopted(self) -> list[psutil.Process]:
        """Our children that we did not spawn. Runs in a worker thread: a spawn that began before or
        during the listing (its child not yet in `_own`) voids the answer; the next call tries again."""
        seq = self._spawn_seq
        if not self.subreaper or self._spawning:
            return []
        try:
            found = [p for p in psutil.Process().children() if p.pid not in self._own]
        except psutil.Error:  # pragma: no cover - our own process is always readable
            return []
        return [] if self._spawning or self._spawn_seq != seq else found

    def reap_adopted(self) -> None:
        for proc in self._adopted():
            with contextlib.suppress(psutil.Error):
                if proc.status() == psutil.STATUS_ZOMBIE:
                    proc.wait(0)

    def kill_adopted(self, timeout_s: float) -> list[str]:
        """Kill every orphan re-parented to us (even one that cleared its environment) and reap it."""
        return kill_and_wait(self._adopted(), timeout_s)

    def release_free_memory(self) -> None:
        """glibc keeps what the churn of a busy supervisor frees in its heap (fragments between live
        blocks that it never trims itself): 44 -> 68 MiB of RSS in 10 minutes of bench/rss_soak.py's
        mix, Python objects flat at 21 MiB. malloc_trim(0) gives it back (16 MiB there) in 6 to 11 ms
        for a 100 MiB heap, without holding the GIL (ctypes releases it)."""
        if self._malloc_trim is not None:
            self._malloc_trim(0)

    def _launch(self, argv: Sequence[str]) -> tuple[list[str], Callable[[], None] | None]:
        """The argv to exec and the preexec hook, choosing the fast way when it is as good.

        A `preexec_fn` forces fork() instead of vfork(): 3-4 ms a spawn for a parent of our size. When
        no signal that the child must see at its default is ignored here, util-linux's `setpriv
        --pdeathsig` sets the parent-death signal and execs the command, and the spawn stays a vfork
        (about 1 ms). Otherwise (we were started with SIGINT ignored, or there is no setpriv) the
        child resets it all itself between fork and exec.
        """
        ignored = any(signal.getsignal(sig) is signal.SIG_IGN for sig in self._reset if sig != signal.SIGPIPE)
        if self._setpriv is not None and not ignored:
            return [self._setpriv, "--pdeathsig", "KILL", "--", *argv], None
        return list(argv), self._preexec

    def _preexec(self) -> None:
        # Runs in the child between fork and exec: die with the supervisor, and start with default
        # signal dispositions even if we were started with SIGINT ignored (a shell's `&` does that).
        if self._prctl is not None:
            self._prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        for sig in self._reset:
            signal.signal(sig, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_SETMASK, set())

    async def spawn(self, argv: Sequence[str], *, cwd: str | None, env: Mapping[str, str]) -> PosixChild:
        """Start the child (vfork through setpriv, see `_launch`) and watch its exit through a pidfd on
        the loop where the kernel has them. A crash loop under `orchestrator run` on the loaded 2-core
        box (bash child, 300 restarts, 5 rounds side by side): 4.0 ms over a bash respawn loop against
        4.4 ms with asyncio's watcher thread, and 4.9 against 5.4 ms of the supervisor's CPU a restart.
        setpriv's extra exec measured 0.6 ms in the same way (within the noise): it stays."""
        _check_spawnable(argv, cwd, env)
        launch, preexec = self._launch(argv)
        out_r, out_w = _pipe()
        err_r, err_w = _pipe()
        self._spawning += 1
        self._spawn_seq += 1
        try:
            proc: _Exit
            options: dict[str, Any] = {
                "stdin": subprocess.DEVNULL, "stdout": out_w, "stderr": err_w, "cwd": cwd, "env": dict(env),
                "start_new_session": True,  # own group: a console Ctrl+C reaches us alone
                "preexec_fn": preexec,  # SIGPIPE is restored by subprocess itself (restore_signals)
            }
            if self._pidfd:
                popen = subprocess.Popen(launch, **options)
                try:
                    pidfd = os.pidfd_open(popen.pid)
                except OSError:  # out of file descriptors: a child we could not wait for is not started
                    popen.kill()
                    popen.wait()
                    raise
                proc = PidfdExit(popen, pidfd)
            else:
                proc = await asyncio.create_subprocess_exec(*launch, **options)
        except OSError as exc:
            for fd in (out_r, err_r):
                os.close(fd)
            raise SpawnError(argv[0], f"{exc.strerror or exc}: {exc.filename or argv[0]}") from exc
        else:
            self._own.add(proc.pid)
        finally:
            self._spawning -= 1
            os.close(out_w)
            os.close(err_w)
        return PosixChild(proc, PipeSource(out_r), PipeSource(err_r), on_exit=self._own.discard)

    def signal_tree(self, child: Child, signal_name: str) -> None:
        _remember(child)
        sig = getattr(signal, signal_name, signal.SIGTERM)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(child.pid, sig)
        if isinstance(child, PosixChild):
            for proc in child.live_known():
                with contextlib.suppress(psutil.Error):
                    proc.send_signal(sig)

    def kill_tree(self, child: Child) -> None:
        _remember(child)
        _kill_group_and_descendants(child.pid)
        if isinstance(child, PosixChild):
            for proc in child.live_known():
                with contextlib.suppress(psutil.Error):
                    proc.kill()

    def tree_alive(self, child: Child) -> bool:
        if isinstance(child, PosixChild) and child.live_known():
            return True
        return bool(_live_members(child.pid))

    def reap_leftovers(self, records: Sequence[LeftoverRecord], run_id: str | None) -> list[str]:
        victims: dict[int, tuple[str, psutil.Process]] = {}
        for rec in records:
            pgid, born = rec.get("pid"), rec.get("create_time")
            if not isinstance(pgid, int) or not isinstance(born, (int, float)):
                continue
            # Same group id and born no earlier than our child: a recycled pid cannot match both.
            for proc in _live_members(pgid):
                with contextlib.suppress(psutil.Error):
                    if proc.create_time() >= float(born) - 0.01:
                        victims[proc.pid] = (str(rec.get("service")), proc)
        if run_id is not None:
            for proc in marked_processes(run_id):
                victims.setdefault(proc.pid, ("(inherited marker)", proc))
        killed = []
        for service, proc in victims.values():
            with contextlib.suppress(psutil.Error):
                killed.append(f"{service}: pid {proc.pid} ({process_name(proc.pid) or 'program unknown'})")
                proc.kill()
        return killed




def _remember(child: Child) -> None:
    if isinstance(child, PosixChild):
        child.remember_descendants()


def _live_members(pgid: int) -> list[psutil.Process]:
    """Processes of the group that are not zombies (a zombie holds no port and no file)."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return []
    except PermissionError:  # pragma: no cover - someone else's group: not ours to judge
        return []
    members = []
    for proc in psutil.process_iter():
        with contextlib.suppress(psutil.Error, OSError):
            if os.getpgid(proc.pid) == pgid and proc.status() != psutil.STATUS_ZOMBIE:
                members.append(proc)
    return members


def _kill_group_and_descendants(pgid: int) -> None:
    # Descendants that moved to a group of their own are still found through the parent links.
    with contextlib.suppress(psutil.Error):
        for proc in psutil.Process(pgid).children(recursive=True):
            with contextlib.suppress(psutil.Error):
                proc.kill()
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    except OSError as exc:  # pragma: no cover - EPERM on a group we do not own
        if exc.errno != errno.EPERM:
            raise
