"""The control API: a thin Starlette layer, one supervisor call per handler.

`create_app(supervisor, registry, access=...)` builds it; nothing is global. More routes (reload,
ComfyUI) come in through `routes=`; they share the middleware (metrics, Host/Origin/token rules, one-line
errors) and appear in /api/openapi.json when their endpoint has a YAML docstring after `---`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import anyio
from prometheus_client import CollectorRegistry
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route
from starlette.schemas import SchemaGenerator

from orchestrator import __version__
from orchestrator.api.auth import AccessGuard, AccessPolicy
from orchestrator.api.errors import (
    BadParameter,
    ErrorMiddleware,
    bool_param,
    choice_param,
    exception_handlers,
    int_param,
)
from orchestrator.api.httpmetrics import HttpMetrics, HttpMetricsMiddleware
from orchestrator.api.metrics import CONTENT_TYPE, render
from orchestrator.api.protocols import SIGNALS, SupervisorAPI
from orchestrator.logs.follow import MAX_LINES, Followers, tail_text
from orchestrator.types import LogSource

__all__ = ["DEFAULT_LINES", "create_app"]

DEFAULT_LINES = 100
_SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def create_app(
    supervisor: SupervisorAPI,
    registry: CollectorRegistry,
    *,
    access: AccessPolicy,
    followers: Followers | None = None,
    routes: Sequence[BaseRoute] = (),
    about: Mapping[str, object] | None = None,
) -> Starlette:
    """The app over `supervisor`; `registry` is what /api/metrics renders (see metrics.build_registry).
    `about` joins /api/health's answer (the config file and pid: how the CLI tells two supervisors apart)."""
    control = ControlApi(supervisor, registry, Followers() if followers is None else followers, about or {})
    all_routes = [*control.routes(), *routes]
    control.schema_routes = all_routes
    middleware = [
        Middleware(HttpMetricsMiddleware, metrics=HttpMetrics(registry), routes=all_routes),
        Middleware(AccessGuard, policy=access),
        Middleware(ErrorMiddleware),
    ]
    return Starlette(routes=all_routes, middleware=middleware, exception_handlers=exception_handlers())


