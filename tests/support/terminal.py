"""Running a command with its stdout on a terminal (a pty), as a person would see it. POSIX only."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping, Sequence

if sys.platform != "win32":  # pty needs termios
    import pty


def output_on_a_terminal(argv: Sequence[str], env: Mapping[str, str] | None = None) -> str:
    """All a command printed to stdout when stdout is a pty; NO_COLOR is unset unless `env` sets it."""
    leader, follower = pty.openpty()
    environ = {k: v for k, v in os.environ.items() if k != "NO_COLOR"}
    try:
        proc = subprocess.run(list(argv), stdout=follower, stderr=subprocess.PIPE, timeout=60,
                              env={**environ, **(env or {})})
        assert proc.returncode == 0, proc.stderr
        os.close(follower)
        chunks = []
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # EIO: the other side is closed and everything was read
                break
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks).decode()
    finally:
        os.close(leader)
