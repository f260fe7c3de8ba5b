"""A service's log over HTTP: the last N lines, and a live follow as Server-Sent Events.

A follower listens on the service's LogSink, not on a file, so it sees every line the child writes
whatever the rotation does, and across child restarts. The tail's files are opened and the listener
added in the same synchronous step (the sink is written only from the event loop, so no line falls in
between); the tail is then read from those open files, up to the sizes they had, in a worker thread.

Each follower's backlog is capped in bytes (FOLLOWER_BUFFER_BYTES). Before, it was 1024 chunks of up
to 1 MiB: two followers that never read drove the supervisor's RSS from 44 to 327 MB. Past the cap a
follower's new output is dropped (counted) until it has taken what was queued; it then gets one
`event: dropped` message, `dropped N bytes: ...`, and goes on from the live position. At most
MAX_FOLLOWERS follow at once, so all backlogs together stay under 256 MiB.
"""

from __future__ import annotations

from collections import deque
from collections.abc import AsyncIterator

import anyio

from orchestrator.logs.tail import open_tail, tail_budget
from orchestrator.logs.tail import read_tail as read_tail_files
from orchestrator.platform.limits import release_free_memory
from orchestrator.types import LogSource

__all__ = [
    "FOLLOWER_BUFFER_BYTES",
    "HEARTBEAT_S",
    "MAX_FOLLOWERS",
    "MAX_LINES",
    "Followers",
    "read_tail",
    "sse_data",
    "tail_text",
]

MAX_LINES = 10_000  # the most lines one request may ask for
HEARTBEAT_S = 15.0  # a comment line this often keeps proxies open and finds clients that went away
FOLLOWER_BUFFER_BYTES = 4 << 20  # output queued for one follower; past this its new output is dropped
MAX_FOLLOWERS = 64  # followers at once (all services): at most 256 MiB of backlogs in all
_MAX_PARTIAL = 64 * 1024  # a "line" without a newline is sent once it grows this long
_CHUNK = 1 << 20  # at most this much queued output goes into one response chunk


def read_tail(source: LogSource, n: int) -> list[str]:
    """The last `n` lines as text, within tail.tail_budget(n) bytes. Blocking: see `tail_text`."""
    budget = tail_budget(n)
    return _texts(read_tail_files(open_tail(source.rotated_paths(), budget), n, budget))


async def tail_text(source: LogSource, n: int) -> list[str]:
    """`read_tail` in a worker thread: no log, however large, stalls the event loop (the API)."""
    return await anyio.to_thread.run_sync(read_tail, source, n)


def sse_data(lines: list[str], event: str | None = None) -> bytes:
    head = f"event: {event}\n" if event else ""
    return "".join(f"{head}data: {line}\n\n" for line in lines).encode("utf-8")


def _texts(lines: list[bytes]) -> list[str]:
    return [_text(line) for line in lines]


def _text(line: bytes) -> str:
    # SSE ends a field at \r too: a stray carriage return must not split a line.
    return line.decode("utf-8", errors="replace").replace("\r", "")


class _Backlog:
    """One follower's queued output: at most `limit` bytes, then a counted drop until it catches up."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.size = 0
        self.dropped = 0  # bytes not queued since the backlog was last full; reported once taken
        self.closed = False
        self._chunks: deque[bytes] = deque()
        self._wake = anyio.Event()

    def put(self, data: bytes) -> None:
        if self.closed:
            return
        if self.dropped or self.size + len(data) > self.limit:
            self.dropped += len(data)
        else:
            self._chunks.append(data)
            self.size += len(data)
        self._wake.set()

    def close(self) -> None:
        self.closed = True
        self._chunks.clear()
        self.size = 0
        self._wake.set()

    def take(self, limit: int) -> bytes:
        """What is queued, up to about `limit` bytes (whole chunks); b"" if nothing."""
        parts: list[bytes] = []
        size = 0
        while self._chunks and size < limit:
            part = self._chunks.popleft()
            parts.append(part)
            size += len(part)
        self.size -= size
        return b"".join(parts)

    def take_dropped(self) -> int:
        """Once the queue is empty: the bytes dropped meanwhile (then counting starts again)."""
        if self._chunks or not self.dropped:
            return 0
        dropped, self.dropped = self.dropped, 0
        return dropped

    async def wait(self) -> None:
        if not self._chunks and not self.dropped and not self.closed:
            await self._wake.wait()
        self._wake = anyio.Event()


class Followers:
    """Every live follower, so that a server shutdown can end them all at once (`close_all`)."""

    def __init__(self, buffer_bytes: int = FOLLOWER_BUFFER_BYTES, max_followers: int = MAX_FOLLOWERS) -> None:
        self._open: set[_Backlog] = set()
        self.buffer_bytes = buffer_bytes
        self.max_followers = max_followers
        self.closed = False

    @property
    def full(self) -> bool:
        """No room for another follower (the API answers 503): checked before a follow starts."""
        return len(self._open) >= self.max_followers

    def close_all(self) -> None:
        self.closed = True
        for backlog in list(self._open):
            backlog.close()  # the follower's loop ends: its response finishes
        self._open.clear()

    @property
    def count(self) -> int:
        return len(self._open)

    @property
    def queued_bytes(self) -> int:
        return sum(b.size for b in self._open)

    async def follow(self, source: LogSource, n: int) -> AsyncIterator[bytes]:
        """SSE chunks: the last `n` lines, then each new line as written, until the client goes or close_all."""
        backlog = _Backlog(self.buffer_bytes)
        budget = tail_budget(n)
        files = open_tail(source.rotated_paths(), budget) if n > 0 else None
        source.add_listener(backlog.put)
        self._open.add(backlog)
        if self.closed:
            backlog.close()
        try:
            lines: list[str] = []
            if files is not None:
                lines = _texts(await anyio.to_thread.run_sync(read_tail_files, files, n, budget))
            yield sse_data(lines) if lines else b": following\n\n"
            async for chunk in _lines_of(backlog):
                yield chunk
        finally:
            if files is not None:
                files.close()
            source.remove_listener(backlog.put)
            self._open.discard(backlog)
            backlog.close()
            release_free_memory()  # its backlog's chunks were freed: give the pages back


async def _lines_of(backlog: _Backlog) -> AsyncIterator[bytes]:
    """SSE-encoded complete lines from the queued chunks; a heartbeat comment when idle; ends at close."""
    partial = b""
    while not backlog.closed:
        with anyio.move_on_after(HEARTBEAT_S) as idle:
            await backlog.wait()
        if idle.cancelled_caught:
            yield b": keepalive\n\n"
            continue
        data = backlog.take(_CHUNK)
        pieces = (partial + data).split(b"\n")
        partial = pieces.pop()
        if len(partial) > _MAX_PARTIAL:
            pieces.append(partial)
            partial = b""
        dropped = backlog.take_dropped()
        if dropped and partial:  # what follows the gap is not the rest of this line
            pieces.append(partial)
            partial = b""
        if pieces:
            yield sse_data(_texts(pieces))
        if dropped:
            yield sse_data([f"dropped {dropped} bytes: the client read too slowly"], event="dropped")
