"""A service's log over HTTP: the last N lines, and a live follow as Server-Sent Events.

A follower listens on the service's LogSink, not on a file, so it sees every line the child writes
whatever the rotation does, and across child restarts. The tail is read and the listener added in the
same synchronous step: the sink is written only from the event loop, so no line falls in between.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from orchestrator.logs.tail import tail_lines
from orchestrator.types import LogSource

__all__ = ["HEARTBEAT_S", "MAX_LINES", "Followers", "read_tail", "sse_data"]

MAX_LINES = 10_000  # the most lines one request may ask for
HEARTBEAT_S = 15.0  # a comment line this often keeps proxies open and finds clients that went away
_BUFFER_CHUNKS = 1024  # sink writes queued per follower; past this a slow client skips output (and is told)
_MAX_PARTIAL = 64 * 1024  # a "line" without a newline is sent once it grows this long


def read_tail(source: LogSource, n: int) -> list[str]:
    return [_text(line) for line in tail_lines(source.rotated_paths(), n)]


def sse_data(lines: list[str], event: str | None = None) -> bytes:
    head = f"event: {event}\n" if event else ""
    return "".join(f"{head}data: {line}\n\n" for line in lines).encode("utf-8")


def _text(line: bytes) -> str:
    # SSE ends a field at \r too: a stray carriage return must not split a line.
    return line.decode("utf-8", errors="replace").replace("\r", "")


class Followers:
    """Every live follower, so that a server shutdown can end them all at once (`close_all`)."""

    def __init__(self) -> None:
        self._open: set[MemoryObjectSendStream[bytes]] = set()
        self.closed = False

    def close_all(self) -> None:
        self.closed = True
        for send in list(self._open):
            send.close()  # the follower's receive ends: its response finishes
        self._open.clear()

    @property
    def count(self) -> int:
        return len(self._open)

    async def follow(self, source: LogSource, n: int) -> AsyncIterator[bytes]:
        """SSE chunks: the last `n` lines, then each new line as written, until the client goes or close_all."""
        send, receive = anyio.create_memory_object_stream[bytes](_BUFFER_CHUNKS)
        skipped = 0

        def listener(data: bytes) -> None:
            nonlocal skipped
            try:
                send.send_nowait(data)
            except anyio.WouldBlock:
                skipped += len(data)
            except (anyio.ClosedResourceError, anyio.BrokenResourceError):
                pass

        lines = read_tail(source, n)
        source.add_listener(listener)
        self._open.add(send)
        if self.closed:
            send.close()
        try:
            yield sse_data(lines) if lines else b": following\n\n"
            async for chunk in _lines_of(receive):
                if skipped:
                    yield sse_data([f"{skipped} bytes skipped: the client read too slowly"], event="skipped")
                    skipped = 0
                yield chunk
        finally:
            source.remove_listener(listener)
            self._open.discard(send)
            send.close()
            receive.close()


async def _lines_of(receive: MemoryObjectReceiveStream[bytes]) -> AsyncIterator[bytes]:
    """SSE-encoded complete lines from the raw chunks; a heartbeat comment when idle; ends at end of stream."""
    partial = b""
    while True:
        data = b""
        with anyio.move_on_after(HEARTBEAT_S):
            try:
                data = await receive.receive()
            except anyio.EndOfStream:
                return
        if not data:
            yield b": keepalive\n\n"
            continue
        data += _drain(receive)
        pieces = (partial + data).split(b"\n")
        partial = pieces.pop()
        if len(partial) > _MAX_PARTIAL:
            pieces.append(partial)
            partial = b""
        if pieces:
            yield sse_data([_text(p) for p in pieces])


def _drain(receive: MemoryObjectReceiveStream[bytes], limit: int = 1 << 20) -> bytes:
    """What is already queued, up to `limit` bytes: one response chunk for a burst of writes."""
    parts: list[bytes] = []
    size = 0
    while size < limit:
        try:
            part = receive.receive_nowait()
        except (anyio.WouldBlock, anyio.EndOfStream):
            break
        parts.append(part)
        size += len(part)
    return b"".join(parts)
