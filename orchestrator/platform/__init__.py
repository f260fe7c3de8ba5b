"""Everything that differs between POSIX and Windows sits behind this package.

`current()` returns the implementation for this OS; the rest of the code base never tests
`sys.platform` itself. base.py holds the shapes (Child, Platform, ControlSignal), posix.py and
windows.py (with winjob, winsignals, winstructs, wincommand) implement them.
May import: errors, types only: it is the bottom layer but those two.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from orchestrator.platform.base import Child, LeftoverRecord, Platform

__all__ = ["Child", "LeftoverRecord", "Platform", "current", "is_windows"]


def is_windows() -> bool:
    """For the few choices outside this package that differ by OS (the NSSM service commands)."""
    return sys.platform == "win32"


def __getattr__(name: str) -> Any:
    """base.py's shapes on first use: the CLI imports platform.console (and so this package) for every
    command, and base.py costs it dataclasses, enum and the types' Protocols."""
    if name in ("Child", "LeftoverRecord", "Platform"):
        from orchestrator.platform import base

        return getattr(base, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def current() -> Platform:
    if sys.platform == "win32":  # pragma: no cover - exercised on Windows CI
        from orchestrator.platform import windows

        return windows.WindowsPlatform()
    from orchestrator.platform import posix

    return posix.PosixPlatform()
