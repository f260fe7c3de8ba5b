"""Bad input and failures as one-line JSON errors: query parameter parsing, exception handlers, and a
last-resort middleware so that no request ever gets a stack trace (or a 500 for its own mistake)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import structlog
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from orchestrator.errors import ConfigError, InvalidTransition, OrchestratorError, UnknownServiceError

__all__ = ["BadParameter", "ErrorMiddleware", "bool_param", "choice_param", "exception_handlers", "int_param"]

_log = structlog.get_logger("orchestrator.api")


class BadParameter(OrchestratorError):
    def __init__(self, name: str, message: str) -> None:
        self.name = name
        super().__init__(f"{name}: {message}")


def int_param(request: Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = low - 1
    if not low <= value <= high:
        raise BadParameter(name, f"expected a whole number from {low} to {high}, got {raw!r}")
    return value


def choice_param(request: Request, name: str, choices: Sequence[str]) -> str:
    raw = request.query_params.get(name, choices[0])
    if raw not in choices:
        raise BadParameter(name, f"expected one of {', '.join(choices)}, got {raw!r}")
    return raw


def bool_param(request: Request, name: str) -> bool:
    raw = request.query_params.get(name, "false").lower()
    if raw not in ("true", "false", "1", "0", "yes", "no"):
        raise BadParameter(name, f"expected true or false, got {raw!r}")
    return raw in ("true", "1", "yes")


def _error(status: int, message: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"error": message, **extra}, status_code=status)


async def _handle(request: Request, exc: Exception) -> Response:
    match exc:
        case UnknownServiceError():
            return _error(404, str(exc), known=exc.known)
        case BadParameter():
            return _error(400, str(exc), parameter=exc.name)
        case ConfigError():
            return _error(422, "invalid config", issues=[str(i) for i in exc.issues])
        case HTTPException(status_code=404):
            return _error(404, f"no route {request.url.path}")
        case HTTPException(status_code=405):
            return _error(405, f"method {request.method} not allowed on {request.url.path}")
        case HTTPException():
            return _error(exc.status_code, str(exc.detail))
        case _:  # InvalidTransition and other deliberate errors: the request conflicts with the state
            return _error(409, str(exc))


def exception_handlers() -> dict[Any, Callable[[Request, Exception], Awaitable[Response]]]:
    """For Starlette(exception_handlers=...): it looks each exception's classes up in this mapping."""
    kinds = (UnknownServiceError, BadParameter, ConfigError, InvalidTransition, OrchestratorError, HTTPException)
    return dict.fromkeys(kinds, _handle)


class ErrorMiddleware:
    """Any other exception: logged with its traceback, answered with a one-line 500 (if nothing was sent)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def send_and_note(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        except Exception:
            _log.exception("api_request_failed", method=scope["method"], path=scope["path"])
            if not started:
                await _error(500, "internal error; see the supervisor log")(scope, receive, send)