class ControlApi:
    def __init__(
        self, sup: SupervisorAPI, registry: CollectorRegistry, followers: Followers, about: Mapping[str, object]
    ) -> None:
        self.sup = sup
        self.about = dict(about)
        self.registry = registry
        self.followers = followers
        self.schema_routes: list[BaseRoute] = []

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/api/health", self.health),
            Route("/api/status", self.status),
            Route("/api/system/ignite", self.ignite, methods=["POST"]),
            Route("/api/system/{name}/status", self.service_status),
            Route("/api/system/{name}/start", self.start, methods=["POST"]),
            Route("/api/system/{name}/stop", self.stop, methods=["POST"]),
            Route("/api/system/{name}/restart", self.restart, methods=["POST"]),
            Route("/api/system/{name}/signal", self.signal, methods=["POST"]),
            Route("/api/logs/{name}", self.logs),
            Route("/api/events", self.events),
            Route("/api/metrics", self.metrics),
            Route("/api/openapi.json", self.openapi),
        ]

    async def health(self, request: Request) -> Response:
        """The supervisor itself.
        ---
        summary: The supervisor is up
        responses: {200: {description: '{status: ok, version, uptime_s, config, pid}'}}
        """
        uptime = round(anyio.current_time() - self.sup.started_at, 3)
        return JSONResponse({"status": "ok", "version": __version__, "uptime_s": uptime, **self.about})

    async def status(self, request: Request) -> Response:
        """Every service, and the system checks.
        ---
        summary: Every service's status and the system checks (disk, memory)
        responses: {200: {description: '{services: [service status], system: {...}}'}}
        """
        await self.sup.resources.refresh()
        services = [s.to_dict() for s in self.sup.statuses()]
        return JSONResponse({"services": services, "system": dict(self.sup.system_status())})

    async def service_status(self, request: Request) -> Response:
        """---
        summary: One service's status
        parameters: [{name: name, in: path, required: true, schema: {type: string}}]
        responses: {200: {description: service status}, 404: {description: 'unknown service; lists the known'}}
        """
        name = request.path_params["name"]
        self.sup.runner(name)  # an unknown name is a 404 before any sampling
        await self.sup.resources.refresh()
        return JSONResponse(self.sup.status(name).to_dict())

    async def start(self, request: Request) -> Response:
        """---
        summary: Start a service (a fatal one gets its restart budget back); answers with its new status
        parameters: [{name: name, in: path, required: true, schema: {type: string}}]
        responses: {200: {description: service status}, 401: {description: token missing}, 404: {description: unknown}}
        """
        return JSONResponse((await self.sup.start(request.path_params["name"])).to_dict())

    async def stop(self, request: Request) -> Response:
        """---
        summary: Stop a service; answers once its whole process tree is gone
        parameters: [{name: name, in: path, required: true, schema: {type: string}}]
        responses: {200: {description: service status}, 401: {description: token missing}, 404: {description: unknown}}
        """
        return JSONResponse((await self.sup.stop(request.path_params["name"])).to_dict())

    async def restart(self, request: Request) -> Response:
        """---
        summary: Restart a service; answers once the new process is spawned
        description: drain=true (the comfy service) first refuses new prompts and waits for ComfyUI's queue
          to empty, at most comfy.drain_timeout; the status shows state draining meanwhile.
        parameters:
          - {name: name, in: path, required: true, schema: {type: string}}
          - {name: drain, in: query, schema: {type: boolean, default: false}}
        responses: {200: {description: service status}, 401: {description: token missing}, 404: {description: unknown}}
        """
        drain = bool_param(request, "drain")
        return JSONResponse((await self.sup.restart(request.path_params["name"], drain=drain)).to_dict())

    async def signal(self, request: Request) -> Response:
        """---
        summary: Send a signal to a service's process group (Windows - CTRL_BREAK_EVENT, or SIGKILL - end the job)
        parameters:
          - {name: name, in: path, required: true, schema: {type: string}}
          - name: signal
            in: query
            required: true
            schema: {type: string, enum: [SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGKILL, SIGUSR1, SIGUSR2, SIGBREAK]}
        responses:
          200: {description: service status}
          400: {description: bad signal}
          401: {description: token missing}
          404: {description: unknown}
          409: {description: not running}
        """
        name = request.path_params["name"]
        self.sup.runner(name)  # an unknown name is a 404 before the parameter is judged
        signal_name = choice_param(request, "signal", ("", *SIGNALS))
        if not signal_name:
            raise BadParameter("signal", f"expected one of {', '.join(SIGNALS)}")
        return JSONResponse((await self.sup.signal(name, signal_name)).to_dict())

    async def ignite(self, request: Request) -> Response:
        """---
        summary: Start every service that is not running
        responses: {200: {description: '{services: [service status]}'}, 401: {description: token missing}}
        """
        return JSONResponse({"services": [s.to_dict() for s in await self.sup.ignite()]})

    async def logs(self, request: Request) -> Response:
        """---
        summary: The last lines of a service's log (across rotations); follow=true streams new lines as SSE
        parameters:
          - {name: name, in: path, required: true, schema: {type: string}}
          - {name: stream, in: query, schema: {type: string, enum: [stdout, stderr], default: stdout}}
          - {name: lines, in: query, schema: {type: integer, minimum: 0, maximum: 10000, default: 100}}
          - {name: follow, in: query, schema: {type: boolean, default: false}}
        responses:
          200: {description: '{service, stream, lines: [...]} or text/event-stream'}
          400: {description: bad parameter}
          503: {description: too many log followers}
        """
        name, stream = request.path_params["name"], choice_param(request, "stream", ("stdout", "stderr"))
        n, source = int_param(request, "lines", DEFAULT_LINES, 0, MAX_LINES), self._source(name, stream)
        if bool_param(request, "follow"):
            if self.followers.full:
                message = f"too many log followers (at most {self.followers.max_followers}): try again later"
                return JSONResponse({"error": message}, status_code=503, headers={"Retry-After": "5"})
            return StreamingResponse(self.followers.follow(source, n), media_type="text/event-stream",
                                     headers=_SSE_HEADERS)
        return JSONResponse({"service": name, "stream": stream, "lines": await tail_text(source, n)})

    async def events(self, request: Request) -> Response:
        """---
        summary: The supervisor's recent events (state changes, restarts with reasons, warnings)
        parameters: [{name: since, in: query, schema: {type: integer, minimum: 0, default: 0}}]
        responses: {200: {description: '{events: [...], last_id}'}, 400: {description: bad parameter}}
        """
        since = int_param(request, "since", 0, 0, 2**63 - 1)
        events = [e.to_dict() for e in self.sup.events.since(since)]
        return JSONResponse({"events": events, "last_id": self.sup.events.last_id})

    async def metrics(self, request: Request) -> Response:
        """---
        summary: Prometheus metrics (text format)
        responses: {200: {description: text/plain exposition format}}
        """
        await self.sup.resources.refresh()  # collect() reads what is cached; make it current first
        return Response(render(self.registry), media_type=CONTENT_TYPE)

    async def openapi(self, request: Request) -> Response:
        """---
        summary: This schema (OpenAPI 3)
        responses: {200: {description: the schema of every route}}
        """
        return JSONResponse(_SCHEMA.get_schema(self.schema_routes))

    def _source(self, name: str, stream: str) -> LogSource:
        view = self.sup.runner(name)
        return view.stdout if stream == "stdout" else view.stderr


_SCHEMA = SchemaGenerator(
    {"openapi": "3.0.0", "info": {"title": "orchestrator control API", "version": __version__}}
)
