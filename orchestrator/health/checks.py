"""Machine checks: free disk space and memory use, each on its own interval, warning on edges only.

The Guardian of the old setup warned every interval; here a check records `check_warning` once when
it crosses its threshold, `check_recovered` once when it comes back, and `check_failed` once when
it cannot be read (a path that does not exist, `F:\\` on Linux). The last reading of each check is
part of the supervisor's status (`Supervisor.system_status()`) and of the metrics.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

import anyio
import psutil

from orchestrator.config.spec import ChecksSpec, DiskCheckSpec, MemoryCheckSpec
from orchestrator.core.events import EventLog

__all__ = ["CheckState", "CheckStatus", "SystemChecks", "next_state"]


class CheckState(StrEnum):
    UNKNOWN = "unknown"  # not read yet
    OK = "ok"
    WARNING = "warning"  # over the threshold
    ERROR = "error"  # could not be read


@dataclass(frozen=True, slots=True)
class CheckStatus:
    kind: str  # disk | memory
    path: str | None  # disk: the path as configured
    value: float | None  # disk: free bytes; memory: percent used. None until read, or on error
    threshold: float  # disk: min_free bytes; memory: max_percent
    unit: str  # bytes | percent
    state: CheckState
    error: str | None
    last_checked: float | None  # epoch seconds of the last reading

    @property
    def ok(self) -> bool | None:
        return None if self.state in (CheckState.UNKNOWN, CheckState.ERROR) else self.state is CheckState.OK

    def to_dict(self) -> dict[str, Any]:
        # The generic value/threshold plus the same under names that say what they are.
        named = ({"free_bytes": self.value, "min_free_bytes": self.threshold} if self.kind == "disk"
                 else {"used_percent": self.value, "max_percent": self.threshold})
        return {"kind": self.kind, "path": self.path, "value": self.value, "threshold": self.threshold,
                "unit": self.unit, "state": self.state.value, "ok": self.ok, "error": self.error,
                "last_checked": self.last_checked, **named}


def next_state(value: float | None, breached: bool) -> CheckState:
    if value is None:
        return CheckState.ERROR
    return CheckState.WARNING if breached else CheckState.OK


@dataclass(slots=True)
class _Check:
    """One configured check: how to read it (blocking), when it is breached, how to say so."""

    kind: str
    path: str | None
    threshold: float
    unit: str
    every_s: float
    measure: Callable[[], float]
    breached: Callable[[float], bool]
    describe: Callable[[float], str]
    status: CheckStatus = field(init=False)

    def __post_init__(self) -> None:
        self.status = CheckStatus(self.kind, self.path, None, self.threshold, self.unit, CheckState.UNKNOWN,
                                  None, None)

    @property
    def key(self) -> tuple[str, str | None]:
        return self.kind, self.path

    @property
    def state(self) -> CheckState:
        return self.status.state


def _disk(spec: DiskCheckSpec) -> _Check:
    minimum = spec.min_free
    return _Check(
        "disk", spec.path, minimum, "bytes", spec.every_s,
        measure=lambda: float(psutil.disk_usage(spec.path).free),
        breached=lambda free: free < minimum,
        describe=lambda free: f"disk {spec.path}: {_gib(free)} free (minimum {_gib(minimum)})",
    )


def _memory(spec: MemoryCheckSpec) -> _Check:
    maximum = spec.max_percent
    return _Check(
        "memory", None, maximum, "percent", spec.every_s,
        measure=lambda: float(psutil.virtual_memory().percent),
        breached=lambda used: used > maximum,
        describe=lambda used: f"memory: {used:.1f}% used (maximum {maximum:g}%)",
    )


class SystemChecks:
    """The configured checks, their loops (run inside the supervisor's task group) and last readings."""

    def __init__(self, spec: ChecksSpec, events: EventLog) -> None:
        self.events = events
        self._checks: dict[tuple[str, str | None], _Check] = {}
        self._reconfigured = anyio.Event()
        self.configure(spec)

    def configure(self, spec: ChecksSpec) -> None:
        """Apply new checks; one with the same kind and path keeps its state (so it can recover)."""
        fresh: dict[tuple[str, str | None], _Check] = {}
        wanted = [_disk(d) for d in spec.disk] + ([_memory(spec.memory)] if spec.memory else [])
        for check in wanted:
            old = self._checks.get(check.key)
            if old is not None:
                check.status = replace(old.status, threshold=check.threshold)
            fresh[check.key] = check
        self._checks = fresh
        self._reconfigured.set()

    def statuses(self) -> list[CheckStatus]:
        return [c.status for c in self._checks.values()]

    async def run(self) -> None:
        """Each check on its own interval until cancelled; a configure() restarts the loops."""
        while True:
            self._reconfigured = anyio.Event()
            async with anyio.create_task_group() as tg:
                for check in self._checks.values():
                    tg.start_soon(self._loop, check)
                await self._reconfigured.wait()
                tg.cancel_scope.cancel()

    async def check_now(self) -> list[CheckStatus]:
        """Read every check once, now (what the loops do each interval)."""
        for check in list(self._checks.values()):
            await self._read(check)
        return self.statuses()

    async def _loop(self, check: _Check) -> None:
        while True:
            await self._read(check)
            await anyio.sleep(check.every_s)

    async def _read(self, check: _Check) -> None:
        value: float | None = None
        error: str | None = None
        try:
            value = await anyio.to_thread.run_sync(check.measure)
        except (OSError, psutil.Error, ValueError) as exc:  # F:\ on Linux, a removed drive, ...
            error = f"cannot read: {exc}"
        state = next_state(value, value is not None and check.breached(value))
        before = check.state
        check.status = CheckStatus(check.kind, check.path, value, check.threshold, check.unit, state, error,
                                   time.time())
        if state is not before:
            self._record_edge(check, before, state, value, error)

    def _record_edge(self, check: _Check, before: CheckState, after: CheckState, value: float | None,
                     error: str | None) -> None:
        fields: dict[str, Any] = {"check": check.kind, "path": check.path, "value": value}
        if after is CheckState.ERROR:
            name = f"disk {check.path}" if check.path is not None else check.kind
            self.events.record("check_failed", f"{name}: {error}", level="warning", **fields)
        elif value is None:
            return
        elif after is CheckState.WARNING:
            self.events.record("check_warning", check.describe(value), level="warning", **fields)
        elif before in (CheckState.WARNING, CheckState.ERROR):
            self.events.record("check_recovered", check.describe(value), **fields)


def _gib(n: float) -> str:
    return f"{n / 1024**3:.1f} GiB"
