"""Portable process helpers (psutil) that both platform modules use."""

from __future__ import annotations

import contextlib
import os

import psutil

from orchestrator.core.statefile import RUN_MARKER

__all__ = ["marked_processes"]


def marked_processes(run_id: str) -> list[psutil.Process]:
    """Processes whose environment carries that run's marker (psutil reads it for our own user's)."""
    found = []
    me = os.getpid()
    for proc in psutil.process_iter():
        with contextlib.suppress(psutil.Error, OSError):
            if proc.pid != me and proc.environ().get(RUN_MARKER) == run_id:
                found.append(proc)
    return found
