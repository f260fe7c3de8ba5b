"""Children's output to rotating log files: the sink (one file per stream); the pump is re-exported here.

The pump never makes a child wait on the disk: it reads as much as the pipe holds and hands it to the
sink, which never raises. Disk trouble becomes a counted drop episode, reported once, and writing
resumes (the file is reopened) on the first write that works again.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import datetime
from mmap import mmap
from pathlib import Path
from time import monotonic
from typing import BinaryIO

import structlog

from orchestrator.config.spec import LogSpec
from orchestrator.logs.files import (
    Fallback,
    Remove,
    Rename,
    configured_paths,
    copy_truncate,
    numbered_backups,
    open_append,
    remove_file,
    shift_backups,
)
from orchestrator.logs.pump import ReceiveStreamSource, pump

__all__ = [
    "Buffer",
    "ErrorCallback",
    "LogSink",
    "ReceiveStreamSource",
    "pump",
]

ErrorCallback = Callable[[str, OSError | None], None]
Listener = Callable[[bytes], None]
Opener = Callable[[Path], BinaryIO]
Buffer = bytes | bytearray | mmap  # what `write_buffer` takes: searched in place (find, rfind), never copied

CHECK_EVERY_S = 1.0  # how often (at most) a write checks that the open file is still at its path
_RETRY_AFTER_S = 1.0  # a failed rotation is retried at a line boundary after this long ...
_RETRY_FRACTION = 10  # ... or after max_size / this many more bytes, whichever comes first


def _stamp_prefix() -> bytes:
    return datetime.now().astimezone().isoformat(timespec="milliseconds").encode("ascii") + b" "


class LogSink:
    """One append-only rotating file; lives as long as the service, across child restarts.

    Rotation happens between lines, with one exception that bounds every file: a line that reaches
    max_size is cut there and goes on in the next file, unless it began after the file's start and
    ends in the same write (it is then finished in this file). So no file exceeds max_size by more than
    one write (one pipe read: at most the pump's 1 MiB chunk, plus timestamps if they are on).
    Everything runs on the caller's thread (the event loop): writes go to the page cache and are cheap.
    `on_error(kind, exc)` gets "write_failed" once when bytes start being dropped, "write_recovered"
    when writing works again (`episode_dropped` then says how much was lost), and "rotate_failed" once
    per episode of failing rotations (writing then continues in the current file, retried later).

    A file deleted or moved away while open (the log directory removed, a cleanup script) is noticed
    at the first write after CHECK_EVERY_S and at rotation, by comparing the open file's inode with the
    path's (one fstat and one lstat a second): the file and its directory are recreated, "reopened"
    is reported, and the bytes written since the previous check (gone with the old inode) are
    counted as dropped (`episode_dropped`). Before, writes went on into the deleted inode silently
    until the next rotation, and forever with max_size 0.
    """

    def __init__(
        self,
        path: Path,
        spec: LogSpec,
        *,
        on_error: ErrorCallback | None = None,
        opener: Opener = open_append,
        rename: Rename = os.replace,
        remove: Remove = remove_file,
        fallback: Fallback | None = copy_truncate,
        clock: Callable[[], float] = monotonic,
    ) -> None:
        self.path = path
        self.bytes_written = 0
        self.bytes_dropped = 0
        self.episode_dropped = 0  # bytes lost in the current (or last) drop episode
        self.last_error: OSError | None = None
        self._spec = spec
        self._on_error = on_error
        self._opener, self._rename, self._remove, self._clock = opener, rename, remove, clock
        self._fallback = fallback  # when the current file cannot be renamed (held open on Windows)
        self._listeners: list[Listener] = []
        self._file: BinaryIO | None = None
        self._size = 0  # of the current file, known once it is open
        self._at_boundary = True  # the file ends on a newline (or is empty): rotation is allowed
        self._line_at = 0  # where in the current file the unfinished line began (0: at its start)
        self._line_start = True  # the child's stream is at a line start: the next byte gets a timestamp
        self._dropping = False
        self._rotate_failing = False
        self._retry_size = 0
        self._retry_time = 0.0
        self._next_check = 0.0
        self._since_check = 0  # bytes written since the file was last seen at its path

    # -- public -------------------------------------------------------------------------------------

    def write(self, data: bytes) -> None:
        """Appends `data` (rotating as needed), then gives it to the listeners, even if the disk refused
        it (live followers still see the output). Never raises."""
        self.write_buffer(data, len(data))

    def write_buffer(self, buf: Buffer, n: int) -> None:
        """`write(buf[:n])` without copying buf[:n] (the pump reads every pipe into one reused buffer:
        a fresh 1 MiB bytes a read costs a page fault per 4 KiB, see logs/pump.py). Keeps no reference
        to `buf` once it returns; listeners get their own bytes."""
        if n <= 0:
            return
        data: Buffer = buf
        if self._spec.timestamps:
            data = self._stamp(_as_bytes(buf, n))
            n = len(data)
        if self._file is not None and self._clock() >= self._next_check:
            self._check_in_place()
        if self._ensure_open() is None:
            self._drop(n, self.last_error)
        else:
            self._write_rotating(data, n)
        if self._listeners:
            chunk = _as_bytes(data, n)
            for fn in tuple(self._listeners):
                self._notify(fn, chunk)

    def flush(self) -> None:
        if self._file is not None:
            try:
                self._file.flush()
            except OSError as exc:
                self._fail_file(exc, 0)

    def reconfigure(self, path: Path, spec: LogSpec) -> None:
        """Applies a reloaded config: the next write opens `path` (maybe the same file) with `spec`."""
        self._close_file()
        if path != self.path:
            self._at_boundary = True
        self.path, self._spec = path, spec
        self._rotate_failing = False

    def report_to(self, on_error: ErrorCallback | None) -> None:
        """Where failures and reopenings are reported from now on (None: the supervisor's log)."""
        self._on_error = on_error

    def close(self) -> None:
        """Releases the file handle; a later write would reopen it."""
        self._close_file()

    def add_listener(self, fn: Listener) -> None:
        self._listeners.append(fn)

    def remove_listener(self, fn: Listener) -> None:
        if fn in self._listeners:
            self._listeners.remove(fn)

    def rotated_paths(self) -> list[Path]:
        """[path, path.1, ... path.backups] that exist as regular files (never a link), newest first."""
        return configured_paths(self.path, self._spec.backups)

    # -- writing ------------------------------------------------------------------------------------

    def _stamp(self, data: bytes) -> bytes:
        # One prefix per line start, even for a line that arrives in two reads: the state carries over.
        prefix = _stamp_prefix()
        out = data.replace(b"\n", b"\n" + prefix)
        if self._line_start:
            out = prefix + out
        self._line_start = data.endswith(b"\n")
        return out[: -len(prefix)] if self._line_start else out

    def _write_rotating(self, data: Buffer, end: int) -> None:
        pos, limit = 0, self._spec.max_size
        while pos < end:
            room = limit - self._size
            if limit <= 0 or end - pos <= room or self._rotation_blocked():
                self._put(data, pos, end, end)
                return
            # The last newline that still fits: the next line would not, so rotate after it.
            cut = data.rfind(b"\n", pos, pos + room) if room > 0 else -1
            if cut < 0 and self._at_boundary and self._size > 0:
                self._rotate()  # the next line does not fit: start it in a fresh file
                continue
            if cut < 0:
                cut = self._cut_in_line(data, pos, room, end)
                if cut < 0:  # the file is full in the middle of a line: the next file continues it
                    self._rotate()
                    continue
            if not self._put(data, pos, cut + 1, end):
                return
            pos = cut + 1

    def _cut_in_line(self, data: Buffer, pos: int, room: int, end: int) -> int:
        """Where to end this file's part of a line that does not fit in `room`; -1: rotate first.

        A line that began after the file's start (it may well fit in a file of its own) is finished
        here if its newline is in this write: the file then exceeds max_size by less than one write.
        Otherwise the line is cut where the file reaches max_size.
        """
        if self._line_at > 0:
            newline = data.find(b"\n", pos, end)
            if newline >= 0:
                return newline
        return pos + room - 1 if room > 0 else -1

    def _put(self, data: Buffer, start: int, stop: int, end: int) -> bool:
        """Writes data[start:stop] whole; on failure drops it and the rest of data[:end]."""
        f = self._file if self._file is not None else self._ensure_open()
        if f is None:
            self._drop(end - start, self.last_error)
            return False
        whole = isinstance(data, bytes) and not start and stop == len(data)
        chunk = data if whole else memoryview(data)[start:stop]
        done, size = 0, stop - start
        try:
            while done < size:
                n = f.write(chunk[done:] if done else chunk)
                if not n:
                    raise OSError("the file accepted no bytes")
                done += n
        except OSError as exc:
            self._account(data, start, done)
            self._fail_file(exc, end - start - done)
            return False
        self._account(data, start, done)
        if self._dropping:
            self._dropping = False
            self._report("write_recovered", None)
        return True

    def _account(self, data: Buffer, start: int, done: int) -> None:
        if not done:
            return
        self.bytes_written += done
        self._since_check += done
        before, self._size = self._size, self._size + done
        self._at_boundary = data[start + done - 1] == 0x0A
        newline = data.rfind(b"\n", start, start + done)
        if newline >= 0:
            self._line_at = before + newline - start + 1  # where the unfinished line began
        elif before == 0:
            self._line_at = 0  # the file starts inside a line (one cut at max_size)

    def _notify(self, fn: Listener, data: bytes) -> None:
        try:
            fn(data)
        except Exception:
            # A broken follower (a gone API client) must not break logging: it is dropped.
            structlog.get_logger(__name__).exception("log listener failed; removed", path=str(self.path))
            self.remove_listener(fn)

    # -- files and failures -------------------------------------------------------------------------

    def _ensure_open(self) -> BinaryIO | None:
        if self._file is not None:
            return self._file
        try:
            f = self._opener(self.path)
        except OSError as exc:
            self.last_error = exc
            return None
        try:
            self._size = f.seek(0, os.SEEK_END)
        except OSError as exc:
            self.last_error = exc
            f.close()
            return None
        self._file = f
        self._since_check, self._next_check = 0, self._clock() + CHECK_EVERY_S
        return f

    def _check_in_place(self) -> bool:
        """Is the open file still the one at `path`? If it was deleted or moved away (a cleanup script,
        the directory removed), what went into it since the last check is counted as dropped, the
        file is closed (the next write recreates directory and file) and "reopened" is reported."""
        self._next_check = self._clock() + CHECK_EVERY_S
        f = self._file
        if f is None:
            return True
        try:
            mine = os.fstat(f.fileno())
            there = os.lstat(self.path)
            same = (mine.st_ino, mine.st_dev) == (there.st_ino, there.st_dev)
        except OSError:
            same = False
        if same:
            self._since_check = 0
            return True
        lost, self._since_check = self._since_check, 0
        self.bytes_dropped += lost
        self._close_file()
        self._size = self._line_at = 0
        self._at_boundary = True
        self.episode_dropped = lost
        self._report("reopened", None)
        return False

    def _close_file(self) -> None:
        f, self._file = self._file, None
        if f is not None:
            try:
                f.close()
            except OSError as exc:
                self.last_error = exc

    def _fail_file(self, exc: OSError, lost: int) -> None:
        self.last_error = exc
        self._close_file()  # reopened by the next write: the disk may be back, the file replaced
        self._drop(lost, exc)

    def _drop(self, n: int, exc: OSError | None) -> None:
        starts = not self._dropping
        if starts:
            self._dropping, self.episode_dropped = True, 0
        self.episode_dropped += n
        self.bytes_dropped += n
        if starts:
            self._report("write_failed", exc)

    def _rotation_blocked(self) -> bool:
        if not self._rotate_failing:
            return False
        return self._size < self._retry_size and self._clock() < self._retry_time

    def _rotate(self) -> None:
        if not self._check_in_place():
            return  # moved away or deleted: the next write starts a new file, nothing to rotate
        self._close_file()  # Windows cannot rename a file while we hold it open
        try:
            shift_backups(self.path, self._spec.backups, rename=self._rename, remove=self._remove,
                          fallback=self._fallback)
        except OSError as exc:
            self.last_error = exc
            # Keep appending to the current file; retry at a later line boundary.
            self._retry_size = self._size + max(1, self._spec.max_size // _RETRY_FRACTION)
            self._retry_time = self._clock() + _RETRY_AFTER_S
            if not self._rotate_failing:
                self._rotate_failing = True
                self._report("rotate_failed", exc)
            return
        self._rotate_failing = False
        self._size = self._line_at = 0
        self._at_boundary = True
        for _, extra in numbered_backups(self.path)[self._spec.backups :]:
            extra.unlink(missing_ok=True)  # left over from a larger `backups` before a reload

    def _report(self, kind: str, exc: OSError | None) -> None:
        if self._on_error is None:
            structlog.get_logger(__name__).warning(
                "log " + kind.replace("_", " "),
                path=str(self.path),
                error=str(exc) if exc else None,
                dropped=self.episode_dropped,
            )
            return
        try:
            self._on_error(kind, exc)
        except Exception:
            structlog.get_logger(__name__).exception("log on_error callback failed", path=str(self.path))


def _as_bytes(data: Buffer, n: int) -> bytes:
    if isinstance(data, bytes):
        return data if len(data) == n else data[:n]
    return bytes(memoryview(data)[:n])
