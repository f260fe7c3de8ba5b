"""Portable process helpers (psutil) that both platform modules use."""

from __future__ import annotations

import contextlib
import os

import psutil

__all__ = ["RUN_MARKER", "marked_processes"]

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
