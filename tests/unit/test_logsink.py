from __future__ import annotations

import errno
import os
import random
import re
import shutil
import sys
from collections.abc import Iterator
from mmap import mmap
from pathlib import Path
from typing import Any, BinaryIO

import anyio
import pytest

from orchestrator.config.spec import LogSpec
from orchestrator.logs.files import open_append, shift_backups
from orchestrator.logs.sink import LogSink, ReceiveStreamSource, pump
from orchestrator.platform.pipes import enlarge_pipe, enlarge_stream_pipe


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[str, OSError | None]] = []

    def __call__(self, kind: str, exc: OSError | None) -> None:
        self.calls.append((kind, exc))

    @property
    def kinds(self) -> list[str]:
        return [k for k, _ in self.calls]


@pytest.fixture(autouse=True)
def _close_sinks(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every sink a test makes is closed at its end, so no file handle outlives the test."""
    made: list[LogSink] = []
    real_init = LogSink.__init__

    def init(self: LogSink, *args: Any, **kwargs: Any) -> None:
        real_init(self, *args, **kwargs)
        made.append(self)

    monkeypatch.setattr(LogSink, "__init__", init)
    yield
    for sink in made:
        sink.close()


def spec(tmp_path: Path, max_size: int = 64 * 1024, backups: int = 5, timestamps: bool = False) -> LogSpec:
    return LogSpec(dir=tmp_path, max_size=max_size, backups=backups, timestamps=timestamps)


def all_bytes(sink: LogSink) -> bytes:
    return b"".join(p.read_bytes() for p in reversed(sink.rotated_paths()))


def numbered(count: int) -> list[bytes]:
    return [b"line %07d %s\n" % (i, b"x" * (i % 37)) for i in range(count)]


def write_in_random_chunks(sink: LogSink, data: bytes, seed: int, biggest: int = 20_000) -> None:
    rng = random.Random(seed)
    pos = 0
    while pos < len(data):
        step = rng.randint(1, biggest)
        sink.write(data[pos : pos + step])
        pos += step


def test_many_lines_across_rotations_are_all_there_once_in_order(tmp_path: Path) -> None:
    lines = numbered(200_000)
    data = b"".join(lines)
    sink = LogSink(tmp_path / "svc-stdout.log", spec(tmp_path, max_size=64 * 1024, backups=1000))
    write_in_random_chunks(sink, data, seed=1)
    sink.close()

    paths = sink.rotated_paths()
    assert len(paths) > 20
    assert paths[0] == sink.path
    assert paths[1:] == [sink.path.with_name(f"svc-stdout.log.{i}") for i in range(1, len(paths))]
    assert all_bytes(sink) == data
    for p in paths:
        content = p.read_bytes()
        assert content.endswith(b"\n")
        assert len(content) <= 64 * 1024
    assert sink.bytes_written == len(data)
    assert sink.bytes_dropped == 0


def test_line_longer_than_max_size_is_cut_at_max_size(tmp_path: Path) -> None:
    # It starts a fresh file (it does not fit after "short"), is cut where that file is full, and the
    # next files continue it: no file holds more than max_size.
    sink = LogSink(tmp_path / "a.log", spec(tmp_path, max_size=100, backups=20))
    long = b"L" * 1000 + b"\n"
    sink.write(b"short\n")
    sink.write(long[:500])
    sink.write(long[500:] + b"after\n")
    sink.close()
    contents = [p.read_bytes() for p in reversed(sink.rotated_paths())]
    assert contents[0] == b"short\n"
    assert b"".join(contents[1:]) == long + b"after\n"
    assert all(len(c) <= 100 for c in contents)
    assert [len(c) for c in contents[1:-1]] == [100] * 10


def test_line_that_began_mid_file_is_finished_there_when_it_ends_in_the_same_write(tmp_path: Path) -> None:
    # Its start fit, so it started in the current file (output is never held back); its end came in
    # one write: the file takes it whole and rotates after it, over max_size by less than that write.
    sink = LogSink(tmp_path / "a.log", spec(tmp_path, max_size=100, backups=10))
    line = b"M" * 150 + b"\n"
    sink.write(b"short\n" + line[:50])
    sink.write(line[50:])
    sink.write(b"after\n")
    contents = [p.read_bytes() for p in reversed(sink.rotated_paths())]
    assert contents == [b"short\n" + line, b"after\n"]


def test_long_line_arriving_in_small_pieces_is_cut_at_max_size(tmp_path: Path) -> None:
    sink = LogSink(tmp_path / "a.log", spec(tmp_path, max_size=100, backups=20))
    long = b"L" * 1000 + b"\n"
    sink.write(b"short\n")
    for i in range(0, len(long), 64):
        sink.write(long[i : i + 64])
    sink.write(b"after\n")
    contents = [p.read_bytes() for p in reversed(sink.rotated_paths())]
    assert b"".join(contents) == b"short\n" + long + b"after\n"
    assert all(len(c) <= 100 for c in contents)


def test_no_file_exceeds_max_size_plus_one_write_whatever_the_chunks(tmp_path: Path) -> None:
    rng = random.Random(7)
    pieces = [b"x" * rng.choice([0, 3, 40, 99, 100, 101, 250, 1000]) + b"\n" * rng.randint(0, 2)
              for _ in range(3000)]
    data = b"".join(pieces)
    files: list[bytes] = []

    def rename(src: Path, dst: Path) -> None:  # each file as it is rotated away
        files.append(src.read_bytes())
        os.replace(src, dst)

    sink = LogSink(tmp_path / "a.log", spec(tmp_path, max_size=100, backups=1), rename=rename)
    biggest = 300
    write_in_random_chunks(sink, data, seed=3, biggest=biggest)
    sink.close()
    files.append(sink.path.read_bytes())
    assert b"".join(files) == data and len(files) > 1000
    for content in files:
        assert len(content) < 100 + biggest
        if len(content) > 100:  # only a line that began mid-file and ended in the last write
            assert content.endswith(b"\n") and b"\n" in content[:100]


def test_bytes_kept_exactly_invalid_utf8_and_final_partial_line(tmp_path: Path) -> None:
    data = b"ok\r\n\xff\xfe bad \x80\x00 bytes\n" + b"no newline at the end \xc3"
    sink = LogSink(tmp_path / "a.log", spec(tmp_path, max_size=0))
    sink.write(data[:7])
    sink.write(data[7:])
    sink.close()
    assert sink.path.read_bytes() == data


def test_backups_limit_removes_the_oldest(tmp_path: Path) -> None:
    lines = numbered(1000)
    sink = LogSink(tmp_path / "a.log", spec(tmp_path, max_size=1000, backups=2))
    for line in lines:
        sink.write(line)
    paths = sink.rotated_paths()
    assert [p.name for p in paths] == ["a.log", "a.log.1", "a.log.2"]
    kept = all_bytes(sink)
    assert b"".join(lines).endswith(kept)
    assert kept.startswith(b"line ")  # starts on a line


def test_rotation_cost_follows_existing_backups_not_the_limit(tmp_path: Path) -> None:
    sink = LogSink(tmp_path / "a.log", spec(tmp_path, max_size=20, backups=10**9))  # "keep everything"
    for line in numbered(5):
        sink.write(line)
    assert [p.name for p in sink.rotated_paths()] == ["a.log"] + [f"a.log.{i}" for i in range(1, 5)]


def test_backups_zero_drops_the_old_data(tmp_path: Path) -> None:
    sink = LogSink(tmp_path / "a.log", spec(tmp_path, max_size=100, backups=0))
    for line in numbered(100):
        sink.write(line)
    assert sink.rotated_paths() == [sink.path]
    content = sink.path.read_bytes()
    assert 0 < len(content) <= 100
    assert content.endswith(b"line 0000099 " + b"x" * (99 % 37) + b"\n")


def test_max_size_zero_never_rotates(tmp_path: Path) -> None:
    sink = LogSink(tmp_path / "a.log", spec(tmp_path, max_size=0))
    data = b"".join(numbered(20_000))
    write_in_random_chunks(sink, data, seed=2)
    assert sink.rotated_paths() == [sink.path]
    assert sink.path.read_bytes() == data


def test_reopening_an_existing_file_appends_and_respects_its_size(tmp_path: Path) -> None:
    path = tmp_path / "a.log"
    path.write_bytes(b"x" * 90 + b"\n")
    sink = LogSink(path, spec(tmp_path, max_size=100, backups=3))
    sink.write(b"0123456789\n")
    assert path.with_name("a.log.1").read_bytes() == b"x" * 90 + b"\n"
    assert path.read_bytes() == b"0123456789\n"


def test_missing_log_dir_is_created_on_first_write(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "er" / "a.log"
    sink = LogSink(path, spec(tmp_path))
    assert not path.parent.exists()  # lazily: constructing does nothing
    sink.write(b"hi\n")
    assert path.read_bytes() == b"hi\n"


def test_unwritable_dir_is_a_drop_episode_then_recovers(tmp_path: Path) -> None:
    blocker = tmp_path / "logs"
    blocker.write_bytes(b"a file where the log dir should be")
    rec = Recorder()
    sink = LogSink(blocker / "a.log", spec(tmp_path), on_error=rec)
    sink.write(b"lost 1\n")
    sink.write(b"lost 2\n")
    assert rec.kinds == ["write_failed"]
    assert isinstance(rec.calls[0][1], OSError)
    assert sink.bytes_dropped == 14
    assert sink.bytes_written == 0

    blocker.unlink()
    sink.write(b"kept\n")
    assert rec.kinds == ["write_failed", "write_recovered"]
    assert sink.episode_dropped == 14
    assert sink.path.read_bytes() == b"kept\n"

    blocker_again = sink.path  # a second episode is reported again
    sink.close()
    blocker_again.unlink()
    blocker_again.mkdir()  # the log path is now a directory: opening fails
    sink.write(b"lost 3\n")
    assert rec.kinds == ["write_failed", "write_recovered", "write_failed"]
    assert sink.episode_dropped == 7
    assert sink.bytes_dropped == 21


class FlakyFile:
    """A real file whose writes fail with ENOSPC while `full` is set, after accepting `partial` bytes."""

    def __init__(self, path: Path, state: dict[str, int]) -> None:
        self._f = open_append(path)
        self._state = state

    def write(self, data: bytes | memoryview) -> int:
        if self._state["full"]:
            if self._state["partial"]:
                n = self._f.write(bytes(data[: self._state["partial"]]))
                self._state["partial"] = 0
                return n
            raise OSError(errno.ENOSPC, "No space left on device")
        return self._f.write(data)

    def seek(self, offset: int, whence: int = 0) -> int:
        return self._f.seek(offset, whence)

    def flush(self) -> None:
        self._f.flush()

    def close(self) -> None:
        self._f.close()


def test_disk_full_counts_dropped_bytes_once_per_episode(tmp_path: Path) -> None:
    state = {"full": 0, "partial": 0}
    rec = Recorder()

    def opener(path: Path) -> BinaryIO:
        return FlakyFile(path, state)  # type: ignore[return-value]

    sink = LogSink(tmp_path / "a.log", spec(tmp_path, max_size=0), on_error=rec, opener=opener)
    sink.write(b"one\n")
    state.update(full=1, partial=3)
    sink.write(b"two\n")  # "two" is written, the newline is lost
    sink.write(b"three\n")
    assert rec.kinds == ["write_failed"]
    assert rec.calls[0][1] is not None and rec.calls[0][1].errno == errno.ENOSPC
    assert (sink.bytes_written, sink.bytes_dropped) == (7, 7)
    state.update(full=0)
    sink.write(b"four\n")
    assert rec.kinds == ["write_failed", "write_recovered"]
    assert sink.episode_dropped == 7
    assert sink.path.read_bytes() == b"one\ntwofour\n"


def test_rename_failure_keeps_writing_and_retries_later(tmp_path: Path) -> None:
    held = {"on": True}
    attempts: list[Path] = []
    now = [0.0]

    def rename(src: Path, dst: Path) -> None:
        attempts.append(src)
        if held["on"] and src.name == "a.log":
            raise PermissionError(13, "The process cannot access the file (WinError 32)")
        os.replace(src, dst)

    rec = Recorder()
    sink = LogSink(
        tmp_path / "a.log",
        spec(tmp_path, max_size=1000, backups=50),
        on_error=rec,
        rename=rename,
        fallback=None,  # the retry path (the copy-and-truncate fallback has tests of its own)
        clock=lambda: now[0],
    )
    lines = numbered(400)
    for line in lines[:100]:
        sink.write(line)
    assert rec.kinds == ["rotate_failed"]
    assert sink.rotated_paths() == [sink.path]  # all in the current file, beyond max_size
    tries = len(attempts)
    assert 1 < tries < 30  # retried every max_size/10 bytes, not on every line

    now[0] += 1.5
    sink.write(lines[100])
    assert len(attempts) == tries + 1  # the time also triggers a retry
    held["on"] = False
    for line in lines[101:]:
        sink.write(line)
    assert rec.kinds == ["rotate_failed"]
    assert len(sink.rotated_paths()) > 3
    assert all_bytes(sink) == b"".join(lines)


def test_half_done_rotation_is_retried_without_losing_a_backup(tmp_path: Path) -> None:
    path = tmp_path / "a.log"
    for name, content in [
        ("a.log", b"cur\n"),
        ("a.log.1", b"one\n"),
        ("a.log.2", b"two\n"),
        ("a.log.3", b"3\n"),
    ]:
        (tmp_path / name).write_bytes(content)

    def held(src: Path, dst: Path) -> None:
        if src == path:
            raise PermissionError(13, "WinError 32")
        os.replace(src, dst)

    with pytest.raises(PermissionError):
        shift_backups(path, 3, rename=held)
    shift_backups(path, 3)  # the retry fills the gap at .1 and removes nothing more
    got = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    assert got == {"a.log.1": b"cur\n", "a.log.2": b"one\n", "a.log.3": b"two\n"}


TS = rb"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d\d:\d\d "


def test_timestamps_one_prefix_per_line_across_writes(tmp_path: Path) -> None:
    sink = LogSink(tmp_path / "a.log", spec(tmp_path, max_size=0, timestamps=True))
    for piece in [b"hel", b"lo\nwor", b"ld\n", b"\n", b"a\nb\nc", b"\n", b"partial"]:
        sink.write(piece)
    lines = sink.path.read_bytes().split(b"\n")
    bodies = [b"hello", b"world", b"", b"a", b"b", b"c", b"partial"]
    assert len(lines) == len(bodies)
    for line, body in zip(lines, bodies, strict=True):
        assert re.fullmatch(TS + re.escape(body), line), line


def test_listeners_get_each_chunk_and_a_failing_one_is_removed(tmp_path: Path) -> None:
    sink = LogSink(tmp_path / "a.log", spec(tmp_path))
    got: list[bytes] = []

    def broken(data: bytes) -> None:
        raise RuntimeError("client went away")

    sink.add_listener(got.append)
    sink.add_listener(broken)
    sink.write(b"a\n")
    sink.write(b"b")
    sink.remove_listener(got.append)
    sink.write(b"c\n")
    assert got == [b"a\n", b"b"]
    sink.remove_listener(broken)  # already gone: no error


def test_write_buffer_writes_only_the_first_n_bytes_and_never_looks_past_them(tmp_path: Path) -> None:
    # The pump's buffer holds an older, longer read past n: a newline there must not decide a cut.
    sink = LogSink(tmp_path / "a.log", spec(tmp_path, max_size=10, backups=3))
    sink.write(b"12345\nab")  # mid-line, with a newline earlier in the file
    buf = bytearray(b"cdefgh\nSTALE\n")
    sink.write_buffer(buf, 6)
    assert [p.read_bytes() for p in reversed(sink.rotated_paths())] == [b"12345\nabcd", b"efgh"]
    assert sink.bytes_written == 14


@pytest.mark.parametrize("kind", ["bytearray", "mmap"])
def test_write_buffer_gives_listeners_their_own_bytes(tmp_path: Path, kind: str) -> None:
    sink = LogSink(tmp_path / "a.log", spec(tmp_path))
    got: list[bytes] = []
    sink.add_listener(got.append)
    buf: bytearray | mmap = bytearray(64) if kind == "bytearray" else mmap(-1, 64)
    for text in (b"first\n", b"second\n"):
        buf[: len(text)] = text  # reused, as the pump reuses it
        sink.write_buffer(buf, len(text))
    buf[:8] = b"XXXXXXXX"
    assert got == [b"first\n", b"second\n"]
    assert all(type(chunk) is bytes for chunk in got)
    assert sink.path.read_bytes() == b"first\nsecond\n"


def test_write_buffer_with_timestamps_and_when_the_disk_refuses(tmp_path: Path) -> None:
    sink = LogSink(tmp_path / "a.log", spec(tmp_path, max_size=0, timestamps=True))
    sink.write_buffer(bytearray(b"a\nb\nSTALE\n"), 4)
    lines = sink.path.read_bytes().split(b"\n")
    assert len(lines) == 3 and lines[2] == b""
    assert re.fullmatch(TS + b"a", lines[0]) and re.fullmatch(TS + b"b", lines[1]), lines

    def refuse(path: Path) -> BinaryIO:
        raise OSError(errno.EACCES, "denied")

    broken = LogSink(tmp_path / "b.log", spec(tmp_path), opener=refuse, on_error=Recorder())
    broken.write_buffer(bytearray(b"12345\nSTALE"), 6)
    assert (broken.bytes_written, broken.bytes_dropped) == (0, 6)


def test_reconfigure_moves_to_the_new_place_and_limits(tmp_path: Path) -> None:
    sink = LogSink(tmp_path / "old" / "a.log", spec(tmp_path, max_size=0))
    sink.write(b"before\n")
    new = tmp_path / "new" / "a.log"
    sink.reconfigure(new, spec(tmp_path, max_size=10, backups=1))
    sink.write(b"after 1\n")
    sink.write(b"after 2\n")
    assert (tmp_path / "old" / "a.log").read_bytes() == b"before\n"
    assert [p.read_bytes() for p in sink.rotated_paths()] == [b"after 2\n", b"after 1\n"]


def test_reconfigure_with_fewer_backups_prunes_on_next_rotation(tmp_path: Path) -> None:
    sink = LogSink(tmp_path / "a.log", spec(tmp_path, max_size=22, backups=5))
    for line in numbered(8):
        sink.write(line)
    assert len(sink.rotated_paths()) == 6
    sink.reconfigure(sink.path, spec(tmp_path, max_size=22, backups=2))
    sink.write(b"z\n")
    assert [p.name for p in sink.rotated_paths()] == ["a.log", "a.log.1", "a.log.2"]


CHILD = """
import sys
out = sys.stdout.buffer
for i in range(100_000):
    out.write(b"child line %06d\\n" % i)
out.write(b"last without newline")
"""


async def test_pump_a_real_child(tmp_path: Path) -> None:
    sink = LogSink(tmp_path / "c.log", spec(tmp_path, max_size=256 * 1024, backups=100))
    with anyio.fail_after(30):
        async with await anyio.open_process([sys.executable, "-u", "-c", CHILD]) as proc:
            assert proc.stdout is not None
            await pump(ReceiveStreamSource(proc.stdout), sink)
            assert await proc.wait() == 0
    expected = b"".join(b"child line %06d\n" % i for i in range(100_000)) + b"last without newline"
    assert all_bytes(sink) == expected
    assert len(sink.rotated_paths()) > 5


class ScriptedSource:
    """Gives its chunks, then blocks until cancelled."""

    def __init__(self, chunks: list[bytes]) -> None:
        self._chunks = list(chunks)

    async def read(self, n: int) -> bytes:
        if self._chunks:
            return self._chunks.pop(0)
        await anyio.sleep_forever()
        raise AssertionError("unreachable")


async def test_pump_stops_on_cancel_after_writing_what_it_read(tmp_path: Path) -> None:
    sink = LogSink(tmp_path / "a.log", spec(tmp_path))
    done = anyio.Event()
    sink.add_listener(lambda data: done.set() if data.endswith(b"3\n") else None)
    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(pump, ScriptedSource([b"1\n", b"2\n", b"3\n"]), sink)
            await done.wait()
            tg.cancel_scope.cancel()
    assert sink.path.read_bytes() == b"1\n2\n3\n"


async def test_pump_eof_on_a_plain_source(tmp_path: Path) -> None:
    sink = LogSink(tmp_path / "a.log", spec(tmp_path))

    class Eof(ScriptedSource):
        async def read(self, n: int) -> bytes:
            return self._chunks.pop(0) if self._chunks else b""

    await pump(Eof([b"a", b"b\n"]), sink)
    assert sink.path.read_bytes() == b"ab\n"


async def test_pump_coalescing_collects_small_writes_into_fewer_reads(tmp_path: Path) -> None:
    lines = [b"%05d\n" % i for i in range(2000)]
    sink = LogSink(tmp_path / "a.log", spec(tmp_path, max_size=0))
    reads: list[int] = []

    class Trickle:
        """Has one more line each time the pump comes back after a nap, like a pipe filling."""

        def __init__(self) -> None:
            self.pos = 0

        async def read(self, n: int) -> bytes:
            await anyio.lowlevel.checkpoint()
            ready = len(lines) if reads else 1  # after the first (small) read the pump naps: all is there
            data = b"".join(lines[self.pos : self.pos + ready])
            self.pos += ready
            reads.append(len(data))
            return data

    with anyio.fail_after(5):
        await pump(Trickle(), sink, coalesce_s=0.001)
    assert sink.path.read_bytes() == b"".join(lines)
    assert len(reads) == 3  # one line, then the rest, then EOF


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="F_SETPIPE_SZ is Linux only")
def test_enlarge_pipe() -> None:
    r, w = os.pipe()
    try:
        size = enlarge_pipe(r)
        assert size is None or size >= 1 << 20
    finally:
        os.close(r)
        os.close(w)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="F_SETPIPE_SZ is Linux only")
async def test_enlarge_stream_pipe_of_an_anyio_process() -> None:
    # Guards the asyncio internals enlarge_stream_pipe relies on: an anyio upgrade that moves them fails here.
    with anyio.fail_after(10):
        # The child waits for its stdin to close: a child that had already exited could have its pipe's
        # transport closed by the loop before the call (a race seen under load).
        async with await anyio.open_process([sys.executable, "-c", "import sys; sys.stdin.read()"]) as proc:
            assert enlarge_stream_pipe(proc.stdout) == 1 << 20
            assert proc.stdin is not None
            await proc.stdin.aclose()
            await proc.wait()
    assert enlarge_stream_pipe(object()) is None


async def test_pump_lets_other_tasks_run_while_its_source_always_has_data(tmp_path: Path) -> None:
    # A pipe that always has output (a child writing as fast as it can) never makes the read suspend:
    # the pump must still yield, or the API and every other service's pump would stop meanwhile.
    sink = LogSink(tmp_path / "a.log", spec(tmp_path, max_size=0))
    chunks = 1000
    turns = 0

    class AlwaysReady:
        def __init__(self) -> None:
            self.left = chunks

        async def read(self, n: int) -> bytes:
            self.left -= 1
            return b"x\n" if self.left >= 0 else b""

    async def other_task() -> None:
        nonlocal turns
        while True:
            await anyio.lowlevel.checkpoint()
            turns += 1

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(other_task)
            await pump(AlwaysReady(), sink)
            tg.cancel_scope.cancel()
    assert sink.path.read_bytes() == b"x\n" * chunks
    assert turns >= chunks - 1  # the other task ran between (nearly) every two chunks


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.skipif(sys.platform == "win32", reason="Windows refuses to delete or move a file held open "
                    "(WinError 32): a cleanup script cannot pull a log away there")
def test_a_deleted_log_file_is_recreated_and_what_went_to_it_counted_as_dropped(tmp_path: Path) -> None:
    clock, events = Clock(), Recorder()
    logs = tmp_path / "logs"
    sink = LogSink(logs / "a.log", spec(logs, max_size=0), on_error=events, clock=clock)
    sink.write(b"kept\n")
    (logs / "a.log").unlink()  # a cleanup script
    sink.write(b"lost 1\n")  # within the second: into the deleted inode
    clock.now += 1.5
    sink.write(b"after\n")  # the check: recreated, this line in the new file
    assert (logs / "a.log").read_bytes() == b"after\n"
    # Since the last check (the open), everything went to the inode that is gone now.
    assert events.kinds == ["reopened"] and sink.episode_dropped == len(b"kept\nlost 1\n")
    assert sink.bytes_dropped == len(b"kept\nlost 1\n")


@pytest.mark.skipif(sys.platform == "win32", reason="Windows refuses to delete or move a file held open "
                    "(WinError 32): a cleanup script cannot pull a log away there")
def test_a_deleted_log_directory_and_a_moved_file_are_recreated(tmp_path: Path) -> None:
    clock, events = Clock(), Recorder()
    logs = tmp_path / "logs"
    sink = LogSink(logs / "a.log", spec(logs, max_size=1 << 20), on_error=events, clock=clock)
    sink.write(b"one\n")
    shutil.rmtree(logs)
    clock.now += 1.5
    sink.write(b"two\n")
    assert (logs / "a.log").read_bytes() == b"two\n"
    os.replace(logs / "a.log", tmp_path / "moved.log")
    clock.now += 1.5
    sink.write(b"three\n")
    assert (logs / "a.log").read_bytes() == b"three\n" and (tmp_path / "moved.log").read_bytes() == b"two\n"
    assert events.kinds == ["reopened", "reopened"]
    assert sink.bytes_dropped == len(b"one\ntwo\n")  # each since its file's last check (a move looks the same)


@pytest.mark.skipif(sys.platform == "win32", reason="Windows refuses to delete or move a file held open "
                    "(WinError 32): a cleanup script cannot pull a log away there")
def test_rotation_checks_too_and_never_rotates_a_stranger(tmp_path: Path) -> None:
    clock, events = Clock(), Recorder()
    logs = tmp_path / "logs"
    sink = LogSink(logs / "a.log", spec(logs, max_size=10, backups=2), on_error=events, clock=clock)
    sink.write(b"12345678\n")
    os.replace(logs / "a.log", tmp_path / "moved.log")
    sink.write(b"abcdefgh\n")  # would rotate: the check finds the file gone first
    assert events.kinds == ["reopened"] and (logs / "a.log").read_bytes() == b"abcdefgh\n"
    assert not (logs / "a.log.1").exists() and sink.bytes_dropped == len(b"12345678\n")
