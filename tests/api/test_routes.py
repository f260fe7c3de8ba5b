"""Each control API route over a real uvicorn server with real children: success and failure paths."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import psutil
import pytest
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from orchestrator import __version__
from orchestrator.config.spec import ChecksSpec, DiskCheckSpec, MemoryCheckSpec
from tests.support.api import serving
from tests.support.helpers import child, config, service, wait_for

pytestmark = pytest.mark.anyio

STATUS_FIELDS = {"name", "state", "health", "pid", "started_at", "uptime_s", "restarts", "exit_code", "reason",
                 "processes", "rss_bytes", "cpu_percent", "ports"}


async def test_health_and_status_describe_supervisor_and_every_service(tmp_path: Path) -> None:
    cfg = config(tmp_path, service("a", child("ready_then_sleep.py")), service("b", child("exit_with.py", 0),
                 policy="never", start_period_s=0.05))
    checks = ChecksSpec(disk=(DiskCheckSpec(str(tmp_path), min_free=1),), memory=MemoryCheckSpec(max_percent=100))
    async with serving(dataclasses.replace(cfg, checks=checks)) as api:
        await wait_for(lambda: api.sup.status("a").state == "running", what="a running")
        await wait_for(lambda: api.sup.system_status()["memory"]["value"] is not None, what="memory checked")
        await wait_for(lambda: api.sup.system_status()["disk"][0]["value"] is not None, what="disk checked")
        await wait_for(lambda: api.sup.status("b").state == "exited", what="b exited")
        health = (await api.client.get("/api/health")).json()
        assert health["status"] == "ok" and health["version"] == __version__ and health["uptime_s"] >= 0
        r = await api.client.get("/api/status")
        assert r.status_code == 200
        body = r.json()
        assert body["system"]["disk"][0]["path"] == str(tmp_path) and body["system"]["disk"][0]["value"] > 0
        assert 0 < body["system"]["memory"]["value"] <= 100
        by_name = {s["name"]: s for s in body["services"]}
        assert list(by_name) == ["a", "b"]
        assert set(by_name["a"]) >= STATUS_FIELDS
        assert by_name["a"]["state"] == "running" and psutil.pid_exists(by_name["a"]["pid"])
        assert by_name["b"]["state"] == "exited" and by_name["b"]["exit_code"] == 0
        one = (await api.client.get("/api/system/a/status")).json()
        assert one["pid"] == by_name["a"]["pid"] and set(one) >= STATUS_FIELDS


async def test_unknown_service_is_404_listing_the_known_names_on_every_service_route(tmp_path: Path) -> None:
    async with serving(config(tmp_path, service("web", child("ready_then_sleep.py")))) as api:
        for method, path in [("GET", "/api/system/nope/status"), ("POST", "/api/system/nope/start"),
                             ("POST", "/api/system/nope/stop"), ("POST", "/api/system/nope/restart"),
                             ("GET", "/api/logs/nope")]:
            r = await api.client.request(method, path, headers=api.auth)
            assert r.status_code == 404, (path, r.text)
            assert r.json()["known"] == ["web"] and "nope" in r.json()["error"], path


async def test_stop_answers_once_the_tree_is_gone_then_start_and_restart(tmp_path: Path) -> None:
    async with serving(config(tmp_path, service("web", child("ready_then_sleep.py")))) as api:
        await wait_for(lambda: api.sup.status("web").state == "running", what="running")
        pid = api.sup.status("web").pid
        assert pid is not None
        r = await api.client.post("/api/system/web/stop", headers=api.auth)
        assert r.status_code == 200 and r.json()["state"] == "stopped" and r.json()["pid"] is None
        assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
        r = await api.client.post("/api/system/web/start", headers=api.auth)
        assert r.status_code == 200 and r.json()["state"] in ("starting", "running")
        first = r.json()["pid"]
        r = await api.client.post("/api/system/web/restart", headers=api.auth)
        assert r.status_code == 200 and r.json()["pid"] not in (None, first)
        assert r.json()["restarts_by_reason"] == {"manual": 1}


async def test_start_of_a_fatal_service_gives_its_attempts_back(tmp_path: Path) -> None:
    crash = service("crash", child("exit_with.py", 3), attempts=1, start_period_s=0.05)
    async with serving(config(tmp_path, crash)) as api:
        await wait_for(lambda: api.sup.status("crash").state == "fatal", what="fatal")
        assert api.sup.status("crash").attempts == 1
        r = await api.client.post("/api/system/crash/start", headers=api.auth)
        assert r.status_code == 200 and r.json()["attempts"] == 0 and r.json()["state"] != "fatal"


async def test_ignite_starts_every_service_that_is_not_running(tmp_path: Path) -> None:
    cfg = config(tmp_path, service("a", child("ready_then_sleep.py")),
                 service("b", child("ready_then_sleep.py"), autostart=False))
    async with serving(cfg) as api:
        await wait_for(lambda: api.sup.status("a").state == "running", what="a running")
        a_pid = api.sup.status("a").pid
        r = await api.client.post("/api/system/ignite", headers=api.auth)
        assert r.status_code == 200
        states = {s["name"]: s for s in r.json()["services"]}
        assert states["a"]["pid"] == a_pid and states["b"]["state"] in ("starting", "running")


async def test_logs_tail_with_stream_and_line_count_and_bad_parameters(tmp_path: Path) -> None:
    svc = service("counter", child("count_lines.py", 500), policy="never", start_period_s=0.05)
    err = service("err", child("count_lines.py", 20, "stderr"), policy="never", start_period_s=0.05)
    async with serving(config(tmp_path, svc, err)) as api:
        await wait_for(lambda: api.sup.status("counter").state == "exited", what="counter done")
        await wait_for(lambda: api.sup.status("err").state == "exited", what="err done")
        body = (await api.client.get("/api/logs/counter")).json()
        assert body["service"] == "counter" and body["stream"] == "stdout"
        assert len(body["lines"]) == 100 and body["lines"][-1].startswith("000000499 ")
        two = (await api.client.get("/api/logs/counter", params={"lines": 2})).json()["lines"]
        assert [line[:9] for line in two] == ["000000498", "000000499"]
        stderr = (await api.client.get("/api/logs/err", params={"stream": "stderr", "lines": 5})).json()
        assert stderr["lines"][-1].startswith("000000019 ")
        assert (await api.client.get("/api/logs/err")).json()["lines"] == []  # nothing on its stdout
        for params, name in [({"lines": "x"}, "lines"), ({"lines": -1}, "lines"), ({"lines": 10_001}, "lines"),
                             ({"stream": "stdin"}, "stream"), ({"follow": "maybe"}, "follow")]:
            r = await api.client.get("/api/logs/counter", params=params)
            assert r.status_code == 400 and r.json()["parameter"] == name, (params, r.text)
            assert name in r.json()["error"]


async def test_events_since_an_id(tmp_path: Path) -> None:
    async with serving(config(tmp_path, service("web", child("ready_then_sleep.py")))) as api:
        await wait_for(lambda: api.sup.status("web").state == "running", what="running")
        body = (await api.client.get("/api/events")).json()
        assert body["events"] and body["last_id"] == body["events"][-1]["id"]
        assert {"id", "at", "service", "kind", "message"} <= set(body["events"][0])
        assert any(e["kind"] == "state_changed" and e["service"] == "web" for e in body["events"])
        later = (await api.client.get("/api/events", params={"since": body["last_id"]})).json()
        assert later["events"] == []
        await api.client.post("/api/system/web/stop", headers=api.auth)
        later = (await api.client.get("/api/events", params={"since": body["last_id"]})).json()
        assert later["events"] and all(e["id"] > body["last_id"] for e in later["events"])
        for bad in ("abc", "-1"):
            r = await api.client.get("/api/events", params={"since": bad})
            assert r.status_code == 400 and r.json()["parameter"] == "since"


async def test_unknown_routes_wrong_methods_and_internal_errors_are_one_line_json(tmp_path: Path) -> None:
    async def broken(request: Request) -> Response:
        raise RuntimeError("boom: internal detail")

    async with serving(config(tmp_path), routes=[Route("/api/broken", broken)]) as api:
        r = await api.client.get("/api/nothing-here")
        assert r.status_code == 404 and r.json() == {"error": "no route /api/nothing-here"}
        r = await api.client.get("/api/system/ignite")
        assert r.status_code == 405 and "GET" in r.json()["error"]
        r = await api.client.post("/api/status", headers=api.auth)
        assert r.status_code == 405
        r = await api.client.get("/api/broken")
        assert r.status_code == 500
        assert r.json() == {"error": "internal error; see the supervisor log"}
        assert "Traceback" not in r.text and "boom" not in r.text


async def test_openapi_lists_every_route(tmp_path: Path) -> None:
    async with serving(config(tmp_path)) as api:
        schema = (await api.client.get("/api/openapi.json")).json()
        assert schema["openapi"].startswith("3.")
        paths = schema["paths"]
        for path in ["/api/health", "/api/status", "/api/system/{name}/status", "/api/logs/{name}",
                     "/api/events", "/api/metrics", "/api/openapi.json"]:
            assert "get" in paths[path], path
        for path in ["/api/system/{name}/start", "/api/system/{name}/stop", "/api/system/{name}/restart",
                     "/api/system/ignite"]:
            assert "post" in paths[path], path
        app = api.server.app
        every = {re.sub(r":\w+}", "}", route.path) for route in app.routes}  # routes= added ones too
        assert every <= set(paths), f"routes without a YAML docstring: {every - set(paths)}"
