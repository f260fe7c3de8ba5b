"""One supervisor per state directory: an OS lock on `{state_dir}/supervisor.lock` for the process's life.

Rule: `orchestrator run` takes this lock before it reaps, spawns, opens its log or binds the API; a
second supervisor on the same directory stops there with `StateDirInUse`, naming the holder, and has
started and killed nothing. The OS drops the lock when its holder dies, SIGKILL included, so a stale
file never blocks a start: only a live holder does.

POSIX: `fcntl.flock` on the open file (per open file description: a second open in the same process
is refused too). Windows: `msvcrt.locking` on one byte far past the holder's text, because a locked
range cannot be read by other processes there and the second supervisor must read who holds it.

The file holds one JSON object: `pid`, `started` (local wall clock, for humans) and `api` (the
configured address at first, the real URL once the API listens).
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from orchestrator.errors import OrchestratorError

if sys.platform == "win32":  # pragma: no cover - exercised on Windows CI
    import msvcrt
else:
    import fcntl

__all__ = ["LOCK_FILE", "StateDirInUse", "StateLock"]

LOCK_FILE = "supervisor.lock"
_WIN_LOCK_OFFSET = 1 << 20  # the locked byte on Windows: past any holder text we write (< 1 KiB)


class StateDirInUse(OrchestratorError):
    """Another live supervisor holds this state directory's lock."""

    def __init__(self, state_dir: Path, holder: dict[str, Any]) -> None:
        self.state_dir = state_dir
        self.holder = holder
        pid = holder.get("pid", "unknown")
        detail = ", ".join(f"{k} {holder[k]}" for k in ("started", "api") if holder.get(k))
        super().__init__(
            f"state directory {state_dir} is in use by orchestrator pid {pid}" + (f" ({detail})" if detail else "")
        )


class StateLock:
    """A held lock; `note()` updates what the file tells a second supervisor; `release()` is idempotent."""

    def __init__(self, path: Path, fd: int, holder: dict[str, Any]) -> None:
        self.path = path
        self.holder = holder
        self._fd: int | None = fd
        self._write()

    @classmethod
    def acquire(cls, state_dir: Path, *, api: str) -> StateLock:
        """Lock `state_dir` (created if missing) or raise StateDirInUse; OrchestratorError if it cannot
        be created or opened."""
        path = state_dir / LOCK_FILE
        try:
            state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)  # owner-only, like the token in it
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise OrchestratorError(f"cannot lock the state directory {state_dir}: {exc.strerror or exc}") from exc
        if not _try_lock(fd):
            os.close(fd)
            raise StateDirInUse(state_dir, _read_holder(path))
        started = time.strftime("%Y-%m-%d %H:%M:%S")
        return cls(path, fd, {"pid": os.getpid(), "started": started, "api": api})

    def note(self, **fields: Any) -> None:
        """Update the holder's description (the API's real URL once it listens)."""
        self.holder.update(fields)
        self._write()

    def release(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)  # closing the descriptor drops the lock on both platforms

    def _write(self) -> None:
        if self._fd is None:
            return
        data = json.dumps(self.holder).encode()
        # A failure here only makes the second supervisor's message vaguer; the lock itself holds.
        with contextlib.suppress(OSError):
            os.ftruncate(self._fd, 0)
            os.lseek(self._fd, 0, os.SEEK_SET)
            os.write(self._fd, data)


def _try_lock(fd: int) -> bool:
    if sys.platform == "win32":  # pragma: no cover - exercised on Windows CI
        os.lseek(fd, _WIN_LOCK_OFFSET, os.SEEK_SET)
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True
    else:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True


def _read_holder(path: Path) -> dict[str, Any]:
    """What the holder wrote; {} if it is unreadable or half-written (its message then says less)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}
