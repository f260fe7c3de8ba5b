"""Windows only: rotation while another program holds the log open the way `Get-Content -Wait` and log
shippers do (no FILE_SHARE_DELETE: renaming it fails with WinError 32)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from orchestrator.config.spec import LogSpec
from orchestrator.logs.sink import LogSink

pytestmark = [pytest.mark.skipif(sys.platform != "win32", reason="needs Windows"), pytest.mark.windows]


def test_the_held_file_cannot_be_renamed_here(tmp_path: Path) -> None:
    path = tmp_path / "a.log"
    path.write_bytes(b"x\n")
    with open(path, "rb"), pytest.raises(PermissionError):  # Python opens without FILE_SHARE_DELETE
        os.replace(path, tmp_path / "a.log.1")


def test_rotation_goes_on_while_a_reader_holds_the_file(tmp_path: Path) -> None:
    path = tmp_path / "a.log"
    path.write_bytes(b"")
    lines = [b"line %06d ................................\r\n" % i for i in range(300)]
    kinds: list[str] = []
    sink = LogSink(path, LogSpec(tmp_path, max_size=1000, backups=50), on_error=lambda k, e: kinds.append(k))
    with open(path, "rb"):  # a tail that keeps the file open throughout
        for line in lines:
            sink.write(line)
        sink.close()
    files = sink.rotated_paths()
    assert len(files) >= 10 and all(p.stat().st_size <= 1000 for p in files)
    assert b"".join(p.read_bytes() for p in reversed(files)) == b"".join(lines)
    assert kinds == []
