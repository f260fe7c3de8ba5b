"""pump's batching of chatty streams: a quiet stream's lines are read at once, a chatty one's in batches."""

from __future__ import annotations

from mmap import mmap

import anyio
import pytest

from orchestrator.logs.pump import pump

pytestmark = pytest.mark.anyio


class Sink:
    def __init__(self) -> None:
        self.data = b""
        self.written_at: list[float] = []

    def write(self, data: bytes) -> None:
        self.data += data
        self.written_at.append(anyio.current_time())

    def write_buffer(self, buf: mmap, n: int) -> None:
        self.write(buf[:n])

    def flush(self) -> None:
        pass


class Spaced:
    """A line every `gap_s` (the read waits for it, as on a pipe); records when each read began."""

    def __init__(self, lines: int, gap_s: float, first_s: float | None = None, size: int = 0) -> None:
        self.left, self.gap_s, self.pad = lines, gap_s, b"x" * size
        self.first_s = gap_s if first_s is None else first_s
        self.read_at: list[float] = []

    async def read(self, n: int) -> bytes:
        self.read_at.append(anyio.current_time())
        if self.left == 0:
            return b""
        await anyio.sleep(self.first_s if len(self.read_at) == 1 else self.gap_s)
        self.left -= 1
        return self.pad + b"line %d\n" % self.left


async def test_a_quiet_stream_is_read_again_at_once() -> None:
    source, sink = Spaced(3, gap_s=0.3), Sink()
    await pump(source, sink, batch_s=0.2)
    assert sink.data == b"line 2\nline 1\nline 0\n"
    # Each read began right after the previous write: no nap between (a nap would be 0.2 s).
    gaps = [r - w for w, r in zip(sink.written_at, source.read_at[1:], strict=True)]
    assert max(gaps) < 0.15, gaps


async def test_a_chatty_stream_is_read_in_batches_with_nothing_lost() -> None:
    source, sink = Spaced(8, gap_s=0.003, first_s=0.1), Sink()
    await pump(source, sink, batch_s=0.05)
    assert sink.data == b"".join(b"line %d\n" % i for i in reversed(range(8)))
    # After a quiet spell the first line and the next are read at once; from then on the pump naps
    # 50 ms after each small read (the pipe collects the lines meanwhile).
    gaps = [r - w for w, r in zip(sink.written_at, source.read_at[1:], strict=True)]
    assert gaps[0] < 0.04, gaps
    assert min(gaps[1:]) >= 0.045, gaps


async def test_batch_0_turns_it_off() -> None:
    source, sink = Spaced(5, gap_s=0.003), Sink()
    await pump(source, sink, batch_s=0)
    gaps = [r - w for w, r in zip(sink.written_at, source.read_at[1:], strict=True)]
    assert max(gaps) < 0.04, gaps


async def test_a_busy_writer_is_never_made_to_wait() -> None:
    # 64 KiB every 3 ms: a nap would let the pipe fill and block the child.
    source, sink = Spaced(6, gap_s=0.003, first_s=0.1, size=64 * 1024), Sink()
    await pump(source, sink, batch_s=0.05)
    gaps = [r - w for w, r in zip(sink.written_at, source.read_at[1:], strict=True)]
    assert max(gaps) < 0.04, gaps
