"""The supervisor's memory of what happened: a bounded ring of events, each also logged."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import structlog

__all__ = ["EventLog", "SupervisorEvent"]

_log = structlog.get_logger("orchestrator.events")


@dataclass(frozen=True, slots=True)
class SupervisorEvent:
    id: int
    at: float  # wall-clock seconds since the epoch, for humans
    kind: str  # state_changed, health_changed, restart, check_warning, config_error, reload, ...
    message: str
    service: str | None = None
    fields: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "at": self.at,
            "service": self.service,
            "kind": self.kind,
            "message": self.message,
            **dict(self.fields),
        }


class EventLog:
    def __init__(self, maxlen: int = 1000) -> None:
        self._ring: deque[SupervisorEvent] = deque(maxlen=maxlen)
        self._next_id = 1
        self._listeners: list[Callable[[SupervisorEvent], None]] = []

    def record(
        self, kind: str, message: str, *, service: str | None = None, level: str = "info", **fields: Any
    ) -> SupervisorEvent:
        event = SupervisorEvent(self._next_id, time.time(), kind, message, service, fields)
        self._next_id += 1
        self._ring.append(event)
        _log.log(_LEVELS.get(level, 20), kind, service=service, message=message, **fields)
        for fn in list(self._listeners):
            fn(event)
        return event

    def add_listener(self, fn: Callable[[SupervisorEvent], None]) -> None:
        """`fn` gets every event recorded from now on, synchronously (the dashboard's live feed); it must not block."""
        self._listeners.append(fn)

    def remove_listener(self, fn: Callable[[SupervisorEvent], None]) -> None:
        if fn in self._listeners:
            self._listeners.remove(fn)

    def since(self, event_id: int = 0) -> list[SupervisorEvent]:
        return [e for e in self._ring if e.id > event_id]

    def resize(self, maxlen: int) -> None:
        self._ring = deque(self._ring, maxlen=maxlen)

    @property
    def last_id(self) -> int:
        return self._next_id - 1


_LEVELS = {"debug": 10, "info": 20, "warning": 30, "error": 40}
