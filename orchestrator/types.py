"""The seams shared by several layers, at the bottom of them all: Protocols and aliases only.

A child's output stream (ByteSource: the platform makes it, the log pump reads it) and one stream of a
service's logs (LogSource: logs/ implements it, the API reads it). Nothing here imports the rest of
the package; what the API needs from the supervisor is in api/protocols.py.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Protocol, runtime_checkable

__all__ = ["ByteSource", "FdSource", "LogListener", "LogSource"]

LogListener = Callable[[bytes], None]


class ByteSource(Protocol):
    async def read(self, n: int) -> bytes: ...  # b"" at EOF (asyncio.StreamReader fits)


@runtime_checkable
class FdSource(ByteSource, Protocol):
    """A ByteSource that is a non-blocking pipe end the event loop can watch (POSIX's PipeSource): the
    pump reads it from a reader callback into one reused buffer instead of awaiting `read`."""

    def fileno(self) -> int: ...

    def readinto(self, buf: memoryview, /) -> int | None:
        """Bytes read into `buf`; 0 at EOF; None when the pipe is empty for now. Never blocks."""
        ...

    def close(self) -> None: ...


class LogSource(Protocol):
    """One stream of one service's output: its files on disk and its live writes (a LogSink)."""

    @property
    def bytes_written(self) -> int: ...

    @property
    def bytes_dropped(self) -> int: ...

    def rotated_paths(self) -> list[Path]:
        """[current, .1, .2, ...] that exist, newest first."""
        ...

    def add_listener(self, fn: LogListener) -> None:
        """`fn` gets every chunk written from now on, on the event loop; it must not block."""
        ...

    def remove_listener(self, fn: LogListener) -> None: ...
