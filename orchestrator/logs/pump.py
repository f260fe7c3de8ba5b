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

Rule: a POSIX pipe is read by an event-loop reader callback, with `os.readv` into one reused buffer
that the sink writes from in place (`LogSink.write_buffer`). Measured side by side (bench/pump_cpu.py:
the pump's own CPU for children writing 200 MB each in 100-byte lines, 1000 a write, 10 MB rotation;
a fresh process per run, medians of 5; two runs on the shared 2-core box, at load 12-20 and 5-8):

                                              1 child           2 children      page faults, 1 child
    await read(1 MiB), before issue 16        0.346 / 0.282 s   0.450 / 0.616 s   21,400 / 25,400
    the same coroutine, readv, reused buffer  0.287 / 0.215 s   0.389 / 0.437 s      740 / 260
    reader callback, readv (kept)             0.239 / 0.176 s   0.320 / 0.321 s      730 / 260
    a thread per stream, blocking readv       0.205 / 0.122 s   0.298 / 0.259 s      750 / 260
    `cat` (its own CPU)                       0.145 / 0.108 s   0.225 / 0.229 s

Where it went: a fresh 1 MiB bytes per read is a fresh mapping from glibc (the read shrinks it before
it is freed, so the allocator's mmap threshold never rises), and the kernel faults in and zeroes a
page per 4 KiB read: half the pump's system time. The awaited read also cost, per read, a future,
an epoll_ctl pair (anyio's wait_readable), an EAGAIN and two more turns of the loop (the task's
wake-up and its checkpoint); the callback costs one turn and nothing else, and a pipe that always
has data still lets the loop run between two reads. py-spy on the callback: what is left is the
system calls (the file write, the pipe read, epoll_wait), not Python. The thread per stream was
cheaper again (14-31% with one child, 7-19% with two) but is not used: its sink writes would run off
the loop (listeners are loop-only: followers, the dashboard's stream; every sink call from the loop,
a reload's reconfigure, a close, would need a lock), and a thread blocked in read() on a pipe that a
grandchild holds open cannot be woken by a stop without polling a second fd, a system call per read
again (not measured). In `orchestrator run` (bench/compare.py's log figure, in one run with main and
supervisord 4.3, load 4 to 8): manager CPU for 1 child 0.35 s (main) -> 0.20 s, supervisord 0.34 s,
and in a second run 0.35 -> 0.22 s, supervisord 0.28 s (medians of 5; below supervisord in all 10
rounds); for 2 children 0.52 -> 0.29 s, supervisord 0.47 s (medians of 3); 0 lines lost, duplicated
or split.

The buffer is one per thread, shared by every pump of that thread's loop: the read and the sink write
happen in one callback, nothing else runs between them, and the sink keeps no reference (listeners
get their own bytes). It is anonymous memory, resident only where a read filled it. Windows keeps the
awaited reads: its pipes are asyncio StreamReaders (the proactor loop has no add_reader).
"""

from __future__ import annotations

import asyncio
import threading
from mmap import mmap
from typing import Protocol

import anyio
from anyio.abc import ByteReceiveStream

from orchestrator.types import ByteSource, FdSource

__all__ = ["BATCH_S", "ByteSink", "ByteSource", "ReceiveStreamSource", "pump"]

BATCH_S = 0.05  # the longest a line of a chatty stream waits in the pipe; see the module docstring
CHUNK = 1 << 20  # the largest read: what an enlarged pipe holds (platform.pipes.PIPE_SIZE)
_BATCH_MAX = 16 * 1024  # a read this large ends batching: 320 KB/s and more never nap
_WAITED_S = 0.0005  # a read that took longer suspended for its data: a wake-up, not a ready pipe
_NAPS = 20  # then a wake-up must show it again (1 s): a read the OS happened to delay starts 1 s at most


class ByteSink(Protocol):
    def write(self, data: bytes) -> None: ...  # never raises (LogSink)
    def write_buffer(self, buf: mmap, n: int) -> None: ...  # write(buf[:n]); keeps no reference to buf
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


class _Pacing:
    """When to read again after a read: the batching rule of the module docstring, for one stream."""

    def __init__(self, chunk_size: int, coalesce_s: float, batch_s: float) -> None:
        self.small = chunk_size // 4
        self.coalesce_s, self.batch_s = coalesce_s, batch_s
        self.naps = 0  # naps left before the stream must show again that it is chatty

    def nap_after(self, n: int, waited: float) -> float:
        """Seconds to leave the pipe alone after a read of `n` bytes that waited `waited` for them."""
        if self.coalesce_s > 0:
            return self.coalesce_s if n < self.small else 0.0
        if self.batch_s <= 0:
            return 0.0
        # A batch of 16 KiB or more is a busy writer, not a chatty one: it would fill the pipe during a
        # nap and wait on it (measured: 2x the time for a child writing 570 MB/s).
        if n >= _BATCH_MAX or waited >= self.batch_s:
            self.naps = 0
        elif waited > _WAITED_S and self.naps == 0:  # this small read was a wake-up: chatty
            self.naps = _NAPS
        if self.naps > 0:
            self.naps -= 1
            return self.batch_s
        return 0.0


async def pump(
    source: ByteSource, sink: ByteSink, *, chunk_size: int = CHUNK, coalesce_s: float = 0.0, batch_s: float = BATCH_S
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

    An FdSource (a POSIX pipe) is read by an event-loop reader callback into this thread's reused
    buffer (see the module docstring); any other source by awaiting `read`. Either way cancellation
    can only land between reads, after the last chunk read has been written; it is then re-raised
    (as anyio requires), after a flush. The pump never closes a source it did not read to its end.
    """
    pacing = _Pacing(chunk_size, coalesce_s, batch_s)
    try:
        if isinstance(source, FdSource):
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:  # another anyio backend: no asyncio loop to watch the pipe
                loop = None
            if loop is not None:
                await _FdPump(loop, source, sink, pacing, min(chunk_size, CHUNK)).run()
                return
        await _pump_reads(source, sink, chunk_size, pacing)
    finally:
        sink.flush()


async def _pump_reads(source: ByteSource, sink: ByteSink, chunk_size: int, pacing: _Pacing) -> None:
    while True:
        before = anyio.current_time()
        data = await source.read(chunk_size)
        waited = anyio.current_time() - before
        if not data:
            return
        sink.write(data)
        # A read that found data never suspended: without this, a child that always has output
        # waiting would keep the event loop (the API, other services' pumps) from running at all.
        await anyio.lowlevel.checkpoint()
        nap = pacing.nap_after(len(data), waited)
        if nap > 0:
            await anyio.sleep(nap)


_local = threading.local()


def _buffer() -> tuple[mmap, memoryview]:
    """This thread's read buffer, shared by all its pumps: a read and its sink write run in one
    callback, so no other pump can touch it in between. Anonymous memory: only the pages a read has
    filled are resident (a service that logs a line at a time costs one page, not 1 MiB)."""
    buf: tuple[mmap, memoryview] | None = getattr(_local, "buffer", None)
    if buf is None:
        mm = mmap(-1, CHUNK)
        buf = _local.buffer = (mm, memoryview(mm))
    return buf


class _FdPump:
    """One pipe read from the event loop's reader callback: one read and one sink write per wake-up,
    no task switch, no re-registration of the fd between reads (only around a nap)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, source: FdSource, sink: ByteSink, pacing: _Pacing,
                 chunk_size: int) -> None:
        self._loop, self._source, self._sink, self._pacing = loop, source, sink, pacing
        self._fd = source.fileno()
        self._mm, view = _buffer()
        self._view = view[:chunk_size]
        self._done: asyncio.Future[None] = loop.create_future()
        self._timer: asyncio.TimerHandle | None = None
        self._since = 0.0  # when the pump began waiting for the pipe

    async def run(self) -> None:
        self._arm()
        try:
            await self._done
        finally:
            self._disarm()

    def _arm(self) -> None:
        self._timer = None
        self._since = self._loop.time()
        self._loop.add_reader(self._fd, self._readable)

    def _disarm(self) -> None:
        self._loop.remove_reader(self._fd)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _readable(self) -> None:
        try:
            n = self._source.readinto(self._view)
            if n is None:  # woken for nothing (another reader of the same pipe got there first)
                return
            if n == 0:
                self._disarm()
                self._source.close()
                self._done.set_result(None)
                return
            waited = self._loop.time() - self._since
            self._sink.write_buffer(self._mm, n)
            nap = self._pacing.nap_after(n, waited)
        except Exception as exc:  # a read error ends the pump with it, as awaiting read() would
            self._disarm()
            if not self._done.done():
                self._done.set_exception(exc)
            return
        if nap > 0:
            self._loop.remove_reader(self._fd)
            self._timer = self._loop.call_later(nap, self._arm)
        else:
            self._since = self._loop.time()
