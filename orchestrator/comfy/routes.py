"""The ComfyUI routes of the control API: `GET /api/comfy/status` and the proxy `/api/comfy/{path}`.

`comfy_routes(comfy, status)` returns them for create_app's `routes=`; they share its middleware (the
token on every POST, Host/Origin rules, request metrics, one-line errors).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

import anyio
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from orchestrator.comfy.client import ComfyError, ComfySample
from orchestrator.comfy.model import ComfyUI
from orchestrator.comfy.proxy import forward
from orchestrator.config.redact import shown_url
from orchestrator.config.spec import ComfySpec
from orchestrator.core.status import DRAINING, ServiceStatus

__all__ = ["STATUS_TIMEOUT_S", "comfy_routes"]

STATUS_TIMEOUT_S = 5.0  # the status route asks ComfyUI live, but never waits longer than this
_ALIVE = frozenset({"starting", "running", DRAINING, "stopping"})


def comfy_routes(comfy: ComfyUI, status: Callable[[str], ServiceStatus]) -> list[BaseRoute]:
    routes = _ComfyRoutes(comfy, status)
    return [
        Route("/api/comfy/status", routes.status, methods=["GET"]),
        Route("/api/comfy/{path:path}", routes.proxy, methods=["GET", "POST"]),
    ]


class _ComfyRoutes:
    def __init__(self, comfy: ComfyUI, status: Callable[[str], ServiceStatus]) -> None:
        self.comfy = comfy
        self.status_of = status

    async def status(self, request: Request) -> Response:
        """---
        summary: ComfyUI's service state and health, with its system stats, GPUs, queue and model folders
        description: Asked live (at most 5 s); when ComfyUI does not answer, still 200, with reachable false.
        responses:
          200: {description: '{service, state, health, reachable, error, system, devices, queue, models}'}
          404: {description: 'no service carries comfy:'}
        """
        runner, spec = self.comfy.runner, self.comfy.spec
        if runner is None or spec is None:
            return JSONResponse({"error": "no service carries comfy: in the config"}, status_code=404)
        st = self.status_of(runner.name)
        if st.state in _ALIVE:
            sample, models = await _ask(self.comfy, spec)
        else:
            sample, models = ComfySample(error=f"ComfyUI is {st.state}"), None
        return JSONResponse(_report(st, spec, sample, models, self.comfy.draining))

    async def proxy(self, request: Request) -> Response:
        """---
        summary: Proxy to ComfyUI's own API ({comfy.url}/{path}, with the query string), bodies streamed
        description: POST needs the token. 400 for a path that would leave ComfyUI, 502 when it cannot be
          reached, 504 after proxy_timeout, 503 with Retry-After for a new prompt during a drain.
        parameters: [{name: path, in: path, required: true, schema: {type: string}}]
        responses: {200: {description: "ComfyUI's answer, as it came"}, 400: {description: bad path},
                    502: {description: ComfyUI unreachable}, 504: {description: ComfyUI too slow}}
        """
        return await forward(request, self.comfy)


async def _ask(comfy: ComfyUI, spec: ComfySpec) -> tuple[ComfySample, list[str] | None]:
    """/system_stats, /queue and /models side by side. Not stored: the metrics keep to the health loop."""
    client = comfy.client(spec, min(spec.proxy_timeout_s, STATUS_TIMEOUT_S))
    snap = await client.snapshot(with_models=True)
    sample = ComfySample().updated(snap.stats, snap.queue, anyio.current_time(), time.time())
    return sample, None if isinstance(snap.models, ComfyError) else snap.models


def _report(st: ServiceStatus, spec: ComfySpec, sample: ComfySample, models: list[str] | None,
            draining: bool) -> dict[str, Any]:
    up = sample.reachable
    return {
        "service": st.name,
        "state": st.state,
        "health": st.health,
        "pid": st.pid,
        "reason": st.reason,
        "url": shown_url(spec.url),  # userinfo and query hidden: either may carry a token
        "draining": draining,
        "reachable": up,
        "error": sample.error,
        "system": dict(sample.system) if up and sample.system else None,
        "devices": [asdict(d) for d in sample.devices] if up else [],
        "queue": asdict(sample.queue) if up and sample.queue is not None else None,
        "models": models if up else None,
    }
