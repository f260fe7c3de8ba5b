"""GET /api/logs/{name}?follow=true: the tail, then every new line as Server-Sent Events, across rotations."""

from __future__ import annotations

from pathlib import Path

import anyio
import httpx
import pytest

from tests.support.api import Served, serving
from tests.support.helpers import child, config, read_file, service, wait_for

pytestmark = pytest.mark.anyio


async def sse_data(response: httpx.Response, until: str) -> list[str]:
    seen: list[str] = []
    async for line in response.aiter_lines():
        if line.startswith("data: "):
            seen.append(line.removeprefix("data: "))
            if seen[-1] == until:
                break
    return seen


def numbers(lines: list[str]) -> list[int]:
    return [int(line.split()[1]) for line in lines if line.startswith("line ")]


async def test_follow_sees_every_line_once_across_rotations(tmp_path: Path) -> None:
    gate = tmp_path / "go"  # the ticker stops after 20 lines until the follower is attached
    ticker = service("ticker", child("tick_lines.py", 400, 0.002, 40, 20, gate))
    cfg = config(tmp_path, ticker, max_size=2000, backups=2)  # ~40 lines a file: about ten rotations
    async with serving(cfg) as api:
        stdout = api.sup.runner("ticker").stdout
        await wait_for(lambda: stdout.bytes_written > 500, what="some output before following")
        with anyio.fail_after(20):
            params = {"follow": "true", "lines": 5}
            async with api.client.stream("GET", "/api/logs/ticker", params=params) as r:
                assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
                await wait_for(lambda: api.followers.count == 1, what="following")
                gate.touch()
                seen = await sse_data(r, until="done")
        got = numbers(seen)
        assert got == list(range(got[0], 400)), "a line was lost or repeated between tail, rotations and live"
        assert got[0] > 0 and seen[0].startswith("line ")  # started from the tail, not from the beginning
        assert got[0] <= 20  # so all ~9 rotations happened while following
        assert (tmp_path / "logs" / "ticker-stdout.log.2").exists()
        await wait_for(lambda: api.followers.count == 0, what="the follower removed after the client left")


async def test_follow_of_stderr_and_a_client_that_leaves(tmp_path: Path) -> None:
    quiet = service("quiet", child("ready_then_sleep.py"))
    async with serving(config(tmp_path, quiet)) as api:
        await wait_for(lambda: api.sup.status("quiet").state == "running", what="running")
        with anyio.fail_after(10):
            async with api.client.stream("GET", "/api/logs/quiet", params={"follow": "1", "stream": "stderr"}) as r:
                assert r.status_code == 200
                first = await r.aiter_lines().__anext__()
                assert first == ": following"  # nothing to tail yet: a comment opens the stream
                await wait_for(lambda: api.followers.count == 1, what="following")
        await wait_for(lambda: api.followers.count == 0, what="the follower removed after the client left")


async def test_server_stop_ends_open_followers(tmp_path: Path) -> None:
    async with serving(config(tmp_path, service("quiet", child("ready_then_sleep.py")))) as api:
        # The child's line, not just its state: a slow start (Windows under Wine) prints after "running".
        await wait_for(lambda: "ready" in read_file(tmp_path / "logs" / "quiet-stdout.log"), what="ready")
        with anyio.fail_after(10):
            async with api.client.stream("GET", "/api/logs/quiet", params={"follow": "true"}) as r:
                lines = r.aiter_lines()
                assert await lines.__anext__() == "data: ready"
                api.server.stop()
                rest = [line async for line in lines]  # ends: the server finished the response
        assert api.followers.count == 0 and rest == [""]


async def test_follow_of_unknown_service_and_bad_parameter(tmp_path: Path) -> None:
    async with serving(config(tmp_path)) as api:
        r = await api.client.get("/api/logs/ghost", params={"follow": "true"})
        assert r.status_code == 404
        r = await api.client.get("/api/logs/ghost", params={"follow": "true", "lines": "many"})
        assert r.status_code in (400, 404)
        assert_served(api)


def assert_served(api: Served) -> None:
    assert api.followers.count == 0
