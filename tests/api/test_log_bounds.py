"""Hostile output: a 200 MB line and followers that never read keep files, tails and buffers bounded."""

from __future__ import annotations

import socket
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import pytest

from orchestrator.logs.follow import FOLLOWER_BUFFER_BYTES, MAX_FOLLOWERS
from orchestrator.logs.tail import tail_budget
from tests.support.api import serving
from tests.support.helpers import child, config, service, wait_for

pytestmark = pytest.mark.anyio

MIB = 1 << 20


@pytest.mark.skipif(
    sys.platform == "win32",
    reason="open problem: under Wine this run ends with Proactor socket transports that pytest reports as "
    "unclosed (ResourceWarning), not yet explained; the bounds themselves are shared logic, tested on Linux",
)
async def test_a_200mb_line_stays_bounded_on_disk_and_in_the_tail(tmp_path: Path) -> None:
    spew = service("spew", child("spew.py", 200))
    cfg = config(tmp_path, spew, max_size=MIB, backups=3)
    async with serving(cfg) as api:
        sink = api.sup.runner("spew").stdout
        health_ok = 0
        with anyio.fail_after(120):
            while sink.bytes_written < 200 * MIB:  # the API answers meanwhile
                r = await api.client.get("/api/health")
                health_ok += r.status_code == 200
                await anyio.sleep(0.05)
        assert health_ok > 0
        files = sorted((tmp_path / "logs").glob("spew-stdout.log*"))
        assert [f.name for f in files] == ["spew-stdout.log", *(f"spew-stdout.log.{i}" for i in (1, 2, 3))]
        assert max(f.stat().st_size for f in files) <= MIB  # cut at max_size (bound: plus one pipe read)
        r = await api.client.get("/api/logs/spew", params={"lines": 1})
        assert r.status_code == 200
        [line] = r.json()["lines"]
        assert line.startswith("[cut] x")
        assert len(r.content) <= tail_budget(1) + 200


async def sse_events(lines: AsyncIterator[str], until: str) -> list[tuple[str, str]]:
    seen: list[tuple[str, str]] = []
    event = "message"
    async for line in lines:
        if line.startswith("event: "):
            event = line.removeprefix("event: ")
        elif line.startswith("data: "):
            seen.append((event, line.removeprefix("data: ")[:60]))
            event = "message"
            if until in seen[-1]:
                break
    return seen


async def test_a_slow_follower_gets_one_dropped_line_and_goes_on_live(tmp_path: Path) -> None:
    go = tmp_path / "then"
    spew = service("spew", child("spew.py", 64, go), autostart=False)
    async with serving(config(tmp_path, spew, max_size=0)) as api:
        sink = api.sup.runner("spew").stdout
        with anyio.fail_after(50):
            params = {"follow": "true", "lines": 0}
            async with api.client.stream("GET", "/api/logs/spew", params=params) as r:
                lines = r.aiter_lines()
                assert await lines.__anext__() == ": following"
                await api.sup.start("spew")
                await wait_for(lambda: sink.bytes_written >= 64 * MIB, timeout=50, what="64 MiB written")
                assert api.followers.queued_bytes <= FOLLOWER_BUFFER_BYTES
                seen = await sse_events(lines, until="dropped")  # what was queued, then the gap
                go.touch()  # new output after the gap: the follower sees it live
                seen += await sse_events(lines, until="after")
        dropped = [data for event, data in seen if event == "dropped"]
        assert len(dropped) == 1 and dropped[0].startswith("dropped ")
        assert 0 < int(dropped[0].split()[1]) < 64 * MIB
        assert seen[-1] == ("message", "after")  # then live again
        await wait_for(lambda: api.followers.count == 0, what="the follower gone with its client")


async def test_followers_that_never_read_hold_at_most_their_cap(tmp_path: Path) -> None:
    spew = service("spew", child("spew.py", 100), autostart=False)
    async with serving(config(tmp_path, spew, max_size=8 * MIB, backups=1)) as api:
        sink = api.sup.runner("spew").stdout
        request = b"GET /api/logs/spew?follow=true&lines=0 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
        stuck = []
        for _ in range(2):
            s = socket.create_connection(("127.0.0.1", api.port))
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            s.sendall(request)
            stuck.append(s)
        try:
            await wait_for(lambda: api.followers.count == 2, what="two followers")
            await api.sup.start("spew")
            most = 0
            with anyio.fail_after(50):
                while sink.bytes_written < 100 * MIB:
                    most = max(most, api.followers.queued_bytes)
                    await anyio.sleep(0.005)
            assert 0 < most <= 2 * FOLLOWER_BUFFER_BYTES
        finally:
            for s in stuck:
                s.close()
        await wait_for(lambda: api.followers.count == 0, what="the followers gone with their clients")
        assert api.followers.queued_bytes == 0


async def test_followers_past_the_cap_get_503(tmp_path: Path) -> None:
    quiet = service("quiet", child("ready_then_sleep.py"))
    async with serving(config(tmp_path, quiet)) as api:
        request = b"GET /api/logs/quiet?follow=true&lines=0 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
        held = []
        try:
            for _ in range(MAX_FOLLOWERS):
                s = socket.create_connection(("127.0.0.1", api.port))
                s.sendall(request)
                held.append(s)
            await wait_for(lambda: api.followers.count == MAX_FOLLOWERS, what="every follower in")
            r = await api.client.get("/api/logs/quiet", params={"follow": "true"})
            assert r.status_code == 503 and "too many log followers" in r.json()["error"]
            held.pop().close()
            await wait_for(lambda: api.followers.count == MAX_FOLLOWERS - 1, what="one follower gone")
            with anyio.fail_after(10):
                async with api.client.stream("GET", "/api/logs/quiet", params={"follow": "true"}) as ok:
                    assert ok.status_code == 200
        finally:
            for s in held:
                s.close()
