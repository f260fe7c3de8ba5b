"""Windows process control: a Job Object per child, CTRL_BREAK_EVENT to its process group, Proactor pipes.

Why each child is created suspended and put in a job of its own before its first instruction runs
(the alternative was to put the supervisor itself in a job that every child inherits):

- A stop must end the child's whole tree and nothing else. With one job per child, that is
  TerminateJobObject. With one shared job we would have to find the tree by parent links, and those
  break exactly in the case that matters here: run_nvidia_gpu.bat is cmd.exe starting python.exe, and
  once cmd.exe is gone, python.exe's parent id points at nothing (or at a recycled pid).
- The window in which a child could start a grandchild outside the job is closed: the child cannot
  run until it is in the job, and everything it starts afterwards is born in the job (no
  JOB_OBJECT_LIMIT_BREAKAWAY_OK, so it cannot leave). An inherited shared job closes that window for
  our death, but a per-service kill would still race the child's first CreateProcess.
- JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE on each job, and only we hold its handle (not inheritable): if
  the supervisor dies, however hard, Windows closes the handles and kills every child and grandchild.
- Putting ourselves in a job would also change the supervisor's own process (and a test runner's).

asyncio does not hand out the main thread's handle, so the suspended child is resumed by finding its
thread by id (winjob.resume_process). Windows 8 and later allow nested jobs, so this works even if
NSSM, or a launcher such as the pip-generated orchestrator.exe, already put us in a job.

Graceful stop: CTRL_BREAK_EVENT to the child's process group (CREATE_NEW_PROCESS_GROUP makes the child
a group leader and keeps Ctrl+C, which NSSM uses to stop us, away from it). A Python child without a
SIGBREAK handler, ComfyUI included, ends at once on it; cmd.exe's "Terminate batch job (Y/N)?" reads
stdin, which is the null device, and ends the batch.
"""

from __future__ import annotations

import sys

if sys.platform != "win32":
    raise ImportError("orchestrator.platform.windows is for Windows only")

import asyncio
import contextlib
import os
import signal
import subprocess
import weakref
from collections.abc import Mapping, Sequence

import anyio
import psutil
import structlog

from orchestrator.errors import SpawnError
from orchestrator.platform import winjob
from orchestrator.platform.base import Child, EnvSelector, LeftoverRecord
from orchestrator.platform.common import marked_processes
from orchestrator.platform.procname import process_name
from orchestrator.platform.wincommand import BatchArgumentError, batch_command_line, is_batch, resolve_program
from orchestrator.types import ByteSource

__all__ = ["WindowsChild", "WindowsPlatform"]

_log = structlog.get_logger("orchestrator.platform.windows")

CREATE_SUSPENDED = 0x00000004  # not in the subprocess module
_STREAM_LIMIT = 1 << 20  # StreamReader buffer before it pauses the pipe; the pump reads up to 1 MiB
_ASSIGN_FAILED_WAIT_S = 5.0


class WindowsChild:
    def __init__(self, proc: asyncio.subprocess.Process, job: winjob.JobObject) -> None:
        if proc.stdout is None or proc.stderr is None:
            raise RuntimeError("the child was started without output pipes")
        self._proc = proc
        self._pid = proc.pid
        self._stdout: ByteSource = proc.stdout
        self._stderr: ByteSource = proc.stderr
        self.job = job
        weakref.finalize(self, job.close)  # a child forgotten with its tree still alive: end that tree
        try:
            self._create_time = psutil.Process(proc.pid).create_time()
        except psutil.Error:
            self._create_time = 0.0

    @property
    def pid(self) -> int:
        return self._pid

    @property
    def create_time(self) -> float:
        return self._create_time

    @property
    def stdout(self) -> ByteSource:
        return self._stdout

    @property
    def stderr(self) -> ByteSource:
        return self._stderr

    async def wait(self) -> int:
        return await self._proc.wait()


