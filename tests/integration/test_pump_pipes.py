"""The pump on real pipes from the supervisor's spawner: every byte, promptly, and it always ends.

On POSIX the pump reads a PipeSource from an event-loop reader callback into one reused buffer
(logs/pump.py); on Windows it awaits the pipe's reads. The tests hold for both; the last two look at
the POSIX reader itself.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path

import anyio
import psutil
import pytest

from orchestrator.config.spec import LogSpec
from orchestrator.logs.pump import pump
from orchestrator.logs.sink import LogSink
from orchestrator.platform import current
from orchestrator.types import FdSource
from tests.support.helpers import child, wait_for

pytestmark = pytest.mark.anyio

MakeSink = Callable[[str], LogSink]
posix_only = pytest.mark.skipif(sys.platform == "win32", reason="the POSIX pipe reader")

LINES = 120_000  # 1.4 MB a stream: more than a read holds (1 MiB), several rotations (256 KiB)
WRITER = f"""
import os
# On each of stdout and stderr: {LINES} numbered lines in writes of every size (1 byte to 64 KiB),
# the two streams interleaved, then a last line with no newline.
data = {{fd: b"".join(b"%s %07d\\n" % (tag, i) for i in range({LINES})) for fd, tag in ((1, b"out"), (2, b"err"))}}
done = {{1: 0, 2: 0}}
size = 0
while any(done[fd] < len(data[fd]) for fd in data):
    for fd in data:
        size = size * 7 % 65_521 + 1
        done[fd] += os.write(fd, data[fd][done[fd]:done[fd] + size]) if done[fd] < len(data[fd]) else 0
for fd in data:
    os.write(fd, b"the end, no newline")
