"""Moving a child's output from its pipe to a sink, without ever making the child wait on the disk.

Measured (docs/benchmarks.md, "Log throughput"): the pipe's 64 KiB kernel buffer, not the sink, is what
slows a fast writer, so pipes should be grown to 1 MiB (`enlarge_pipe`; Linux, best effort).
"""

from __future__ import annotations

import sys
from typing import Protocol

import anyio
from anyio.abc import ByteReceiveStream

__all__ = ["ByteSink", "ByteSource", "ReceiveStreamSource", "enlarge_pipe", "enlarge_stream_pipe", "pump"]

PIPE_SIZE = 1 << 20  # Linux's default /proc/sys/fs/pipe-max-size: allowed without privileges


class ByteSource(Protocol):
    async def read(self, n: int) -> bytes: ...  # b"" at EOF (asyncio.StreamReader fits)


class ByteSink(Protocol):
    def write(self, data: bytes) -> None: ...  # never raises (LogSink)
    def flush(self) -> None: ...


class ReceiveStreamSource:
    """Adapts an anyio ByteReceiveStream (anyio's Process.stdout) to ByteSource."""

    def __init__(self, stream: ByteReceiveStream) -> None:
        self._stream = stream

    async def read(self, n: int) -> bytes:
        try:
            return await self._stream.receive(n)
        except (anyio.EndOfStream, anyio.ClosedResourceError):
            return b""


async def pump(source: ByteSource, sink: ByteSink, *, chunk_size: int = 1 << 20, coalesce_s: float = 0.0) -> None:
    """Copies `source` into `sink` until EOF, with reads as large as the pipe holds.

    Every chunk goes to the sink at once, written unbuffered: measured, a 1 MiB buffered file with no
    flush per chunk is no faster, so `tail` and the API always see the output as it comes.

    `coalesce_s`: after a small read, wait this long before the next one, so that a chatty child's
    many small writes are collected by the pipe into one read (2 ms cut our CPU 5x for a child writing
    200 MB in 8 KiB writes). Only for a pipe that holds that much output (`enlarge_pipe` succeeded):
    otherwise the child could block on a full pipe meanwhile. 0 reads again at once.

    Cancellation can only land while waiting, after the last chunk read has been written; the
    cancellation is then re-raised (as anyio requires), after a flush.
    """
    small = chunk_size // 4
    try:
        while data := await source.read(chunk_size):
            sink.write(data)
            # A read that found data never suspended: without this, a child that always has output
            # waiting would keep the event loop (the API, other services' pumps) from running at all.
            await anyio.lowlevel.checkpoint()
            if coalesce_s > 0 and len(data) < small:
                await anyio.sleep(coalesce_s)
    finally:
        sink.flush()


def enlarge_pipe(fd: int, size: int = PIPE_SIZE) -> int | None:
    """Grows a pipe's kernel buffer (Linux F_SETPIPE_SZ) so a fast child rarely fills it while the
    pump is busy; returns the new size, or None where unsupported or refused (best effort)."""
    if sys.platform == "win32":  # no fcntl (this line also keeps `mypy --platform win32` clean)
        return None
    try:
        import fcntl
    except ImportError:
        return None
    op = getattr(fcntl, "F_SETPIPE_SZ", None)
    if op is None:
        return None
    try:
        return int(fcntl.fcntl(fd, op, size))
    except OSError:
        return None


def enlarge_stream_pipe(stream: object, size: int = PIPE_SIZE) -> int | None:
    """`enlarge_pipe` for the read end behind an anyio process stream (or an asyncio StreamReader).

    asyncio exposes the pipe only through its transport; the attributes are looked up defensively, so
    another backend or a future version just makes this a no-op (None), never an error.
    """
    reader = getattr(stream, "_stream", stream)  # anyio's StreamReaderWrapper holds the StreamReader
    transport = getattr(reader, "_transport", None)
    get_extra_info = getattr(transport, "get_extra_info", None)
    pipe = get_extra_info("pipe") if callable(get_extra_info) else None
    fileno = getattr(pipe, "fileno", None)
    if not callable(fileno):
        return None
    try:
        fd = fileno()
    except (OSError, ValueError):
        return None
    return enlarge_pipe(fd, size) if isinstance(fd, int) else None
