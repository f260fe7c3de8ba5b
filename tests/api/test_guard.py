"""The connection cap of api/guard.py on a real server with a cap of 2: idle connections make room,
busy ones never do, and a connection with no room gets a 503."""

from __future__ import annotations

import anyio
import anyio.abc
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from orchestrator.api.guard import accept_batch, connection_cap
from orchestrator.api.server import ApiServer, bind_socket

pytestmark = pytest.mark.anyio


async def closed_by_server(stream: anyio.abc.SocketStream) -> bytes:
    """Everything the server sent until it closed the connection."""
    got = b""
    try:
        while data := await stream.receive():
            got += data
    except (anyio.EndOfStream, anyio.BrokenResourceError, ConnectionResetError):
        pass
    return got


def get(path: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode()


async def test_past_the_cap_idle_connections_make_room_and_busy_ones_stay() -> None:
    release, entered = anyio.Event(), []

    async def slow(request: Request) -> Response:
        entered.append(request)
        await release.wait()
        return PlainTextResponse("done")

    async def fast(request: Request) -> Response:
        return PlainTextResponse("ok")

    app = Starlette(routes=[Route("/slow", slow), Route("/fast", fast)])
    server = ApiServer(app, bind_socket("127.0.0.1", 0), max_connections=2)
    port = server.sock.getsockname()[1]
    async with anyio.create_task_group() as tg:
        await tg.start(server.serve_in_group)
        with anyio.fail_after(20):
            idle = await anyio.connect_tcp("127.0.0.1", port)  # A: sends nothing
            busy = await anyio.connect_tcp("127.0.0.1", port)  # B: a request in progress
            await busy.send(get("/slow"))
            while len(entered) < 1:
                await anyio.sleep(0.01)
            third = await anyio.connect_tcp("127.0.0.1", port)  # C: over the cap; A makes room
            await third.send(get("/fast"))
            assert (await third.receive()).startswith(b"HTTP/1.1 200 ")
            assert await closed_by_server(idle) == b""
            fourth = await anyio.connect_tcp("127.0.0.1", port)  # D: C is idle now and makes room
            await fourth.send(get("/slow"))
            while len(entered) < 2:
                await anyio.sleep(0.01)
            await closed_by_server(third)
            refused = await anyio.connect_tcp("127.0.0.1", port)  # E: B and D are busy: no room
            answer = await closed_by_server(refused)
            assert answer.startswith(b"HTTP/1.1 503 ") and b"too many connections (at most 2)" in answer
            release.set()
            assert b"done" in await answer_of(busy) and b"done" in await answer_of(fourth)
        for s in (idle, busy, third, fourth, refused):
            await s.aclose()
        server.stop()


def test_the_cap_and_the_backlog_follow_the_open_file_limit() -> None:
    assert connection_cap(256) == 64 and accept_batch(64) == 32
    assert connection_cap(1 << 20) == 1024 and accept_batch(1024) == 128
    assert connection_cap(20) == 8 and connection_cap(None) == 1024


async def answer_of(stream: anyio.abc.SocketStream) -> bytes:
    """Read until the body has come: the headers and the body may arrive in separate reads (Windows)."""
    data = b""
    while not data.endswith(b"done"):
        chunk = await stream.receive()
        data += chunk
    return data
