"""Everything that differs between POSIX and Windows sits behind this package.

`current()` returns the implementation for this OS; the rest of the code base never tests
`sys.platform` itself.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from typing import Protocol

from orchestrator.logs.sink import ByteSource

__all__ = ["Child", "LeftoverRecord", "Platform", "current", "is_windows"]


class Child(Protocol):
    """A spawned child: the leader of its own process group (POSIX) or job (Windows)."""

    @property
    def pid(self) -> int: ...

    @property
    def create_time(self) -> float:
        """psutil's create_time: recognises the same process after a restart of ours."""
        ...

    @property
    def stdout(self) -> ByteSource: ...

    @property
    def stderr(self) -> ByteSource: ...

    async def wait(self) -> int: ...


LeftoverRecord = Mapping[str, object]  # what the state file keeps per child: service, pid, create_time


class Platform(Protocol):
    name: str

    async def spawn(self, argv: Sequence[str], *, cwd: str | None, env: Mapping[str, str]) -> Child:
        """Start a child with stdin from the null device and its own group; SpawnError names what failed."""
        ...

    def signal_tree(self, child: Child, signal_name: str) -> None:
        """The graceful stop: the named signal to the whole group (Windows: CTRL_BREAK_EVENT)."""
        ...

    def kill_tree(self, child: Child) -> None:
        """Kill the child and every descendant, now. Safe to call when they are already gone."""
        ...

    def tree_alive(self, child: Child) -> bool:
        """Whether anything of the child's group/job is still running (the leader may be gone)."""
        ...

    def reap_leftovers(self, records: Sequence[LeftoverRecord], run_id: str | None) -> list[str]:
        """Kill what a previous run of ours left alive (state file records, and every process that
        inherited that run's RUN_MARKER); describe each kill."""
        ...


def is_windows() -> bool:
    """For the few choices outside this package that differ by OS (the NSSM service commands)."""
    return sys.platform == "win32"


def current() -> Platform:
    if sys.platform == "win32":  # pragma: no cover - exercised on Windows CI
        from orchestrator.platform import windows

        return windows.WindowsPlatform()
    from orchestrator.platform import posix

    return posix.PosixPlatform()
