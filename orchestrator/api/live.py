"""The dashboard's live feed: `GET /api/live`, Server-Sent Events pushed when the data changes.

Rule: nothing ticks. A stream sleeps until the event ring records something (a state change, a
restart, a health flip, a reload) or the history takes a point (every history.EVERY_S, with fresh
CPU and memory figures); it then sends the new events, the new point and the status (the status
is read from what the supervisor holds: a push never samples the machine). Quiet, it sends a
comment every HEARTBEAT_S (15 s) so that proxies keep it open and a gone client is noticed.

Messages (each `event: NAME`, `data: JSON`):
- `history`: GET /api/history's body, once at the start;
- `status`: GET /api/status's body plus `comfy` (queue and VRAM, or null);
- `events`: `{events, last_id}` with `id: last_id`, so a reconnecting EventSource sends
  Last-Event-ID and gets only what it missed;
- `sample`: one new history point.

A new stream costs one resource sample (shared with every other reader, so at most one per
`status.every`); after that a page never makes the supervisor sample: the figures it shows move
with the history's points.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any, Protocol

import anyio
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from orchestrator.api.protocols import SupervisorAPI
from orchestrator.core.events import SupervisorEvent
from orchestrator.core.history import Sample, SampleListener

__all__ = ["HEARTBEAT_S", "MAX_BACKLOG", "HistoryView", "LiveFeeds", "live_routes", "status_body"]

HEARTBEAT_S = 15.0
MAX_BACKLOG = 200  # events sent to a new (or reconnecting) page at most; the ring may hold more
SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
_MAX_PENDING_SAMPLES = 8  # points queued for one slow stream; older ones are dropped (the page redraws anyway)


class HistoryView(Protocol):
    def to_dict(self) -> dict[str, Any]: ...

    def add_listener(self, fn: SampleListener) -> None: ...

    def remove_listener(self, fn: SampleListener) -> None: ...


class EventSource(Protocol):
    @property
    def last_id(self) -> int: ...

    def since(self, event_id: int = 0) -> list[SupervisorEvent]: ...

    def add_listener(self, fn: Callable[[SupervisorEvent], None]) -> None: ...

    def remove_listener(self, fn: Callable[[SupervisorEvent], None]) -> None: ...


def status_body(sup: SupervisorAPI, comfy: Callable[[], dict[str, Any] | None]) -> dict[str, Any]:
    """GET /api/status's body from the figures as they are (no sample is asked for), plus ComfyUI's queue/VRAM."""
    services = [s.to_dict() for s in sup.statuses(sample=False)]
    return {"services": services, "system": dict(sup.system_status()), "comfy": comfy()}


def message(event: str, data: Mapping[str, Any], event_id: int | None = None) -> bytes:
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


class LiveFeeds:
    """Every open live stream, so that a server shutdown can end them all at once (`close_all`)."""

    def __init__(self, events: EventSource, history: HistoryView, status: Callable[[], dict[str, Any]],
                 refresh: Callable[[], Awaitable[None]]) -> None:
        self.events = events
        self.history = history
        self.status = status  # the status body (services, system, comfy), from cached figures
        self.refresh = refresh  # fresh figures for a page that just opened (shared: at most one per status.every)
        self._open: set[anyio.Event] = set()
        self.closed = False

    @property
    def count(self) -> int:
        return len(self._open)

    def close_all(self) -> None:
        self.closed = True
        for wake in list(self._open):
            wake.set()

    async def stream(self, after_id: int | None) -> AsyncIterator[bytes]:
        """The messages for one page; `after_id` is Last-Event-ID of a reconnecting EventSource."""
        state = _Stream()
        self.events.add_listener(state.on_event)
        self.history.add_listener(state.on_sample)
        self._open.add(state.wake)
        try:
            await self.refresh()
            if after_id is None:
                yield message("history", self.history.to_dict())
            yield message("status", self.status())
            if after_id is not None and after_id > self.events.last_id:
                after_id = None  # ids from an earlier run of the supervisor: start over
            last = self.events.last_id  # read with the backlog, no await between: nothing falls in between
            backlog = [e.to_dict() for e in self.events.since(after_id or 0)[-MAX_BACKLOG:]]
            yield message("events", {"events": backlog, "last_id": last}, event_id=last)
            while not self.closed:
                with anyio.move_on_after(HEARTBEAT_S):
                    await state.wake.wait()
                if self.closed:
                    return
                if not state.wake.is_set():
                    yield b": keepalive\n\n"
                    continue
                self._open.discard(state.wake)
                state.wake = anyio.Event()
                self._open.add(state.wake)
                chunks = [message("sample", s.to_dict()) for s in state.take_samples()]
                events = self.events.since(last)
                if events:
                    last = events[-1].id
                    chunks.append(message("events", {"events": [e.to_dict() for e in events], "last_id": last},
                                          event_id=last))
                chunks.append(message("status", self.status()))
                yield b"".join(chunks)
        finally:
            self.events.remove_listener(state.on_event)
            self.history.remove_listener(state.on_sample)
            self._open.discard(state.wake)


class _Stream:
    def __init__(self) -> None:
        self.wake = anyio.Event()
        self._samples: list[Sample] = []

    def on_event(self, event: SupervisorEvent) -> None:
        self.wake.set()

    def on_sample(self, sample: Sample) -> None:
        self._samples.append(sample)
        del self._samples[:-_MAX_PENDING_SAMPLES]
        self.wake.set()

    def take_samples(self) -> list[Sample]:
        taken, self._samples = self._samples, []
        return taken


def live_routes(feeds: LiveFeeds) -> list[BaseRoute]:
    routes = _LiveRoutes(feeds)
    return [Route("/api/live", routes.live, methods=["GET"]), Route("/api/history", routes.history, methods=["GET"])]


class _LiveRoutes:
    def __init__(self, feeds: LiveFeeds) -> None:
        self.feeds = feeds

    async def live(self, request: Request) -> Response:
        """---
        summary: The dashboard's live feed (text/event-stream) - history, status, events and samples as they change
        description: Messages history (once), status, events (with id; send Last-Event-ID to resume) and
          sample; a comment every 15 s while quiet. See docs/dashboard.md.
        responses: {200: {description: text/event-stream}}
        """
        raw = request.headers.get("last-event-id", "")
        after = int(raw) if raw.isdigit() else None
        return StreamingResponse(self.feeds.stream(after), media_type="text/event-stream", headers=SSE_HEADERS)

    async def history(self, request: Request) -> Response:
        """---
        summary: Each service's CPU and memory over the last 30 minutes (one point every 20 s), and ComfyUI's
        responses: {200: {description: '{span_s, every_s, services: {name: {t, cpu_percent, rss_bytes}}, comfy}'}}
        """
        return JSONResponse(self.feeds.history.to_dict())
