"""Growing a child's output pipe (Linux F_SETPIPE_SZ), best effort on every OS.

Measured (docs/benchmarks.md, "Log throughput"): the pipe's 64 KiB kernel buffer, not the sink, is what
slows a fast writer; a 1 MiB pipe lets it run ahead of our reads.
"""

from __future__ import annotations

import sys

__all__ = ["PIPE_SIZE", "enlarge_pipe", "enlarge_stream_pipe"]

PIPE_SIZE = 1 << 20  # Linux's default /proc/sys/fs/pipe-max-size: allowed without privileges


def enlarge_pipe(fd: int, size: int = PIPE_SIZE) -> int | None:
    """Grows a pipe's kernel buffer (Linux F_SETPIPE_SZ) so a fast child rarely fills it while the
    pump is busy; returns the new size, or None where unsupported or refused (best effort)."""
    if sys.platform == "win32":  # no fcntl (this line also keeps `mypy --platform win32` clean)
        return None
    try:
        import fcntl
    except ImportError:
        return None
    op = getattr(fcntl, "F_SETPIPE_SZ", None)
    if op is None:
        return None
    try:
        return int(fcntl.fcntl(fd, op, size))
    except OSError:
        return None


def enlarge_stream_pipe(stream: object, size: int = PIPE_SIZE) -> int | None:
    """`enlarge_pipe` for the read end behind an anyio process stream (or an asyncio StreamReader).

    asyncio exposes the pipe only through its transport; the attributes are looked up defensively, so
    another backend or a future version just makes this a no-op (None), never an error.
    """
    reader = getattr(stream, "_stream", stream)  # anyio's StreamReaderWrapper holds the StreamReader
    transport = getattr(reader, "_transport", None)
    get_extra_info = getattr(transport, "get_extra_info", None)
    pipe = get_extra_info("pipe") if callable(get_extra_info) else None
    fileno = getattr(pipe, "fileno", None)
    if not callable(fileno):
        return None
    try:
        fd = fileno()
    except (OSError, ValueError):
        return None
    return enlarge_pipe(fd, size) if isinstance(fd, int) else None