class WindowsPlatform:
    name = "windows"

    def __init__(self) -> None:
        self._console_checked = False

    async def spawn(self, argv: Sequence[str], *, cwd: str | None, env: Mapping[str, str]) -> WindowsChild:
        program = _resolve(argv, cwd, env)
        self._ensure_console()
        job = winjob.JobObject.create()
        try:
            proc = await _start_suspended(program, argv, cwd, env)
        except BaseException:
            job.close()
            raise
        try:
            job.assign(proc.pid)
            winjob.resume_process(proc.pid)
        except (OSError, psutil.Error) as exc:
            await _discard(proc, job)
            raise SpawnError(argv[0], f"cannot put the child in its job object: {exc}") from exc
        return WindowsChild(proc, job)

    def _ensure_console(self) -> None:
        if self._console_checked:
            return
        self._console_checked = True
        try:
            if winjob.ensure_console():
                _log.info("console_allocated", why="CTRL_BREAK_EVENT reaches only processes on our console")
        except OSError as exc:
            _log.warning("console_unavailable", error=str(exc), effect="stops will end children at once")

    def signal_tree(self, child: Child, signal_name: str) -> None:
        del signal_name  # Windows has one graceful request for a group: CTRL_BREAK_EVENT
        if not isinstance(child, WindowsChild) or child.job.closed:
            return
        # Only while the leader lives is its pid surely a group id: for a pid that is no group, the
        # console sends the event to every process on it, this supervisor included.
        try:
            if child.pid not in child.job.pids():
                return
        except OSError:
            return
        try:
            os.kill(child.pid, signal.CTRL_BREAK_EVENT)
        except OSError as exc:
            _log.warning("ctrl_break_failed", pid=child.pid, error=str(exc), effect="terminating the job")
            self.kill_tree(child)

    def kill_tree(self, child: Child) -> None:
        if isinstance(child, WindowsChild):
            with contextlib.suppress(OSError):  # access denied while the job is already ending
                child.job.terminate(1)
            return
        with contextlib.suppress(psutil.Error):
            _kill_with_descendants(psutil.Process(child.pid))

    def tree_alive(self, child: Child) -> bool:
        if not isinstance(child, WindowsChild):
            return psutil.pid_exists(child.pid)
        try:
            if child.job.active_processes() > 0:
                return True
        except OSError as exc:  # cannot happen with a valid handle; say so rather than stall a stop
            _log.warning("job_query_failed", pid=child.pid, error=str(exc))
        child.job.close()  # empty for good: nothing can enter a job but through us
        return False

    def reap_leftovers(self, records: Sequence[LeftoverRecord], run_id: str | None) -> list[str]:
        """Normally empty: KILL_ON_JOB_CLOSE ended the previous run's children when it died. Whatever
        still matches a record (same pid, same create time) or carries that run's RUN_MARKER is killed,
        with its descendants."""
        victims: dict[int, tuple[str, psutil.Process]] = {}
        for rec in records:
            pid, born = rec.get("pid"), rec.get("create_time")
            if not isinstance(pid, int) or not isinstance(born, (int, float)):
                continue
            with contextlib.suppress(psutil.Error):
                proc = psutil.Process(pid)
                if abs(proc.create_time() - float(born)) < 0.01:
                    victims[pid] = (str(rec.get("service")), proc)
        if run_id is not None:
            for proc in marked_processes(run_id):
                victims.setdefault(proc.pid, ("(inherited marker)", proc))
        killed: list[str] = []
        for service, proc in victims.values():
            with contextlib.suppress(psutil.Error):
                killed.append(f"{service}: pid {proc.pid} ({process_name(proc.pid) or 'program unknown'})")
                _kill_with_descendants(proc)
        return killed

    def become_subreaper(self) -> bool:
        return False  # no such thing here: each child's Job Object already holds its whole tree

    def kill_marked(
        self, select: EnvSelector, timeout_s: float, required: Mapping[str, str] | None = None,
        *, incremental: bool = False,
    ) -> list[str]:
        # Nothing to find: a child's job holds its whole tree and ends with it (and with us). Reading
        # every process's environment here means reading each one's PEB: not worth it for nothing.
        return []

    def reap_adopted(self) -> None:
        pass  # Windows has no zombies and re-parents nothing to us

    def kill_adopted(self, timeout_s: float) -> list[str]:
        return []

    def release_free_memory(self) -> None:
        pass  # no malloc_trim here: the Windows heap decommits large free blocks on its own


def _resolve(argv: Sequence[str], cwd: str | None, env: Mapping[str, str]) -> str:
    if cwd is not None and not os.path.isdir(cwd):
        raise SpawnError(argv[0], f"working directory not found: {cwd}")
    found = resolve_program(argv[0], cwd=cwd or os.getcwd(), path=_env(env, "PATH") or "",
                            pathext=_env(env, "PATHEXT"), is_file=os.path.isfile)
    if found is None:
        raise SpawnError(argv[0], f"executable not found: {argv[0]}")
    return found


def _env(env: Mapping[str, str], name: str) -> str | None:
    """Environment names are case-insensitive on Windows (`Path` is PATH)."""
    return next((v for k, v in env.items() if k.upper() == name), None)


async def _start_suspended(program: str, argv: Sequence[str], cwd: str | None,
                           env: Mapping[str, str]) -> asyncio.subprocess.Process:
    flags = subprocess.CREATE_NEW_PROCESS_GROUP | CREATE_SUSPENDED
    devnull, pipe = subprocess.DEVNULL, subprocess.PIPE
    try:
        if is_batch(program):
            line = batch_command_line(program, argv[1:])
            return await asyncio.create_subprocess_shell(
                line, stdin=devnull, stdout=pipe, stderr=pipe, cwd=cwd, env=dict(env), creationflags=flags,
                limit=_STREAM_LIMIT)
        return await asyncio.create_subprocess_exec(
            program, *argv[1:], stdin=devnull, stdout=pipe, stderr=pipe, cwd=cwd, env=dict(env),
            creationflags=flags, limit=_STREAM_LIMIT)
    except BatchArgumentError as exc:
        raise SpawnError(argv[0], str(exc)) from exc
    except OSError as exc:
        raise SpawnError(argv[0], f"{exc.strerror or exc}: {program}") from exc


async def _discard(proc: asyncio.subprocess.Process, job: winjob.JobObject) -> None:
    """A child we could not put in its job has not run yet (it is suspended): end it and forget it."""
    with contextlib.suppress(OSError):
        proc.kill()
    with anyio.move_on_after(_ASSIGN_FAILED_WAIT_S, shield=True):
        await proc.wait()
    job.close()




def _kill_with_descendants(proc: psutil.Process) -> None:
    with contextlib.suppress(psutil.Error):
        for descendant in proc.children(recursive=True):
            with contextlib.suppress(psutil.Error):
                descendant.kill()
    proc.kill()
