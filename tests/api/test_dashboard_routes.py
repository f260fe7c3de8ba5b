"""The dashboard's routes over a real server: its files (CSP, weight), /api/history, /api/live, `orchestrator token`."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from orchestrator.api.web import CSP, FILES
from orchestrator.core.history import History
from tests.support.api import Served, serving
from tests.support.helpers import child, config, service, wait_for

pytestmark = pytest.mark.anyio

WEIGHT_LIMIT = 150 * 1024  # the bound on page weight


async def test_the_page_and_its_files_carry_the_csp_and_weigh_under_150_kb(tmp_path: Path) -> None:
    async with serving(config(tmp_path, service("a", child("ready_then_sleep.py")))) as api:
        total = 0
        for path in ["/", "/web/app.js", "/web/app.css", "/web/icon.svg"]:
            r = await api.client.get(path)
            assert r.status_code == 200, path
            assert r.headers["content-security-policy"] == CSP and r.headers["x-content-type-options"] == "nosniff"
            total += len(r.content)
        assert "script-src 'self'" in CSP and "'unsafe-inline'" not in CSP and "default-src 'none'" in CSP
        assert total < WEIGHT_LIMIT, f"page weight {total} bytes"
        print(f"page weight {total} bytes ({len(FILES)} files)")
        page = (await api.client.get("/")).text
        assert "<script>" not in page and not re.search(r"\son\w+=", page)  # no inline script, no handlers
        assert api.token not in page
        missing = await api.client.get("/web/index.htm")
        assert missing.status_code == 404 and "no file" in missing.json()["error"]


async def test_history_answers_columns_per_service(tmp_path: Path) -> None:
    cfg = config(tmp_path, service("a", child("ready_then_sleep.py")), service("b", child("ready_then_sleep.py")))
    async with serving(cfg, history=History(every_s=0.05)) as api:
        await wait_for(lambda: api.sup.history.points("a") >= 3, what="three points")
        body = (await api.client.get("/api/history")).json()
        assert body["every_s"] == 0.05 and body["span_s"] == 1800 and body["comfy"] is None
        assert set(body["services"]) == {"a", "b"}
        a = body["services"]["a"]
        assert len(a["t"]) == len(a["cpu_percent"]) == len(a["rss_bytes"]) >= 3
        assert a["t"] == sorted(a["t"])


class Sse:
    """A minimal SSE reader: (event, id, data) tuples, comments kept as ("comment", None, text)."""

    def __init__(self, response: httpx.Response) -> None:
        self.lines = response.aiter_lines()

    async def next(self, timeout: float = 10) -> tuple[str, str | None, Any]:
        event, event_id, data = "message", None, None
        with anyio.fail_after(timeout):
            async for line in self.lines:
                if line.startswith(":"):
                    return "comment", None, line
                if line.startswith("event: "):
                    event = line[7:]
                elif line.startswith("id: "):
                    event_id = line[4:]
                elif line.startswith("data: "):
                    data = json.loads(line[6:])
                elif line == "" and data is not None:
                    return event, event_id, data
        raise AssertionError("the stream ended")

    async def until(self, event: str, timeout: float = 10) -> tuple[str | None, Any]:
        with anyio.fail_after(timeout):
            while True:
                kind, event_id, data = await self.next(timeout)
                if kind == event:
                    return event_id, data


async def test_live_sends_history_status_events_then_pushes_changes_and_resumes_after_last_event_id(
    tmp_path: Path,
) -> None:
    cfg = config(tmp_path, service("a", child("ready_then_sleep.py")), service("b", child("ready_then_sleep.py")))
    async with serving(cfg) as api:
        await wait_for(lambda: all(s.state == "running" for s in api.sup.statuses()), what="running")
        async with api.client.stream("GET", "/api/live") as r:
            assert r.headers["content-type"].startswith("text/event-stream")
            sse = Sse(r)
            assert (await sse.next())[0] == "history"
            kind, _, status = await sse.next()
            assert kind == "status" and [s["name"] for s in status["services"]] == ["a", "b"]
            assert set(status) == {"services", "system", "comfy"} and status["comfy"] is None
            kind, first_id, events = await sse.next()
            assert kind == "events" and first_id == str(events["last_id"]) and events["events"]
            await api.client.post("/api/system/b/stop", headers=api.auth)
            _, pushed = await sse.until("events")
            assert any(e["service"] == "b" and e["kind"] == "state_changed" for e in pushed["events"])
            with anyio.fail_after(10):  # stopping, then stopped: each change is pushed
                while {s["name"]: s["state"] for s in (await sse.until("status"))[1]["services"]}["b"] != "stopped":
                    pass
        last = api.sup.events.last_id
        await api.client.post("/api/system/b/start", headers=api.auth)
        await wait_for(lambda: api.sup.status("b").state == "running", what="b running again")
        async with api.client.stream("GET", "/api/live", headers={"Last-Event-ID": str(last)}) as r:
            sse = Sse(r)
            assert (await sse.next())[0] == "status"  # no history on a resume
            _, events = await sse.until("events")
            assert events["events"] and all(e["id"] > last for e in events["events"])


async def test_live_pushes_each_history_point_and_ends_when_the_server_stops(tmp_path: Path) -> None:
    done, sampled = anyio.Event(), anyio.Event()
    async with serving(config(tmp_path, service("a", child("ready_then_sleep.py"))),
                       history=History(every_s=0.1)) as api:
        await wait_for(lambda: api.sup.status("a").state == "running", what="running")

        async def read(served: Served) -> None:
            async with served.client.stream("GET", "/api/live") as r:
                sse = Sse(r)
                _, sample = await sse.until("sample")
                assert set(sample) == {"t", "services", "comfy"} and set(sample["services"]["a"]) == {
                    "cpu_percent", "rss_bytes"}
                sampled.set()
                async for _ in sse.lines:  # until the server ends the stream
                    pass
            done.set()

        async with anyio.create_task_group() as tg:
            tg.start_soon(read, api)
            with anyio.fail_after(10):
                await sampled.wait()
            api.server.stop()  # as at shutdown: open live streams are ended first
            with anyio.fail_after(10):
                await done.wait()


def test_token_command_prints_the_token_and_fails_without_one(tmp_path: Path) -> None:
    cfg = tmp_path / "supervisor.yaml"
    cfg.write_text("state_dir: ./state\nservices: {a: {command: ['x']}}\n")
    cmd = [sys.executable, "-m", "orchestrator", "token", "-c", str(cfg)]
    missing = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    assert missing.returncode == 1 and missing.stdout == "" and "api-token" in missing.stderr
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / "api-token").write_text("s3cret-token\n")
    printed = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    assert printed.returncode == 0 and printed.stdout == "s3cret-token\n"
