"""uvicorn embedded on the running event loop: no thread, no process, no signal handlers of its own.

- Signals belong to app.run's watcher, so `capture_signals` is a no-op here (uvicorn's would install
  SIGINT/SIGTERM handlers and re-raise the signals when it ends).
- The socket is bound by us before anything starts (`bind_socket`): an address in use is our clear
  ApiSetupError, not uvicorn's sys.exit(1).
- It idles without ticking: uvicorn's main loop wakes every 0.1 s to refresh the Date header and look
  at should_exit; ours sends no Date header and sleeps on an event until `stop()`.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import socket
from collections.abc import Callable, Generator, Sequence

import anyio
import uvicorn
from anyio.abc import TaskStatus
from starlette.types import ASGIApp, Receive, Scope, Send

from orchestrator.api.guard import KEEP_ALIVE_S, MAX_CONNECTIONS, AcceptWatch, accept_batch, guarded_protocol
from orchestrator.api.token import ApiSetupError

__all__ = ["ApiServer", "bind_socket", "url_of"]

GRACEFUL_SHUTDOWN_S = 3  # open requests get this long after stop(); followers are ended before


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket on host:port (0: any free port). Raises ApiSetupError naming the address."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # Nagle off (TCP_NODELAY) on every accepted connection: with it on, every keep-alive response waited
    # for the client's delayed ACK, 40 ms per request. asyncio sets it itself only on sockets whose proto
    # says TCP, which the Windows Proactor's accepted sockets never do (proto 0; measured under Wine:
    # NODELAY 0). Set on the listening socket, it is inherited by accepted ones on Windows and Linux.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        if hasattr(socket, "SO_EXCLUSIVEADDRUSE"):  # Windows: no other program may share the port
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_EXCLUSIVEADDRUSE, 1)
        else:  # POSIX: rebind at once after a restart (TIME_WAIT), still refused while someone listens
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(128)
        sock.setblocking(False)
    except OSError as exc:
        sock.close()
        where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        raise ApiSetupError(f"cannot listen on {where} (api.listen): {_bind_failure(exc)}") from exc
    return sock


# Our own words, chosen by errno: the OS's text differs by platform and by locale (Windows says "Only one
# usage of each socket address ... is normally permitted"; Wine gives no text at all, "Windows Error 0x2740").
_IN_USE = {errno.EADDRINUSE, getattr(errno, "WSAEADDRINUSE", errno.EADDRINUSE)}
_NOT_LOCAL = {errno.EADDRNOTAVAIL, getattr(errno, "WSAEADDRNOTAVAIL", errno.EADDRNOTAVAIL)}
_DENIED = {errno.EACCES, getattr(errno, "WSAEACCES", errno.EACCES)}


def _bind_failure(exc: OSError) -> str:
    if exc.errno in _IN_USE:
        return "the address is already in use (another program listens there)"
    if exc.errno in _NOT_LOCAL:
        return "the address is not one of this machine's"
    if exc.errno in _DENIED:
        return "permission denied (a reserved or excluded port?)"
    return exc.strerror or str(exc)


def url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


class ApiServer(uvicorn.Server):
    """Serves `app` on a pre-bound socket inside the caller's task group until `stop()`."""

    def __init__(
        self, app: ASGIApp, sock: socket.socket, *, on_stop: Sequence[Callable[[], None]] = (),
        max_connections: int = MAX_CONNECTIONS, watch: AcceptWatch | None = None,
    ) -> None:
        self._app = app
        # Bounded connections (api/guard.py): a cap, a header deadline, idle keep-alives closed.
        protocol = guarded_protocol(max_connections, watch=watch)
        config = uvicorn.Config(
            self._current_app, interface="asgi3", log_config=None, lifespan="off", access_log=False,
            date_header=False, server_header=False,
            timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S, http=protocol, timeout_keep_alive=KEEP_ALIVE_S,
            backlog=accept_batch(max_connections),
        )
        self.max_connections = max_connections
        self.watch = watch
        super().__init__(config)
        self.sock = sock
        self.url = url_of(sock)
        self._on_stop = list(on_stop)
        self._exit = anyio.Event()
        self._task_status: TaskStatus[str] = anyio.TASK_STATUS_IGNORED

    @property
    def app(self) -> ASGIApp:
        """The app served now (adopt() replaces it)."""
        return self._app

    async def _current_app(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._app(scope, receive, send)  # looked up per request: adopt() takes effect at once

    def adopt(self, successor: ApiServer) -> None:
        """Serve `successor`'s app from now on, on this server's socket: a token change on the same address.

        Every request, on new and kept-alive connections alike, goes to the new app; the old app's
        long-lived responses (log followers) are ended. No second socket: a duplicate of a listening
        socket cannot be served on Windows (the Proactor's IOCP registration of it fails, WinError 87).
        """
        for fn in self._on_stop:
            fn()
        self._app, self._on_stop = successor._app, successor._on_stop

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield  # app.run owns the signals

    async def main_loop(self) -> None:
        await self.on_tick(0)  # sets the default headers once (no Date header: nothing to refresh)
        if not self.should_exit:
            await self._exit.wait()

    def stop(self) -> None:
        """Ask the server to finish: long-lived responses (log followers) are ended first."""
        for fn in self._on_stop:
            fn()
        self.should_exit = True
        self._exit.set()

    async def serve_in_group(self, *, task_status: TaskStatus[str] = anyio.TASK_STATUS_IGNORED) -> None:
        """`await tg.start(server.serve_in_group)`: returns the URL once listening; runs until stop()."""
        self._task_status = task_status
        try:
            await self.serve(sockets=[self.sock])
        finally:
            for server in getattr(self, "servers", []):  # cancelled: stop listening at least
                server.close()
            self.sock.close()

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        if self.watch is not None:
            self.watch.install(asyncio.get_running_loop())
        await super().startup(sockets=sockets)
        if self.started:
            self._task_status.started(self.url)
