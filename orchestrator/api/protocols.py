"""What the control API and the metrics need from the supervisor: Protocols only.

api/app.py and api/metrics.py see the supervisor through these, never through runner or machine, so
they can be driven by anything that has this shape.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from orchestrator.core.events import EventLog
from orchestrator.core.status import ServiceStatus
from orchestrator.types import LogSource

# What the signal route may send. On Windows a process group can only be sent CTRL_BREAK_EVENT (the
# platform's signal_tree), whichever of these is named; SIGKILL ends the whole job there too.
SIGNALS = ("SIGHUP", "SIGINT", "SIGQUIT", "SIGTERM", "SIGKILL", "SIGUSR1", "SIGUSR2", "SIGBREAK")

__all__ = ["SIGNALS", "ServiceView", "SupervisorAPI", "UsageSampler"]


class ServiceView(Protocol):
    """What the API reads from one service beyond its status (a ServiceRunner)."""

    @property
    def stdout(self) -> LogSource: ...

    @property
    def stderr(self) -> LogSource: ...


class UsageSampler(Protocol):
    async def refresh(self) -> None:
        """Bring the services' resource figures up to date unless fresh (shared, at most once per interval)."""
        ...


class SupervisorAPI(Protocol):
    """The commands and queries the control API offers, one call each (a Supervisor)."""

    @property
    def events(self) -> EventLog: ...

    @property
    def started_at(self) -> float:
        """anyio.current_time() when the supervisor was made: the base of its uptime."""
        ...

    @property
    def runners(self) -> Mapping[str, ServiceView]: ...

    @property
    def resources(self) -> UsageSampler: ...

    def runner(self, name: str) -> ServiceView:
        """Raises UnknownServiceError (with the known names) for a name that is not configured."""
        ...

    def status(self, name: str) -> ServiceStatus: ...

    def statuses(self, *, sample: bool = True) -> list[ServiceStatus]:
        """`sample=False`: do not ask for fresher resource figures (a reader that must cost nothing)."""
        ...

    def system_status(self) -> Mapping[str, Any]:
        """The system checks (disk, memory) with their current values; JSON-ready."""
        ...

    async def start(self, name: str) -> ServiceStatus: ...

    async def stop(self, name: str) -> ServiceStatus: ...

    async def restart(self, name: str, *, drain: bool = False) -> ServiceStatus:
        """`drain`: for the `comfy:` service, wait for ComfyUI's queue to empty first (no effect on others)."""
        ...

    async def ignite(self) -> list[ServiceStatus]: ...

    async def signal(self, name: str, signal_name: str) -> ServiceStatus:
        """Send one of core.supervisor.SIGNALS to the service's process group."""
        ...
