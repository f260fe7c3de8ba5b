"""Portable process helpers (psutil) that both platform modules use."""

from __future__ import annotations

import contextlib
import os

import psutil

__all__ = ["RUN_MARKER", "marked_processes", "process_start_time", "same_process_alive"]

# Every child gets this variable, and its descendants inherit it: the next run finds what a hard death
# left behind even when it changed its process group or session (Jenkins' ProcessTreeKiller does the same).
RUN_MARKER = "ORCHESTRATOR_RUN_ID"


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