"""


@pytest.fixture
def sink(tmp_path: Path) -> Iterator[MakeSink]:
    """Makes sinks rotating at 256 KiB in tmp_path; closes them at the end of the test."""
    made: list[LogSink] = []

    def make(name: str) -> LogSink:
        made.append(LogSink(tmp_path / f"{name}.log", LogSpec(dir=tmp_path, max_size=256 * 1024, backups=100)))
        return made[-1]

    yield make
    for s in made:
        s.close()


def all_bytes(s: LogSink) -> bytes:
    return b"".join(p.read_bytes() for p in reversed(s.rotated_paths()))


def text(path: Path) -> bytes:
    return path.read_bytes().replace(b"\r\n", b"\n")  # print() writes \r\n on Windows


def ends_with(path: Path, tail: bytes) -> bool:
    return text(path).endswith(tail)


def expected(tag: bytes) -> bytes:
    return b"".join(b"%s %07d\n" % (tag, i) for i in range(LINES)) + b"the end, no newline"


async def test_every_byte_of_both_streams_up_to_eof_in_files_and_listeners(sink: MakeSink) -> None:
    # Two children, four pipes read at once (on POSIX into one shared buffer): each file and each
    # listener gets exactly its own stream, the last line without a newline included.
    platform = current()
    sinks = {name: sink(name) for name in ("a-out", "a-err", "b-out", "b-err")}
    heard: dict[str, list[bytes]] = {name: [] for name in sinks}
    for name, s in sinks.items():
        s.add_listener(heard[name].append)
    with anyio.fail_after(60):
        async with anyio.create_task_group() as tg:
            kids = [await platform.spawn([sys.executable, "-c", WRITER], cwd=None, env=dict(os.environ))
                    for _ in ("a", "b")]
            for who, kid in zip(("a", "b"), kids, strict=True):
                tg.start_soon(pump, kid.stdout, sinks[f"{who}-out"])
                tg.start_soon(pump, kid.stderr, sinks[f"{who}-err"])
            for kid in kids:
                assert await kid.wait() == 0
    for name, s in sinks.items():
        want = expected(name.split("-")[1].encode())
        assert all_bytes(s) == want, name
        assert b"".join(heard[name]) == want, name
        assert len(s.rotated_paths()) > 3  # it rotated along the way


async def test_a_line_after_a_quiet_spell_is_read_without_waiting_for_more(tmp_path: Path, sink: MakeSink) -> None:
    # The child stays alive and silent after each line: the pump must hand over each line as it
    # comes, not wait for a batch to fill or for the end of output.
    say = tmp_path / "say"
    s = sink("quiet")
    kid = await current().spawn(list(child("echo_file.py", say, "first")), cwd=None, env=dict(os.environ))
    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(pump, kid.stdout, s)
            tg.start_soon(pump, kid.stderr, sink("quiet-err"))
            await wait_for(lambda: s.bytes_written > 0, what="the first line")
            for n in range(1, 4):
                await anyio.sleep(0.2)  # a quiet spell: longer than a batch (50 ms)
                with say.open("a") as f:
                    f.write(f"line {n}\n")
                await wait_for(partial(ends_with, s.path, b"line %d\n" % n), what=f"line {n}")
            current().kill_tree(kid)  # then the pumps end at EOF
            await kid.wait()
    finally:
        current().kill_tree(kid)
    assert text(s.path) == b"first\nline 1\nline 2\nline 3\n"


@posix_only
async def test_a_chatty_child_is_read_in_batches(sink: MakeSink) -> None:
    # 100 flushed lines 5 ms apart: one read each would be 100 sink writes; batching reads them in
    # a few wake-ups (about one per 50 ms) and loses none.
    s = sink("chatty")
    writes: list[bytes] = []
    s.add_listener(writes.append)  # called once per sink write
    kid = await current().spawn(list(child("tick_lines.py", 100, 0.005, 10)), cwd=None, env=dict(os.environ))
    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(pump, kid.stdout, s)
            await wait_for(lambda: s.path.exists() and s.path.read_bytes().endswith(b"done\n"), what="done")
            tg.cancel_scope.cancel()
    finally:
        current().kill_tree(kid)
        await kid.wait()
    assert s.path.read_bytes() == b"".join(b"line %06d xxxxxxxxxx\n" % i for i in range(100)) + b"done\n"
    assert len(writes) < 50, [len(w) for w in writes]


@posix_only
async def test_cancelled_with_a_grandchild_holding_the_pipe_the_reader_is_gone(tmp_path: Path, sink: MakeSink) -> None:
    # The child is killed, its grandchild keeps the pipe open: no EOF ever comes. A cancelled pump
    # (a stop's drain deadline) must return at once and leave no reader behind on the event loop.
    pidfile = tmp_path / "grandchild.pid"
    s = sink("held")
    kid = await current().spawn(list(child("spawn_grandchild.py", pidfile)), cwd=None, env=dict(os.environ))
    source = kid.stdout
    assert isinstance(source, FdSource)
    fd = source.fileno()
    grandchild: psutil.Process | None = None
    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(pump, source, s)
            await wait_for(lambda: s.bytes_written > 0 and pidfile.exists(), what="ready")
            grandchild = psutil.Process(int(pidfile.read_text()))
            os.kill(kid.pid, signal.SIGKILL)
            await kid.wait()
            assert grandchild.is_running()  # it still holds the write end
            tg.cancel_scope.cancel()
        assert asyncio.get_running_loop().remove_reader(fd) is False  # the pump removed its own
        assert s.path.read_bytes() == b"ready\n"
    finally:
        if grandchild is not None:
            grandchild.kill()
            grandchild.wait(10)
        current().kill_tree(kid)
        source.close()


@posix_only
async def test_a_read_error_ends_the_pump_with_it(sink: MakeSink) -> None:
    class Broken:
        """A pipe whose read fails (EIO), as a terminal's can."""

        def __init__(self) -> None:
            self._r, self._w = os.pipe()
            os.write(self._w, b"x")

        async def read(self, n: int) -> bytes:
            raise AssertionError("the POSIX pump reads with readinto")

        def fileno(self) -> int:
            return self._r

        def readinto(self, buf: memoryview, /) -> int | None:
            raise OSError(5, "Input/output error")

        def close(self) -> None:
            os.close(self._r)
            os.close(self._w)

    source = Broken()
    try:
        with anyio.fail_after(10), pytest.raises(OSError, match="Input/output"):
            await pump(source, sink("broken"))
        assert asyncio.get_running_loop().remove_reader(source.fileno()) is False
    finally:
        source.close()
