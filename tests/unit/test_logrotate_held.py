"""Rotation when the current log file cannot be renamed (Windows: another program holds it open without
FILE_SHARE_DELETE, WinError 32): the sink copies it to .1 and empties it in place instead."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from orchestrator.config.spec import LogSpec
from orchestrator.logs.files import copy_truncate, shift_backups
from orchestrator.logs.sink import LogSink


def numbered(count: int) -> list[bytes]:
    return [b"line %06d ................................\n" % i for i in range(count)]


def held_current(name: str, attempts: list[Path] | None = None) -> Callable[[Path, Path], None]:
    def rename(src: Path, dst: Path) -> None:
        if attempts is not None:
            attempts.append(src)
        if src.name == name:
            raise PermissionError(13, "The process cannot access the file (WinError 32)")
        os.replace(src, dst)

    return rename


def oldest_first(sink: LogSink) -> bytes:
    return b"".join(p.read_bytes() for p in reversed(sink.rotated_paths()))


def test_a_held_file_is_rotated_by_copy_and_truncate(tmp_path: Path) -> None:
    kinds: list[str] = []
    sink = LogSink(tmp_path / "a.log", LogSpec(tmp_path, max_size=1000, backups=50),
                   on_error=lambda kind, exc: kinds.append(kind), rename=held_current("a.log"))
    lines = numbered(300)
    for line in lines:
        sink.write(line)
    sink.close()
    files = sink.rotated_paths()
    assert len(files) >= 10  # rotated on schedule, although the rename of a.log never worked
    assert all(p.stat().st_size <= 1000 for p in files)
    assert oldest_first(sink) == b"".join(lines)  # every line once, in order, none split
    assert kinds == []  # a rotation that worked: nothing to report


def test_when_the_fallback_fails_too_writing_goes_on_and_rotation_is_retried(tmp_path: Path) -> None:
    failures = {"left": 3}
    kinds: list[str] = []

    def flaky_copy_truncate(path: Path, dst: Path) -> None:
        if failures["left"]:
            failures["left"] -= 1
            raise PermissionError(13, "still held")
        copy_truncate(path, dst)

    now = [0.0]
    sink = LogSink(tmp_path / "a.log", LogSpec(tmp_path, max_size=1000, backups=50),
                   on_error=lambda kind, exc: kinds.append(kind), rename=held_current("a.log"),
                   fallback=flaky_copy_truncate, clock=lambda: now[0])
    lines = numbered(300)
    for line in lines:
        sink.write(line)
    sink.close()
    assert kinds == ["rotate_failed"]  # one report for the episode
    assert failures["left"] == 0 and len(sink.rotated_paths()) > 3
    assert oldest_first(sink) == b"".join(lines)


def test_shift_backups_uses_the_fallback_only_for_the_current_file(tmp_path: Path) -> None:
    path = tmp_path / "a.log"
    for name, content in [("a.log", b"cur\n"), ("a.log.1", b"one\n")]:
        (tmp_path / name).write_bytes(content)
    attempts: list[Path] = []
    shift_backups(path, 3, rename=held_current("a.log", attempts), fallback=copy_truncate)
    got = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    assert got == {"a.log": b"", "a.log.1": b"cur\n", "a.log.2": b"one\n"}
    assert attempts == [tmp_path / "a.log.1", path]  # .1 moved by rename; a.log refused, then copied


def test_copy_truncate_keeps_an_open_writer_appending(tmp_path: Path) -> None:
    path = tmp_path / "a.log"
    with open(path, "ab", buffering=0) as writer:  # O_APPEND: the next write lands at the new end
        writer.write(b"before\n")
        copy_truncate(path, tmp_path / "a.log.1")
        writer.write(b"after\n")
    assert (tmp_path / "a.log.1").read_bytes() == b"before\n"
    assert path.read_bytes() == b"after\n"
