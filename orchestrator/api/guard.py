"""The API's connections, bounded: a cap, a deadline for request headers, and quiet accept failures.

Measured on main with the open-file limit at 256: 300 idle TCP connections (connected, sending
nothing) made /api/health time out, a restarting service went `fatal` with `Too many open files`,
and asyncio logged 18,000 traceback lines (one per accept retry). The rules here:

- At most `connection_cap(limit)` connections (a quarter of the open-file limit, at most 1024, at
  least 8), so the rest of the descriptors stay for children, pipes and log files. A connection past
  the cap makes room by closing the oldest one that has no request in progress (idle, or still
  sending its headers); if every connection is busy, the new one gets a 503 and is closed. asyncio
  accepts up to the listen backlog in one go before any protocol runs, so the backlog is half the cap
  (`accept_batch`): with the limit at 256, uvicorn's backlog of 2048 still ran out of descriptors.
- A connection must complete its request headers within HEADER_TIMEOUT_S of opening (or of its
  previous response); else it is closed. An idle keep-alive connection is closed after
  KEEP_ALIVE_S (uvicorn's timeout_keep_alive). Request bodies have no deadline (500 MB uploads).
- When accept() fails for want of descriptors (EMFILE, ENFILE, ENOBUFS, ENOMEM), asyncio retries
  every second and reports each failure to the loop's exception handler with a traceback;
  `AcceptWatch` turns that into one `api_accept_failed` event per episode (and
  `api_accept_recovered` at the next accepted connection).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable
from typing import Any, ClassVar

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from orchestrator.core.events import EventLog

__all__ = [
    "HEADER_TIMEOUT_S",
    "KEEP_ALIVE_S",
    "MAX_CONNECTIONS",
    "AcceptWatch",
    "accept_batch",
    "connection_cap",
    "guarded_protocol",
]

HEADER_TIMEOUT_S = 5.0  # from connect (or the previous response) to complete request headers
KEEP_ALIVE_S = 5  # an idle keep-alive connection is closed after this long (uvicorn's timer)
MAX_CONNECTIONS = 1024  # API connections at most, whatever the open-file limit
_MIN_CONNECTIONS = 8
Handler = Callable[[asyncio.AbstractEventLoop, dict[str, Any]], object]
_ACCEPT_FAILED = "socket.accept() out of system resource"  # asyncio's message (selector loops)


def connection_cap(open_file_limit: int | None) -> int:
    """How many API connections at once: a quarter of the open-file limit, within [8, 1024]."""
    if open_file_limit is None:
        return MAX_CONNECTIONS
    return max(_MIN_CONNECTIONS, min(MAX_CONNECTIONS, open_file_limit // 4))


def accept_batch(cap: int) -> int:
    """The listen backlog, which is also how many connections asyncio accepts in one go before any of
    them runs (and can be closed past the cap): half the cap, at most 128. uvicorn's default, 2048,
    let a burst of idle connections take 2048 descriptors at once."""
    return max(1, min(128, cap // 2))


def _busy_response(cap: int) -> bytes:
    body = json.dumps({"error": f"too many connections (at most {cap}): try again later"}).encode()
    head = (f"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nconnection: close\r\n"
            f"retry-after: 1\r\ncontent-length: {len(body)}\r\n\r\n")
    return head.encode("ascii") + body


class AcceptWatch:
    """The loop's exception handler for accept failures: one event per episode, no traceback."""

    def __init__(self, events: EventLog) -> None:
        self.events = events
        self.failing = False
        self.failures = 0  # accept() failures seen, across episodes
        self._previous: Handler | None = None

    def install(self, loop: asyncio.AbstractEventLoop) -> None:
        current = loop.get_exception_handler()
        owner = getattr(current, "__self__", None)  # a server swapped on reload installed its own
        self._previous = owner._previous if isinstance(owner, AcceptWatch) else current
        loop.set_exception_handler(self._handle)

    def _handle(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        if context.get("message") != _ACCEPT_FAILED:
            if self._previous is not None:
                self._previous(loop, context)
            else:
                loop.default_exception_handler(context)
            return
        self.failures += 1
        if not self.failing:
            self.failing = True
            exc = context.get("exception")
            self.events.record(
                "api_accept_failed", f"the API cannot accept connections: {exc}; retrying every second",
                level="error",
            )

    def accepted_since_failure(self) -> bool:
        return not self.failing and self.failures > 0

    def accepted(self) -> None:
        if self.failing:
            self.failing = False
            self.events.record("api_accept_recovered", "the API accepts connections again")


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with the cap and the header deadline (configured by guarded_protocol)."""

    max_connections: ClassVar[int] = MAX_CONNECTIONS
    header_timeout_s: ClassVar[float] = HEADER_TIMEOUT_S
    watch: ClassVar[AcceptWatch | None] = None

    _header_timer: asyncio.TimerHandle | None = None
    _opened_at = 0.0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._opened_at = self.loop.time()
        if self.watch is not None:
            self.watch.accepted()
        if self._over_cap() and not self._evict_oldest_idle():
            transport.write(_busy_response(self.max_connections))
            transport.close()
            return
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._arm()  # the next request's headers must come in time too

    def _over_cap(self) -> bool:
        live = sum(1 for c in self.connections if not c.transport.is_closing())
        return live > self.max_connections

    def _evict_oldest_idle(self) -> bool:
        idle = [c for c in self.connections
                if c is not self and isinstance(c, GuardedH11Protocol) and c._idle()]
        if not idle:
            return False
        min(idle, key=lambda c: c._opened_at)._close()
        return True

    def _idle(self) -> bool:
        """No request in progress: nothing or part of the headers received since the last response."""
        if self.transport.is_closing():
            return False
        in_progress = self.cycle is not None and not self.cycle.response_complete
        return self.conn.their_state is h11.IDLE and not in_progress

    def _arm(self) -> None:
        self._disarm()
        self._header_timer = self.loop.call_later(self.header_timeout_s, self._header_deadline)

    def _disarm(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _header_deadline(self) -> None:
        self._header_timer = None
        if self._idle():
            self._close()

    def _close(self) -> None:
        self._disarm()
        if not self.transport.is_closing():
            with contextlib.suppress(h11.LocalProtocolError):
                self.conn.send(h11.ConnectionClosed())
            self.transport.close()


def guarded_protocol(max_connections: int, *, header_timeout_s: float = HEADER_TIMEOUT_S,
                     watch: AcceptWatch | None = None) -> type[GuardedH11Protocol]:
    """The protocol class for one server (uvicorn.Config(http=...)) with its own bounds."""
    attrs = {"max_connections": max_connections, "header_timeout_s": header_timeout_s, "watch": watch}
    return type("GuardedH11Protocol", (GuardedH11Protocol,), attrs)
