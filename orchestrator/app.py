"""The whole program: the supervisor, the control API and signal handling, in one root task group.

Shutdown order: supervisor.shutdown() stops every service (the API keeps answering meanwhile), then
the server stops (log followers are ended first), then the root group exits.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterable, Sequence
from functools import partial

import anyio
import structlog
from anyio.abc import TaskGroup, TaskStatus
from prometheus_client.registry import Collector
from starlette.routing import BaseRoute

from orchestrator.api.app import create_app
from orchestrator.api.auth import AccessPolicy
from orchestrator.api.listener import ApiListener
from orchestrator.api.metrics import build_registry
from orchestrator.api.server import ApiServer, bind_socket
from orchestrator.api.token import ensure_token
from orchestrator.comfy.metrics import ComfyCollector
from orchestrator.comfy.routes import comfy_routes
from orchestrator.config.spec import Config
from orchestrator.core.supervisor import Supervisor
from orchestrator.logs.follow import Followers
from orchestrator.platform.signals import SignalKind, shutdown_signals
from orchestrator.reload.routes import reload_routes

__all__ = ["build_api_server", "open_api_socket", "run"]

_log = structlog.get_logger("orchestrator.app")


async def run(
    config: Config, *, supervisor: Supervisor | None = None, announce: Callable[[str], None] | None = None
) -> None:
    """Run until a shutdown signal; every service is stopped before this returns. `announce` gets the
    API's URL once it listens. Raises ApiSetupError, before any child starts, if the API cannot listen."""
    sock = open_api_socket(config)  # before the supervisor: nothing to undo if the API cannot listen
    sup = supervisor or Supervisor(config)
    api = ApiListener(sup, lambda cfg, s: build_api_server(cfg, sup, s), config, sock)
    sup.reloader.on_applied.append(api.follow_reload)  # a new api.listen/token: a new server
    async with anyio.create_task_group() as tg:
        tg.start_soon(_watch_signals, sup, tg)
        async with anyio.create_task_group() as core:
            await core.start(_supervise, sup, api)
            url = await core.start(api.serve)
            _log.info("api_listening", url=url)
            if announce is not None:
                announce(url)
                api.on_rebound.append(announce)
        tg.cancel_scope.cancel()
    _log.info("supervisor_stopped")


def open_api_socket(config: Config) -> socket.socket:
    """The API's preconditions: a token (refused for a public address without one), api.listen bound."""
    ensure_token(config.api, config.state_dir)
    return bind_socket(config.api.host, config.api.port)


def build_api_server(
    config: Config, sup: Supervisor, sock: socket.socket, *,
    routes: Sequence[BaseRoute] = (), collectors: Iterable[Collector] = (), followers: Followers | None = None,
) -> ApiServer:
    """The control API over `sup` on `sock` (the seam for more routes and collectors); ComfyUI's are in."""
    token = ensure_token(config.api, config.state_dir)
    port = sock.getsockname()[1]  # the real one when api.listen asked for port 0
    followers = Followers() if followers is None else followers
    routes = [*reload_routes(sup), *comfy_routes(sup.comfy, sup.status), *routes]
    registry = build_registry(sup, extra=[ComfyCollector(sup.comfy), *collectors])
    app = create_app(
        sup, registry, access=AccessPolicy.for_listener(config.api.host, port, token),
        followers=followers, routes=routes,
    )
    return ApiServer(app, sock, on_stop=[followers.close_all])


async def _supervise(sup: Supervisor, api: ApiListener, *, task_status: TaskStatus[None]) -> None:
    try:
        await sup.run(task_status=task_status)
    finally:
        api.stop()  # every service is stopped (or we are cancelled): the API goes last


async def _watch_signals(sup: Supervisor, tg: TaskGroup) -> None:
    """First shutdown signal (SIGINT/SIGTERM; on Windows Ctrl+C, Ctrl+Break, console close): orderly
    shutdown. A second one: cancel, and the cleanups still reap. SIGHUP (POSIX): reload the file."""
    shutting_down = False
    with shutdown_signals() as signals:
        async for sig in signals:
            if sig.kind is SignalKind.RELOAD:
                _log.info("reload_requested", signal=sig.name)
                tg.start_soon(partial(sup.reload, trigger=sig.name))  # never raises; records its outcome
            elif shutting_down:
                _log.warning("second_signal_cancelling", signal=sig.name)
                tg.cancel_scope.cancel()
                return
            else:
                shutting_down = True
                _log.info("shutdown_requested", signal=sig.name)
                tg.start_soon(sup.shutdown)
