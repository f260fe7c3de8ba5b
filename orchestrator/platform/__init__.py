"""Everything that differs between POSIX and Windows sits behind this package.

`current()` returns the implementation for this OS; the rest of the code base never tests
`sys.platform` itself.
"""

from __future__ import annotations

import sys

from orchestrator.platform.base import Child, LeftoverRecord, Platform

__all__ = ["Child", "LeftoverRecord", "Platform", "current", "is_windows"]


def is_windows() -> bool:
    """For the few choices outside this package that differ by OS (the NSSM service commands)."""
    return sys.platform == "win32"


def current() -> Platform:
    if sys.platform == "win32":  # pragma: no cover - exercised on Windows CI
        from orchestrator.platform import windows

        return windows.WindowsPlatform()
    from orchestrator.platform import posix

    return posix.PosixPlatform()
