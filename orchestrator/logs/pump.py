"""Moving a child's output from its pipe to a sink, without ever making the child wait on the disk.

Measured (docs/benchmarks.md, "Log throughput"): the pipe's 64 KiB kernel buffer, not the sink, is what
slows a fast writer, so pipes should be grown to 1 MiB (`platform.pipes.enlarge_pipe`; Linux, best effort).

Rule: a chatty stream is read in batches, a quiet one at once. A child that flushes every line (a
progress bar, a request log) woke the pump for each line: with 10 such children at 100 lines/s the
supervisor spent 1.65x supervisord's CPU (issue 16). So once a small read has waited less than
`batch_s` (50 ms) for its data, the stream is chatty: after each read under 16 KiB the pump sleeps
`batch_s` and the pipe collects the next lines, one wake-up per 50 ms instead of one per line. A read
that waits `batch_s` or more (the stream went quiet), or one of 16 KiB or more (a busy writer, which
would fill the pipe during a nap: 16 KiB in 50 ms is a quarter of the smallest, 64 KiB, pipe), ends
that, and so does a run of 20 naps (1 s), after which a read must wait for its data again to go on.
A line after a quiet spell, and the one right after it, are read at once; a line of a chatty stream
waits at most 50 ms.
"""

from __future__ import annotations

from typing import Protocol

import anyio
from anyio.abc import ByteReceiveStream

from orchestrator.types import ByteSource

__all__ = ["BATCH_S", "ByteSink", "ByteSource", "ReceiveStreamSource", "pump"]

BATCH_S = 0.05  # the longest a line of a chatty stream waits in the pipe; see the module docstring
_BATCH_MAX = 16 * 1024  # a read this large ends batching: 320 KB/s and more never nap
_WAITED_S = 0.0005  # a read that took longer suspended for its data: a wake-up, not a ready pipe
_NAPS = 20  # then a wake-up must show it again (1 s): a read the OS happened to delay starts 1 s at most


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


async def pump(
    source: ByteSource, sink: ByteSink, *, chunk_size: int = 1 << 20, coalesce_s: float = 0.0, batch_s: float = BATCH_S
) -> None:
    """Copies `source` into `sink` until EOF, with reads as large as the pipe holds.

    Every chunk goes to the sink at once, written unbuffered: measured, a 1 MiB buffered file with no
    flush per chunk is no faster, so `tail` and the API always see the output as it comes.

    `coalesce_s`: after a small read, wait this long before the next one, so that a chatty child's
    many small writes are collected by the pipe into one read (2 ms cut our CPU 5x for a child writing
    200 MB in 8 KiB writes). Only for a pipe that holds that much output (`enlarge_pipe` succeeded):
    otherwise the child could block on a full pipe meanwhile. 0 reads again at once.

    `batch_s`: the same for a stream that is chatty right now (see the module docstring); 0 turns it
    off.

    Cancellation can only land while waiting, after the last chunk read has been written; the
    cancellation is then re-raised (as anyio requires), after a flush.
    """
    small = chunk_size // 4
    naps = 0  # naps left before the stream must show again that it is chatty
    try:
        while True:
            before = anyio.current_time()
            data = await source.read(chunk_size)
            waited = anyio.current_time() - before
            if not data:
                break
            sink.write(data)
            # A read that found data never suspended: without this, a child that always has output
            # waiting would keep the event loop (the API, other services' pumps) from running at all.
            await anyio.lowlevel.checkpoint()
            if coalesce_s > 0:
                if len(data) < small:
                    await anyio.sleep(coalesce_s)
            elif batch_s > 0:
                # A batch of 16 KiB or more is a busy writer, not a chatty one: it would fill the pipe
                # during a nap and wait on it (measured: 2x the time for a child writing 570 MB/s).
                if len(data) >= _BATCH_MAX or waited >= batch_s:
                    naps = 0
                elif waited > _WAITED_S and naps == 0:  # this small read was a wake-up: chatty
                    naps = _NAPS
                if naps > 0:
                    naps -= 1
                    await anyio.sleep(batch_s)
    finally:
        sink.flush()
