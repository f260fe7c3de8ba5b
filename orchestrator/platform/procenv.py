"""Finding processes by a variable in their environment, on Linux straight from /proc.

Rule: a scan reads each process's `/proc/PID/environ` as raw bytes and looks for the `NAME=VALUE`
markers every process the selector can pick must carry, before anything is decoded; only the few
that hold them all become psutil processes, whose environment is read again through psutil (so the
identity is fixed, by pid and start time, before the environment that condemns it is read) and
handed to the selector. Elsewhere (macOS, BSD) psutil reads every process, as before.

Measured on the 2-core dev box with 224 processes, medians of 20: psutil's `process_iter()` and
`environ()` of each, 9.1 ms a scan; the raw read here, 1.5 ms. The scan runs at every exit of a
service's main process, and a restart waits for it (a stray may hold the port the next child needs),
so it was most of what a crash-looping service's restart cost over a shell loop respawning the same
child (docs/benchmarks.md, issue 16).
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator, Mapping

import psutil

from orchestrator.platform.base import EnvSelector

__all__ = ["matching_processes"]

_PROC = "/proc"
_CHUNK = 1 << 16  # most environments fit in one read; a larger one takes a few


def matching_processes(select: EnvSelector, required: Mapping[str, str]) -> Iterator[psutil.Process]:
    """Processes (ours or not; the caller skips itself) whose environment `select` picks.

    `required`: variables every process `select` picks has, with these values (a prefilter: `select`
    still decides); empty reads every process's environment through psutil."""
    if not required or not sys.platform.startswith("linux") or not os.path.isdir(f"{_PROC}/self"):
        yield from _psutil_scan(select)
        return
    needles = [os.fsencode(f"{name}={value}") for name, value in required.items()]
    for pid in _pids_holding(needles):
        with contextlib.suppress(psutil.Error, OSError):
            proc = psutil.Process(pid)
            if select(proc.environ()):  # read again: the same process as `proc`, by its start time
                yield proc


def _psutil_scan(select: EnvSelector) -> Iterator[psutil.Process]:
    for proc in psutil.process_iter():
        with contextlib.suppress(psutil.Error, OSError):
            if select(proc.environ()):
                yield proc


def _pids_holding(needles: list[bytes]) -> list[int]:
    """Pids whose /proc environ holds every one of `needles` (unreadable ones, another user's, are skipped)."""
    found: list[int] = []
    try:
        names = os.listdir(_PROC)
    except OSError:  # pragma: no cover - /proc vanished under us
        return found
    for name in names:
        if not name.isdigit():
            continue
        try:
            fd = os.open(f"{_PROC}/{name}/environ", os.O_RDONLY)  # not inherited (PEP 446)
        except OSError:  # gone, or not ours to read
            continue
        try:
            data = os.read(fd, _CHUNK)
            if len(data) == _CHUNK:
                parts = [data]
                while chunk := os.read(fd, _CHUNK):
                    parts.append(chunk)
                data = b"".join(parts)
        except OSError:
            continue
        finally:
            os.close(fd)
        if all(needle in data for needle in needles):
            found.append(int(name))
    return found
