"""What the supervisor reads from ComfyUI's own HTTP API, and the sampled picture it keeps of it.

ComfyUI 0.3.x shapes: `GET /system_stats` -> {"system": {...}, "devices": [{name, type, index,
vram_total, vram_free, torch_vram_total, torch_vram_free}]}; `GET /queue` -> {"queue_running": [...],
"queue_pending": [...]}; `GET /models` -> a list of model folder names.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

import anyio

from orchestrator.errors import OrchestratorError
from orchestrator.health.probe import describe_http_error as describe_probe_error
from orchestrator.health.probe import format_seconds

if TYPE_CHECKING:  # httpx is imported with the shared client (health/probe.py), when first needed
    import httpx

__all__ = [
    "ComfyClient",
    "ComfyDevice",
    "ComfyError",
    "ComfySample",
    "ComfySnapshot",
    "FailureKind",
    "QueueCounts",
    "attempt",
    "describe_http_error",
]

_T = TypeVar("_T")

FailureKind = str  # "timeout" | "refused" (cannot connect: nothing listens) | "error"


class ComfyError(OrchestratorError):
    """ComfyUI did not answer usefully. `kind` says how: timeout, refused (nothing listens) or error."""

    def __init__(self, kind: FailureKind, message: str) -> None:
        self.kind = kind
        self.message = message
        super().__init__(message)


def describe_http_error(exc: httpx.HTTPError, timeout_s: float) -> ComfyError:
    """One line for a failed request to ComfyUI (in the health probe's words), and its kind."""
    import httpx  # loaded: `exc` is one of its errors

    if isinstance(exc, httpx.TimeoutException):
        return ComfyError("timeout", f"timeout after {format_seconds(timeout_s)}")
    message = describe_probe_error(exc)
    return ComfyError("refused" if isinstance(exc, httpx.ConnectError) else "error", message)


@dataclass(frozen=True, slots=True)
class ComfyDevice:
    name: str
    type: str
    index: int | None
    vram_total: int
    vram_free: int
    torch_vram_total: int
    torch_vram_free: int

    @classmethod
    def parse(cls, raw: Mapping[str, Any]) -> ComfyDevice:
        index = raw.get("index")
        return cls(
            name=str(raw.get("name", "")),
            type=str(raw.get("type", "")),
            index=index if isinstance(index, int) else None,
            vram_total=_int(raw.get("vram_total")),
            vram_free=_int(raw.get("vram_free")),
            torch_vram_total=_int(raw.get("torch_vram_total")),
            torch_vram_free=_int(raw.get("torch_vram_free")),
        )


@dataclass(frozen=True, slots=True)
class QueueCounts:
    running: int
    pending: int

    @property
    def busy(self) -> bool:
        return self.running > 0 or self.pending > 0


@dataclass(frozen=True, slots=True)
class ComfySample:
    """The last known picture of ComfyUI, refreshed by the sampler; read by status and metrics."""

    reachable: bool = False
    error: str | None = "not sampled yet"
    at: float | None = None  # monotonic time of the last answer
    at_wall: float | None = None  # the same, wall clock, for humans
    system: Mapping[str, Any] = field(default_factory=dict)
    devices: tuple[ComfyDevice, ...] = ()
    queue: QueueCounts | None = None  # the last queue ComfyUI reported (kept through a timeout)

    @property
    def ram_free(self) -> int | None:
        value = self.system.get("ram_free")
        return value if isinstance(value, int) else None

    def updated(
        self,
        stats: tuple[Mapping[str, Any], tuple[ComfyDevice, ...]] | ComfyError,
        queue: QueueCounts | ComfyError,
        now: float,
        wall: float,
    ) -> ComfySample:
        """The next sample: what answered replaces the old value; what failed keeps it (busy GPU)."""
        failed = [f"/{name}: {r.message}" for name, r in (("system_stats", stats), ("queue", queue))
                  if isinstance(r, ComfyError)]
        answered = len(failed) < 2
        system, devices = (self.system, self.devices) if isinstance(stats, ComfyError) else stats
        return ComfySample(
            reachable=answered,
            error="; ".join(failed) or None,
            at=now if answered else self.at,
            at_wall=wall if answered else self.at_wall,
            system=system,
            devices=devices,
            queue=self.queue if isinstance(queue, ComfyError) else queue,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "reachable": self.reachable,
            "error": self.error,
            "sampled_at": self.at_wall,
            "system": dict(self.system),
            "devices": [asdict(d) for d in self.devices],
            "queue": asdict(self.queue) if self.queue is not None else None,
        }


@dataclass(slots=True)
class ComfySnapshot:
    """One round of fetches; a part that failed holds the ComfyError that took its place."""

    stats: tuple[Mapping[str, Any], tuple[ComfyDevice, ...]] | ComfyError = field(
        default_factory=lambda: ComfyError("error", "not fetched"))
    queue: QueueCounts | ComfyError = field(default_factory=lambda: ComfyError("error", "not fetched"))
    models: list[str] | ComfyError = field(default_factory=lambda: ComfyError("error", "not fetched"))


class ComfyClient:
    """GETs against ComfyUI's API over the shared AsyncClient; every failure is a ComfyError."""

    def __init__(self, base_url: str, http: httpx.AsyncClient, timeout_s: float) -> None:
        self.base_url = base_url.rstrip("/")
        self.http = http
        self.timeout_s = timeout_s

    async def system_stats(self) -> tuple[Mapping[str, Any], tuple[ComfyDevice, ...]]:
        body = await self._get_json("/system_stats")
        if not isinstance(body, dict) or not isinstance(body.get("system"), dict):
            raise ComfyError("error", "unexpected /system_stats answer: no 'system' object")
        devices = body.get("devices")
        parsed = tuple(ComfyDevice.parse(d) for d in devices if isinstance(d, dict)) if isinstance(
            devices, list) else ()
        return body["system"], parsed

    async def queue(self) -> QueueCounts:
        body = await self._get_json("/queue")
        if not isinstance(body, dict):
            raise ComfyError("error", "unexpected /queue answer: not an object")
        running, pending = body.get("queue_running"), body.get("queue_pending")
        return QueueCounts(len(running) if isinstance(running, list) else 0,
                           len(pending) if isinstance(pending, list) else 0)

    async def models(self) -> list[str]:
        body = await self._get_json("/models")
        if not isinstance(body, list):
            raise ComfyError("error", "unexpected /models answer: not a list")
        return [str(m) for m in body]

    async def snapshot(self, *, with_models: bool = False) -> ComfySnapshot:
        """/system_stats, /queue (and /models) side by side; each part an answer or its ComfyError."""
        snap = ComfySnapshot()

        async def get_stats() -> None:
            snap.stats = await attempt(self.system_stats)

        async def get_queue() -> None:
            snap.queue = await attempt(self.queue)

        async def get_models() -> None:
            snap.models = await attempt(self.models)

        async with anyio.create_task_group() as tg:
            tg.start_soon(get_stats)
            tg.start_soon(get_queue)
            if with_models:
                tg.start_soon(get_models)
        return snap

    async def _get_json(self, path: str) -> Any:
        import httpx  # loaded with the client (health/probe.py)

        try:
            response = await self.http.get(self.base_url + path, timeout=self.timeout_s)
        except httpx.HTTPError as exc:
            raise describe_http_error(exc, self.timeout_s) from None
        if response.status_code != 200:
            raise ComfyError("error", f"{path}: status {response.status_code}")
        try:
            return response.json()
        except ValueError:
            raise ComfyError("error", f"{path}: answer is not JSON") from None


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


async def attempt(fetch: Callable[[], Awaitable[_T]]) -> _T | ComfyError:
    """The answer, or the ComfyError that took its place (to run several fetches side by side)."""
    try:
        return await fetch()
    except ComfyError as exc:
        return exc
