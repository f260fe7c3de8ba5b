"""Request counts and latencies of the control API, labelled by route template (never the raw path).

Pure ASGI middleware, outermost in the app so refused requests (401, 421) are counted too.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from prometheus_client import CollectorRegistry, Counter, Histogram
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["HttpMetrics", "HttpMetricsMiddleware"]

_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMATCHED = "unmatched"  # the route label of a path no route knows: one series, whatever was asked


class HttpMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter(
            "orchestrator_http_requests", "HTTP requests answered by the control API",
            ["method", "route", "status"], registry=registry,
        )
        self.duration = Histogram(
            "orchestrator_http_request_duration_seconds", "Time to answer a control API request",
            ["method", "route"], registry=registry,
        )

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        method = method if method in _METHODS else "other"
        self.requests.labels(method, route, str(status)).inc()
        self.duration.labels(method, route).observe(seconds)


class HttpMetricsMiddleware:
    def __init__(self, app: ASGIApp, metrics: HttpMetrics, routes: Sequence[BaseRoute]) -> None:
        self.app = app
        self.metrics = metrics
        self.routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500  # unless a response starts: an exception escaped
        started = time.perf_counter()

        async def send_and_note(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            self.metrics.observe(scope["method"], self._template(scope), status, time.perf_counter() - started)

    def _template(self, scope: Scope) -> str:
        route = scope.get("route")  # set by the router when it got that far
        if route is None:  # refused before routing: find the template ourselves
            route = next((r for r in self.routes if r.matches(scope)[0] is not Match.NONE), None)
        path = getattr(route, "path", None)
        return path if isinstance(path, str) else UNMATCHED
