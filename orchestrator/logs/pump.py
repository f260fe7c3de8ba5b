"""Moving a child's output from its pipe to a sink, without ever making the child wait on the disk.

Measured (docs/benchmarks.md, "Log throughput"): the pipe's 64 KiB kernel buffer, not the sink, is what
slows a fast writer, so pipes should be grown to 1 MiB (`platform.pipes.enlarge_pipe`; Linux, best effort).
"""

from __future__ import annotations

from typing import Protocol

import anyio
from anyio.abc import ByteReceiveStream

from orchestrator.types import ByteSource

__all__ = ["ByteSink", "ByteSource", "ReceiveStreamSource", "pump"]


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
