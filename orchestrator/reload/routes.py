"""The reload routes of the control API: `POST /api/reload` and `GET /api/reload/plan`.

Both re-read the supervisor's own config file (the running one's path) and plan against the running
services. The POST applies the plan (token required, like every mutation; `dry_run=true` only plans);
the GET only plans (`orchestrator check --diff`). An invalid file answers 422 with every issue (file,
line, key path) and changes nothing.
"""

from __future__ import annotations

from typing import Protocol

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from orchestrator.api.errors import bool_param
from orchestrator.config.spec import Config
from orchestrator.reload.reloader import ReloadResult

__all__ = ["Reloadable", "reload_routes", "result_response"]


class Reloadable(Protocol):
    async def reload(
        self, new_config: Config | None = None, *, trigger: str = "api", dry_run: bool = False
    ) -> ReloadResult: ...


def reload_routes(sup: Reloadable) -> list[BaseRoute]:
    routes = _ReloadRoutes(sup)
    return [
        Route("/api/reload", routes.reload, methods=["POST"]),
        Route("/api/reload/plan", routes.plan, methods=["GET"]),
    ]


class _ReloadRoutes:
    def __init__(self, sup: Reloadable) -> None:
        self.sup = sup

    async def reload(self, request: Request) -> Response:
        """---
        summary: Re-read the config file and apply what changed (dry_run=true only plans it)
        description: >
          Services whose process-defining settings changed restart, supervision-only changes apply in
          place, the rest is untouched. A change of api.listen rebinds the API after this answer.
        parameters: [{name: dry_run, in: query, schema: {type: boolean, default: false}}]
        responses:
          200: {description: '{ok, trigger, dry_run, plan: {summary, services, globals, warnings}, outcomes, failures}'}
          401: {description: token missing}
          422: {description: 'invalid config, nothing changed: {error, issues, errors: [{file, line, key_path}]}'}
          503: {description: the supervisor is shutting down}
        """
        dry_run = bool_param(request, "dry_run")
        return result_response(await self.sup.reload(trigger="api", dry_run=dry_run))

    async def plan(self, request: Request) -> Response:
        """---
        summary: The plan a reload would carry out now, against the running services; nothing changes
        responses:
          200: {description: '{ok, dry_run: true, plan: {summary, services, globals, warnings}}'}
          422: {description: 'invalid config: {error, issues, errors: [{file, line, key_path, message}]}'}
        """
        return result_response(await self.sup.reload(trigger="api", dry_run=True))


def result_response(result: ReloadResult) -> JSONResponse:
    body = result.to_dict()
    if result.errors:
        issues = [str(e) for e in result.errors]
        return JSONResponse({"error": "invalid config, nothing changed", "issues": issues, **body}, status_code=422)
    if result.plan is None:  # not even planned: the supervisor is not running or is shutting down
        return JSONResponse({"error": "; ".join(result.failures) or "reload refused", **body}, status_code=503)
    return JSONResponse(body)
