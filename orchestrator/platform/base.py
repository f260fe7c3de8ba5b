"""The shapes the platform modules hand the rest of the program: a spawned child, the platform itself,
a control signal. Protocols and plain data only; posix.py and windows.py implement them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from orchestrator.types import ByteSource

__all__ = ["Child", "ControlSignal", "EnvSelector", "LeftoverRecord", "Platform", "SignalKind"]


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


EnvSelector = Callable[[Mapping[str, str]], bool]  # picks processes by their environment
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


    def become_subreaper(self) -> bool:
        """Have orphaned descendants re-parented to us (Linux); False where there is no such thing.
        Only for a process that is the supervisor alone: every child it did not spawn counts as adopted."""
        ...

    def kill_marked(
        self, select: EnvSelector, timeout_s: float, required: Mapping[str, str] | None = None,
        *, incremental: bool = False,
    ) -> list[str]:
        """Kill every other process whose environment `select` picks (our markers), wait up to
        `timeout_s` for them to be gone; describe each kill. `required`: variables (name -> value) every
        process `select` picks carries (a prefilter; `select` decides). `incremental`: `select` judges the
        environment alone, so the processes an earlier call with the same `required` read may be skipped
        (platform/procenv.py says when). Blocking: call it in a thread."""
        ...

    def reap_adopted(self) -> None:
        """Collect the exit status of adopted orphans that have ended (no zombie stays)."""
        ...

    def kill_adopted(self, timeout_s: float) -> list[str]:
        """Kill every adopted orphan, even one that cleared its environment; blocking, like kill_marked."""
        ...

    def release_free_memory(self) -> None:
        """Hand the memory the C allocator holds free back to the OS (glibc: malloc_trim); blocking, a
        few ms: call it in a thread. Nothing where the allocator does it alone or cannot."""
        ...


class SignalKind(StrEnum):
    SHUTDOWN = "shutdown"
    RELOAD = "reload"


@dataclass(frozen=True, slots=True)
class ControlSignal:
    name: str  # SIGTERM, SIGINT, SIGHUP, SIGBREAK, CTRL_CLOSE_EVENT, CTRL_SHUTDOWN_EVENT
    kind: SignalKind
