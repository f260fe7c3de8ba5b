"""Symbolic links in the log directory are never followed: not written, rotated, truncated or read."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.config.spec import LogSpec
from orchestrator.logs.files import LinkRefused, copy_truncate, shift_backups
from orchestrator.logs.sink import LogSink
from orchestrator.logs.tail import tail_lines
from tests.support.helpers import POSIX_ONLY

pytestmark = POSIX_ONLY  # creating symbolic links needs a privilege on Windows


class Events:
    def __init__(self) -> None:
        self.seen: list[tuple[str, str]] = []

    def __call__(self, kind: str, exc: OSError | None) -> None:
        self.seen.append((kind, str(exc)))


@pytest.fixture
def target(tmp_path: Path) -> Path:
    victim = tmp_path / "elsewhere" / "victim.txt"
    victim.parent.mkdir()
    victim.write_bytes(b"precious\n")
    return victim


def test_a_log_file_replaced_by_a_link_is_not_written_through(tmp_path: Path, target: Path) -> None:
    logs = tmp_path / "logs"
    events = Events()
    sink = LogSink(logs / "svc-stdout.log", LogSpec(dir=logs, max_size=1000, backups=2), on_error=events)
    sink.write(b"one\n")
    sink.close()  # the next write reopens the path (as after a rotation or a failure)
    (logs / "svc-stdout.log").unlink()
    (logs / "svc-stdout.log").symlink_to(target)
    sink.write(b"two\n")
    sink.close()
    assert target.read_bytes() == b"precious\n"
    assert sink.bytes_dropped == 4
    assert events.seen[0][0] == "write_failed" and str(logs / "svc-stdout.log") in events.seen[0][1]
    assert "symbolic link" in events.seen[0][1]


def test_rotation_refuses_a_link_and_names_it(tmp_path: Path, target: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    events = Events()
    sink = LogSink(logs / "svc-stdout.log", LogSpec(dir=logs, max_size=10, backups=3), on_error=events)
    sink.write(b"12345678\n")
    (logs / "svc-stdout.log.1").symlink_to(target)
    sink.write(b"abcdefgh\n")  # does not fit: a rotation, which meets the link
    sink.close()
    assert target.read_bytes() == b"precious\n" and (logs / "svc-stdout.log.1").is_symlink()
    assert [k for k, _ in events.seen] == ["rotate_failed"]
    assert str(logs / "svc-stdout.log.1") in events.seen[0][1]
    assert (logs / "svc-stdout.log").read_bytes() == b"12345678\nabcdefgh\n"  # kept writing


def test_copy_truncate_never_truncates_through_a_link(tmp_path: Path, target: Path) -> None:
    link = tmp_path / "svc-stdout.log"
    link.symlink_to(target)
    with pytest.raises(LinkRefused):
        copy_truncate(link, tmp_path / "svc-stdout.log.1")
    with pytest.raises(LinkRefused):
        shift_backups(link, 3)
    assert target.read_bytes() == b"precious\n"


def test_readers_get_only_the_configured_regular_files(tmp_path: Path, target: Path) -> None:
    logs = tmp_path / "logs"
    sink = LogSink(logs / "svc-stderr.log", LogSpec(dir=logs, max_size=1000, backups=2))
    sink.write(b"mine\n")
    sink.close()
    (logs / "svc-stderr.log.1").write_bytes(b"older\n")
    (logs / "svc-stderr.log.2").symlink_to(target)  # a link in a configured slot
    (logs / "svc-stderr.log.9").write_bytes(b"beyond backups\n")  # a file beyond `backups`
    assert sink.rotated_paths() == [logs / "svc-stderr.log", logs / "svc-stderr.log.1"]
    assert tail_lines(sink.rotated_paths(), 100) == [b"older", b"mine"]
    assert tail_lines([logs / "svc-stderr.log.2"], 100) == []  # refused even when asked for by path
