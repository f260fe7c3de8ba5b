"""The embedded server itself: Nagle off on its connections, and a clean stop with a client connected."""

from __future__ import annotations

import socket
from pathlib import Path

import anyio
import pytest

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
