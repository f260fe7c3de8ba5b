"""Process-wide resources: the open-file limit, and handing freed heap memory back to the OS.

- The soft RLIMIT_NOFILE is often far below the hard one (256 or 1024 against 4096 to 1M): with 256,
  300 idle TCP connections to the API made /api/health time out and a restarting service failed to
  spawn (`Too many open files`). `raise_open_file_limit` lifts the soft limit to the hard one at start
  (POSIX; Windows has no such limit for sockets and handles). Children inherit it, as they do
  supervisord's `minfds`.
- glibc keeps freed blocks of the heap for reuse; large ones freed in the middle stay in RSS. Two log
  followers that never read held 264 MB after they left (their queues were 1 MiB chunks); with their
  queues capped that fell to about 20 MB above the start, and `release_free_memory` (malloc_trim)
  returns the rest when a follower leaves. It is a no-op where there is no glibc.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys
from collections.abc import Callable
from functools import cache

__all__ = ["open_file_limit", "raise_open_file_limit", "release_free_memory"]

_CEILING = 1 << 20  # an unlimited hard limit is not a value setrlimit accepts everywhere (macOS)


def open_file_limit() -> int | None:
    """The soft limit on open files in force now; None where there is none (Windows)."""
    if sys.platform == "win32":  # pragma: no cover - no such limit
        return None
    import resource

    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    return None if soft == resource.RLIM_INFINITY else soft


def raise_open_file_limit() -> tuple[int, int] | None:
    """Raises the soft open-file limit to the hard one (at most 2**20); returns (before, after), or
    None where there is no such limit. A refusal (a sandbox) leaves the limit as it was."""
    if sys.platform == "win32":  # pragma: no cover - no such limit
        return None
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return soft, soft
    target = _CEILING if hard == resource.RLIM_INFINITY else hard
    if target > soft:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError):
            return soft, soft
    return soft, resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def release_free_memory() -> None:
    """Returns the heap's free pages to the OS (glibc's malloc_trim); does nothing elsewhere."""
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


@cache
def _malloc_trim() -> Callable[[int], int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        fn: Callable[[int], int] = libc.malloc_trim
    except (OSError, AttributeError):  # musl has no malloc_trim
        return None
    return fn
