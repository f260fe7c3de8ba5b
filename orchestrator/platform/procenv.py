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
strays) reads only the processes born since the scan before the previous one with the same markers
began, and a full scan comes at least once a second. Linux hands out pids in cyclic order, so a
process born after that scan read `ns_last_pid` has a pid after it and up to the value read once the
listing is done; the others were listed by one of the two scans since (and killed if picked). Two
scans back, not one: a fork in flight when a scan reads `ns_last_pid` has its pid but is not yet in
/proc, so that scan's listing can miss it; the next one cannot. The window is void, and the scan full,
when the pids may have gone round (the kernel's fork count since then, plus the tasks alive, nears
`pid_max`), when /proc is another pid namespace's, when a read failed for another reason than the
process being gone or another user's, or when a process chose its own pid (CRIU's set_tid: only the
full scan, within the second, sees it). A crash loop then reads its last two children and whatever
the machine started meanwhile, not all 224 processes: 0.3-0.6 ms a scan instead of 1.5 on the dev box.
"""

from __future__ import annotations

import contextlib
import errno
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
    before: _PidClock | None  # the same, of the scan before it: where the next window starts


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
    complete = True  # every process listed was read, or is gone, or is not ours to read
    pids = [int(name) for name in names if name.isdigit()]
    if window is not None:
        pids = [pid for pid in pids if _in_window(pid, *window)]
    for pid in pids:
        try:
            fd = os.open(f"{_PROC}/{pid}/environ", os.O_RDONLY)  # not inherited (PEP 446)
        except OSError as exc:  # gone, or not ours to read
            complete = complete and exc.errno in _EXPECTED
            continue
        try:
            data = os.read(fd, _CHUNK)
            if len(data) == _CHUNK:
                parts = [data]
                while chunk := os.read(fd, _CHUNK):
                    parts.append(chunk)
                data = b"".join(parts)
        except OSError as exc:
            complete = complete and exc.errno in _EXPECTED
            continue
        finally:
            os.close(fd)
        if all(needle in data for needle in needles):
            found.append(pid)
    if key is not None:
        with _marks_lock:
            previous = _marks.pop(key, None)
            if clock is not None and complete:  # else the next scan is a full one
                full_at = previous.full_at if window is not None and previous is not None else now
                _marks[key] = _Mark(full_at, clock, previous.clock if previous is not None else None)
    return found


def _window(key: frozenset[tuple[str, str]], clock: _PidClock | None, now: float) -> tuple[int, int] | None:
    """(after, upto): the cyclic range of pids born since the scan before the previous one with `key`
    began, or None (read everything). Called once the listing is done, so every listed pid was handed out by `upto`."""
    with _marks_lock:
        mark = _marks.get(key)
    if clock is None or mark is None or mark.before is None or now - mark.full_at >= FULL_SCAN_EVERY_S:
        return None
    start = mark.before
    pid_max = _read_int("/proc/sys/kernel/pid_max")
    upto = _read_int("/proc/sys/kernel/ns_last_pid")
    if pid_max is None or upto is None:
        return None
    # A cycle moves the cursor by a fork each plus the pids in use it skips: nowhere near pid_max.
    if (clock.forks - start.forks) + max(clock.tasks, start.tasks) >= (pid_max - _RESERVED_PIDS) // 2:
        return None
    return start.last_pid, upto


def _in_window(pid: int, after: int, upto: int) -> bool:
    """`after` was handed out before a listing that saw it, so it is not in the window."""
    if after <= upto:
        return after < pid <= upto
    return pid > after or pid <= upto  # the cursor went past pid_max and started again


_RESERVED_PIDS = 300  # kernel/pid.c: a wrapped cursor starts again here
_EXPECTED = {errno.ENOENT, errno.ESRCH, errno.EACCES, errno.EPERM}  # gone, or another user's
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
