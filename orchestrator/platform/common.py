"""Portable process helpers (psutil) that both platform modules use."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Mapping

import psutil

from orchestrator.platform.base import EnvSelector
from orchestrator.platform.procenv import matching_processes

__all__ = [
    "OWNER_MARKER",
    "RUN_MARKER",
    "SERVICE_MARKER",
    "STATE_MARKER",
    "EnvSelector",
    "kill_and_wait",
    "kill_marked",
    "marked_processes",
    "process_start_time",
    "same_process_alive",
]

# Every child gets these variables, and its descendants inherit them: a stop finds what its service
# left outside the process group and the parent links (a daemon: fork, setsid, fork), and the next run
# finds what a hard death left behind (Jenkins' ProcessTreeKiller does the same). A process that
# clears its environment is not found this way (docs/architecture.md says what then reaches it).
RUN_MARKER = "ORCHESTRATOR_RUN_ID"  # one supervisor run
SERVICE_MARKER = "ORCHESTRATOR_SERVICE"  # the service whose child started it
STATE_MARKER = "ORCHESTRATOR_STATE_DIR"  # the run's state directory: a start looks only for its own
OWNER_MARKER = "ORCHESTRATOR_SUPERVISOR"  # "pid start_time" of the supervisor: alive = not a leftover
_GONE_POLL_S = 0.02  # how often a kill looks for its victims to be gone


def marked_processes(run_id: str) -> list[psutil.Process]:
    """Processes whose environment carries that run's marker (psutil reads it for our own user's)."""
    found = []
    me = os.getpid()
    for proc in psutil.process_iter():
        with contextlib.suppress(psutil.Error, OSError):
            if proc.pid != me and proc.environ().get(RUN_MARKER) == run_id:
                found.append(proc)
    return found


def process_start_time(pid: int) -> float | None:
    """psutil's create_time of `pid`, None if it is gone (or not ours to see)."""
    try:
        return psutil.Process(pid).create_time()
    except (psutil.Error, OSError):
        return None


def same_process_alive(pid: int, started: float | None) -> bool:
    """Whether `pid` still runs and is the process that started at `started` (not a recycled pid).

    No start time recorded (a record from an older version): the pid alone decides, which errs on
    the side of leaving processes alone."""
    now = process_start_time(pid)
    if now is None:
        return False
    if started is None:
        return True
    try:
        status = psutil.Process(pid).status()
    except psutil.Error:
        return False
    return status != psutil.STATUS_ZOMBIE and abs(now - started) < 0.01


def kill_marked(
    select: EnvSelector, timeout_s: float, required: Mapping[str, str] | None = None, *, incremental: bool = False
) -> list[str]:
    """Kill every process (not us, not our ancestors) whose environment `select` picks, and wait up to
    `timeout_s` for them to be gone; describe each kill. `required`: variables (name -> value) every
    process `select` picks carries, which lets Linux skip the others unparsed; `incremental`: and the
    processes an earlier scan with the same `required` already read (platform/procenv.py).

    Blocking: reads every process's environment (7 us each on Linux with `required`, 40 us without),
    so call it in a thread.
    """
    victims = list(matching_processes(select, required or {}, incremental=incremental))
    if victims:  # a supervisor started by a service of an older run: not its own victim
        me = psutil.Process()
        skip = {me.pid, *(p.pid for p in me.parents())}
        victims = [p for p in victims if p.pid not in skip]
    return kill_and_wait(victims, timeout_s)


def kill_and_wait(victims: list[psutil.Process], timeout_s: float) -> list[str]:
    """SIGKILL each, then wait up to `timeout_s` until all are gone (reaping those that are our children)."""
    killed = []
    for proc in victims:
        with contextlib.suppress(psutil.Error):
            killed.append(f"pid {proc.pid} ({proc.name()})")
            proc.kill()
    deadline = time.monotonic() + timeout_s
    while not all(_gone(p) for p in victims) and time.monotonic() < deadline:
        time.sleep(_GONE_POLL_S)
    return killed


def _gone(proc: psutil.Process) -> bool:
    """Ended: no such process, or a zombie (it holds no port and no file). A zombie of ours is reaped
    here (it was re-parented to us); another's is its parent's to reap (init's, usually)."""
    try:
        if proc.status() != psutil.STATUS_ZOMBIE:
            return False
    except psutil.NoSuchProcess:
        return True
    except psutil.Error:  # pragma: no cover - access denied: not ours to wait for
        return True
    with contextlib.suppress(psutil.Error):
        proc.wait(0)  # waitpid(WNOHANG) if it is our child; TimeoutExpired (ignored) otherwise
    return True
