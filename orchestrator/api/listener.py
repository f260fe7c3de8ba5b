"""The API server in force, swapped for a new one when a reload changes `api:` (listen or token).

On a new address the new server, on a newly bound socket, starts before the old one stops, so nothing
is refused in between; the old server then stops gracefully, which lets the request that asked for the
reload get its answer first. On the same address (a token change) the server in force adopts the new
app: requests are routed to the app of the moment, so there is no gap and no second socket. (It used to
serve a `dup()` of the listening socket from a second server; on Windows the Proactor cannot register
a duplicate of a socket already tied to its completion port: WinError 87, found by the Wine lane.)
If the new address cannot be bound (in use, or public without a token) the old server keeps serving,
the config in force keeps the old `api:` (so the next reload tries again), and `api_rebind_failed` is
recorded.
"""

from __future__ import annotations

import dataclasses
import socket
from collections.abc import Callable
from typing import Any

import anyio
import structlog
from anyio.abc import TaskGroup, TaskStatus

from orchestrator.api.server import ApiServer, bind_socket
from orchestrator.config.spec import Config
from orchestrator.core.supervisor import Supervisor
from orchestrator.errors import OrchestratorError

__all__ = ["ApiListener", "BuildServer"]

_log = structlog.get_logger("orchestrator.app")

BuildServer = Callable[[Config, socket.socket], ApiServer]  # raises ApiSetupError (e.g. no token)


class ApiListener:
    def __init__(self, sup: Supervisor, build: BuildServer, config: Config, sock: socket.socket) -> None:
        self._sup = sup
        self._build = build
        self.server = build(config, sock)
        self._tg: TaskGroup | None = None
        self._stopped = False
        self.on_rebound: list[Callable[[str], None]] = []  # gets the new URL (app.run's announce)

    async def serve(self, *, task_status: TaskStatus[str] = anyio.TASK_STATUS_IGNORED) -> None:
        """`await tg.start(listener.serve)`: the URL once listening; runs until stop(), across swaps."""
        async with anyio.create_task_group() as tg:
            self._tg = tg
            task_status.started(await tg.start(self.server.serve_in_group))
        self._tg = None

    def stop(self) -> None:
        self._stopped = True
        self.server.stop()

    def follow_reload(self, old: Config, new: Config, plan: Any) -> None:
        """Reloader.on_applied: schedule the swap (it must not happen before the reload is answered)."""
        if old.api != new.api and self._tg is not None and not self._stopped:
            self._tg.start_soon(self._swap, old, new)

    async def _swap(self, old: Config, new: Config) -> None:
        previous = self.server
        same = new.api.listen == old.api.listen
        try:
            sock = previous.sock if same else bind_socket(new.api.host, new.api.port)
        except OrchestratorError as exc:
            self._keep_old_api(old, str(exc))
            return
        try:
            server = self._build(new, sock)
        except OrchestratorError as exc:  # no token for a public address, say
            if not same:
                sock.close()
            self._keep_old_api(old, str(exc))
            return
        if same:
            previous.adopt(server)
            self._announce(previous.url)
            return
        assert self._tg is not None
        url = await self._tg.start(server.serve_in_group)
        self.server = server
        previous.stop()
        if self._stopped:  # shutdown began while the new one started
            server.stop()
            return
        self._announce(url)

    def _announce(self, url: str) -> None:
        self._sup.events.record("api_rebound", f"the API now listens on {url}", url=url)
        for announce in self.on_rebound:
            announce(url)

    def _keep_old_api(self, old: Config, reason: str) -> None:
        sup = self._sup
        if sup.config.api != old.api:  # the next reload sees the change again and retries
            sup.config = dataclasses.replace(sup.config, api=old.api)
        sup.events.record("api_rebind_failed", f"the API stays on {self.server.url}: {reason}", level="error")
        _log.error("api_rebind_failed", reason=reason)
