"""The embedded server itself: Nagle off on its connections, and a clean stop with a client connected."""

from __future__ import annotations

import errno
import socket
from pathlib import Path

import anyio
import pytest

from orchestrator.api.server import bind_socket
from orchestrator.api.token import ApiSetupError
from tests.support.api import serving
from tests.support.helpers import config

pytestmark = pytest.mark.anyio


async def test_connections_have_nagle_off(tmp_path: Path) -> None:
    # With Nagle on, each keep-alive response waited for the client's delayed ACK: 40 ms a request.
    async with serving(config(tmp_path)) as api:
        assert (await api.client.get("/api/health")).status_code == 200  # the client keeps it open
        connections = list(api.server.server_state.connections)
        assert connections
        for protocol in connections:
            sock = protocol.transport.get_extra_info("socket")
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0


async def test_stop_with_an_idle_keep_alive_connection_is_prompt(tmp_path: Path) -> None:
    async with serving(config(tmp_path)) as api:
        assert (await api.client.get("/api/health")).status_code == 200
        with anyio.fail_after(5):  # uvicorn's graceful shutdown closes idle connections at once
            api.server.stop()
            while api.server.started and api.server.server_state.connections:
                await anyio.sleep(0.01)


def test_an_address_in_use_is_refused_in_our_words() -> None:
    # Windows' own text ("Only one usage of each socket address ...") never says "in use", and Wine's is
    # "Windows Error 0x2740": the message is chosen by errno, the same on every OS.
    holder = bind_socket("127.0.0.1", 0)
    try:
        port = holder.getsockname()[1]
        with pytest.raises(ApiSetupError) as caught:
            bind_socket("127.0.0.1", port)
        cause = caught.value.__cause__
        assert isinstance(cause, OSError)
        assert cause.errno in {errno.EADDRINUSE, getattr(errno, "WSAEADDRINUSE", errno.EADDRINUSE)}
        assert str(caught.value) == (f"cannot listen on 127.0.0.1:{port} (api.listen): "
                                     "the address is already in use (another program listens there)")
    finally:
        holder.close()
