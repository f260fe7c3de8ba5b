from __future__ import annotations

import io
from pathlib import Path

import pytest

from orchestrator.config.spec import LogSpec
from orchestrator.logs.sink import LogSink
from orchestrator.logs.tail import CUT_MARKER, MAX_TAIL_BYTES, _tail_stream, tail_budget, tail_lines


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def test_tail_across_a_rotation_boundary(tmp_path: Path) -> None:
    current = write(tmp_path / "a.log", b"l5\nl6\n")
    older = write(tmp_path / "a.log.1", b"l3\nl4\n")
    oldest = write(tmp_path / "a.log.2", b"l1\nl2\n")
    paths = [current, older, oldest]
    assert tail_lines(paths, 3) == [b"l4", b"l5", b"l6"]
    assert tail_lines(paths, 5) == [b"l2", b"l3", b"l4", b"l5", b"l6"]
    assert tail_lines(paths, 2) == [b"l5", b"l6"]


def test_n_larger_than_everything(tmp_path: Path) -> None:
    paths = [write(tmp_path / "a.log", b"b\nc"), write(tmp_path / "a.log.1", b"a\n")]
    assert tail_lines(paths, 100) == [b"a", b"b", b"c"]


def test_empty_and_missing_files(tmp_path: Path) -> None:
    empty = write(tmp_path / "a.log", b"")
    older = write(tmp_path / "a.log.1", b"x\n")
    assert tail_lines([empty], 10) == []
    assert tail_lines([empty, tmp_path / "gone.log.2", older], 10) == [b"x"]
    assert tail_lines([], 10) == []
    assert tail_lines([older], 0) == []


def test_partial_last_line_counts_and_line_endings_are_stripped(tmp_path: Path) -> None:
    path = write(tmp_path / "a.log", b"one\r\ntwo\n\nthree \xff")
    assert tail_lines([path], 2) == [b"", b"three \xff"]
    assert tail_lines([path], 4) == [b"one", b"two", b"", b"three \xff"]


@pytest.mark.parametrize("block", [1, 2, 3, 7, 64])
def test_small_blocks_give_the_same_answer(block: int) -> None:
    data = b"".join(b"%d\n" % i * (i % 5) for i in range(200)) + b"end"
    expected = data.split(b"\n")
    for n in (1, 2, 10, 1000):
        got = _tail_stream(io.BytesIO(data), n, block)[0]
        assert got == expected[-n:]


class CountingReader(io.BytesIO):
    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.bytes_read = 0

    def read(self, size: int | None = -1) -> bytes:
        out = super().read(size)
        self.bytes_read += len(out)
        return out


def test_reads_only_the_tail_of_a_big_file() -> None:
    data = (b"y" * 99 + b"\n") * 100_000  # 10 MB
    reader = CountingReader(data)
    lines = _tail_stream(reader, 100, 64 * 1024)[0]
    assert lines == [b"y" * 99] * 100
    assert reader.bytes_read <= 64 * 1024 + 1


def test_tail_of_what_a_sink_wrote(tmp_path: Path) -> None:
    sink = LogSink(tmp_path / "s.log", LogSpec(dir=tmp_path, max_size=1000, backups=100))
    for i in range(1000):
        sink.write(b"n%04d\n" % i)
    sink.close()
    assert tail_lines(sink.rotated_paths(), 300) == [b"n%04d" % i for i in range(700, 1000)]


def test_a_line_longer_than_the_budget_is_returned_cut_and_marked(tmp_path: Path) -> None:
    path = write(tmp_path / "a.log", b"first\n" + b"z" * (5 << 20))  # 5 MiB without a newline
    budget = tail_budget(1)
    assert budget == (1 << 20) + 1024
    [line] = tail_lines([path], 1)
    assert line.startswith(CUT_MARKER) and set(line.removeprefix(CUT_MARKER)) == {ord("z")}
    assert len(line) - len(CUT_MARKER) < budget


def test_the_budget_holds_across_files_and_stops_at_a_cut_line(tmp_path: Path) -> None:
    current = write(tmp_path / "a.log", b"y" * (600 << 10) + b"\nlast\n")
    older = write(tmp_path / "a.log.1", b"old\n" + b"w" * (600 << 10))
    oldest = write(tmp_path / "a.log.2", b"never read\n")
    lines = tail_lines([current, older, oldest], 10)
    assert lines[-2:] == [b"y" * (600 << 10), b"last"]
    assert lines[0].startswith(CUT_MARKER + b"w") and len(lines) == 3
    assert sum(len(x) for x in lines) - len(CUT_MARKER) <= tail_budget(10)


def test_bytes_read_are_bounded_by_the_budget_not_the_file() -> None:
    reader = CountingReader(b"q" * (20 << 20))
    lines, used, cut = _tail_stream(reader, 10_000, 64 * 1024, budget=tail_budget(10_000))
    assert cut and len(lines) == 1
    assert reader.bytes_read <= tail_budget(10_000) + 1 and used <= tail_budget(10_000)
    assert tail_budget(10**6) == MAX_TAIL_BYTES == 16 << 20
