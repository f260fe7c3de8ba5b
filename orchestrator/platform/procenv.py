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

Rule: an incremental scan (a selector whose verdict depends on the environment alone: a service's
strays) reads only the processes born since the previous scan with the same markers began, and a full
scan comes at least once a second. Linux hands out pids in cyclic order, so a process born after that
scan read `ns_last_pid` has a pid after it and up to the value read once the listing is done; the
others were read then (and killed if picked). The window is void, and the scan full, when the pids may
have gone round (the kernel's fork count since then, plus the tasks alive, nears `pid_max`), when
/proc is another pid namespace's, or when a process chose its own pid (CRIU's set_tid: only the
full scan, within the second, sees it). A crash loop then reads its own new child and whatever the
machine started meanwhile, not all 224 processes: 0.3 ms a scan instead of 1.5 on the dev box.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import psutil

from orchestrator.platform.base import EnvSelector

__all__ = ["matching_processes"]

_PROC = "/proc"
_CHUNK = 1 << 16  # most environments fit in one read; a larger one takes a few


def matching_processes(
    select: EnvSelector, required: Mapping[str, str], *, incremental: bool = False
) -> Iterator[psutil.Process]:
    """Processes (ours or not; the caller skips itself) whose environment `select` picks.

    `required`: variables every process `select` picks has, with these values (a prefilter: `select`
    still decides); empty reads every process's environment through psutil. `incremental`: the
    verdict depends on the environment alone, so a process that an earlier scan with the same
    `required` read need not be read again (see the module's rule)."""
    if not required or not sys.platform.startswith("linux") or not os.path.isdir(f"{_PROC}/self"):
        yield from _psutil_scan(select)
        return
    needles = [os.fsencode(f"{name}={value}") for name, value in required.items()]
    key = frozenset(required.items())
    for pid in _pids_holding(needles, key if incremental else None):
        with contextlib.suppress(psutil.Error, OSError):
            proc = psutil.Process(pid)
            if select(proc.environ()):  # read again: the same process as `proc`, by its start time
                yield proc


def _psutil_scan(select: EnvSelector) -> Iterator[psutil.Process]:
    for proc in psutil.process_iter():
        with contextlib.suppress(psutil.Error, OSError):
            if select(proc.environ()):
                yield proc


FULL_SCAN_EVERY_S = 1.0  # an incremental scan's window is at most this old


@dataclass(frozen=True, slots=True)
class _PidClock:
    last_pid: int  # ns_last_pid: the pid handed out last in our namespace
    forks: int  # /proc/stat `processes`: every fork on the machine since boot (a pid each, at most)
    tasks: int  # /proc/loadavg: threads alive (pids in use), a bound on the pids a cycle skips


@dataclass(frozen=True, slots=True)
class _Mark:
    full_at: float  # monotonic time of the last full scan with these markers
    clock: _PidClock  # read just before the last scan listed /proc


_marks: dict[frozenset[tuple[str, str]], _Mark] = {}
_marks_lock = threading.Lock()


def _pids_holding(needles: list[bytes], key: frozenset[tuple[str, str]] | None) -> list[int]:
    """Pids whose /proc environ holds every one of `needles` (unreadable ones, another user's, are
    skipped). `key`: an incremental scan's markers; None reads every process."""
    found: list[int] = []
    clock = _pid_clock() if key is not None else None
    now = time.monotonic()
    try:
        names = os.listdir(_PROC)
    except OSError:  # pragma: no cover - /proc vanished under us
        return found
    window = _window(key, clock, now) if key is not None else None
    pids = [int(name) for name in names if name.isdigit()]
    if window is not None:
        pids = [pid for pid in pids if _in_window(pid, *window)]
    for pid in pids:
        try:
            fd = os.open(f"{_PROC}/{pid}/environ", os.O_RDONLY)  # not inherited (PEP 446)
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
            found.append(pid)
    if key is not None and clock is not None:
        with _marks_lock:
            previous = _marks.get(key)
            full_at = previous.full_at if window is not None and previous is not None else now
            _marks[key] = _Mark(full_at, clock)
    return found


def _window(key: frozenset[tuple[str, str]], clock: _PidClock | None, now: float) -> tuple[int, int] | None:
    """(after, upto): the cyclic range of pids born since the previous scan with `key` began, or None
    (read everything). Called once the listing is done, so every listed pid was handed out by `upto`."""
    with _marks_lock:
        mark = _marks.get(key)
    if clock is None or mark is None or now - mark.full_at >= FULL_SCAN_EVERY_S:
        return None
    pid_max = _read_int("/proc/sys/kernel/pid_max")
    upto = _read_int("/proc/sys/kernel/ns_last_pid")
    if pid_max is None or upto is None:
        return None
    # A cycle moves the cursor by a fork each plus the pids in use it skips: nowhere near pid_max.
    if (clock.forks - mark.clock.forks) + max(clock.tasks, mark.clock.tasks) >= (pid_max - _RESERVED_PIDS) // 2:
        return None
    return mark.clock.last_pid, upto


def _in_window(pid: int, after: int, upto: int) -> bool:
    """`after` was handed out before the previous listing (which saw it), so it is not in the window."""
    if after <= upto:
        return after < pid <= upto
    return pid > after or pid <= upto  # the cursor went past pid_max and started again


_RESERVED_PIDS = 300  # kernel/pid.c: a wrapped cursor starts again here
_same_namespace: bool | None = None


def _pid_clock() -> _PidClock | None:
    """The pid allocator's position now; None where it cannot be read or is not our namespace's."""
    global _same_namespace
    if _same_namespace is None:
        try:
            _same_namespace = int(os.readlink(f"{_PROC}/self")) == os.getpid()
        except (OSError, ValueError):
            _same_namespace = False
    if not _same_namespace:
        return None
    last_pid = _read_int("/proc/sys/kernel/ns_last_pid")
    forks = tasks = None
    with contextlib.suppress(OSError, ValueError, IndexError):
        with open(f"{_PROC}/stat", "rb") as f:
            for line in f:
                if line.startswith(b"processes "):
                    forks = int(line.split()[1])
                    break
        with open(f"{_PROC}/loadavg", "rb") as f:
            tasks = int(f.read().split()[3].split(b"/")[1])
    if last_pid is None or forks is None or tasks is None:
        return None
    return _PidClock(last_pid, forks, tasks)


def _read_int(path: str) -> int | None:
    try:
        with open(path, "rb") as f:
            return int(f.read())
    except (OSError, ValueError):
        return None
