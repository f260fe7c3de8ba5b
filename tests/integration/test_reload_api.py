"""Reload over the control API: POST /api/reload, GET /api/reload/plan, and api.listen/token rebinds."""

from __future__ import annotations

import socket
from pathlib import Path

import anyio
import httpx
import pytest

from orchestrator.app import run
from orchestrator.config.loader import load_config
from tests.integration.test_reload import svc, write_config
from tests.support.api import serving
from tests.support.helpers import free_port, make_system, system_of, wait_for

pytestmark = pytest.mark.anyio

API = {"listen": "127.0.0.1:0"}


async def test_post_reload_needs_the_token_and_restarts_only_what_changed(tmp_path: Path) -> None:
    path = tmp_path / "supervisor.yaml"
    write_config(path, {"a": svc(env={"MODE": "one"}), "b": svc()}, api=API)
    async with serving(load_config(path)) as api:
        await wait_for(lambda: all(s.state == "running" for s in api.sup.statuses()), what="running")
        before = {s.name: s.pid for s in api.sup.statuses()}
        write_config(path, {"a": svc(env={"MODE": "two"}), "b": svc()}, api=API)
        refused = await api.client.post("/api/reload")
        assert refused.status_code == 401
        assert api.sup.runner("a").spec.env == {"MODE": "one"}
        answer = await api.client.post("/api/reload", headers=api.auth)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["ok"] is True and body["trigger"] == "api" and body["plan"]["summary"] == "1 restart, 1 keep"
        assert body["plan"]["services"][0] == {"name": "a", "action": "restart", "reasons": ["env changed: MODE"],
                                               "text": "a: restart (env changed: MODE)"}
        after = {s.name: s.pid for s in api.sup.statuses()}
        assert after["b"] == before["b"] and after["a"] != before["a"]
        assert body["outcomes"] == {"a": f"restarted (pid {before['a']} -> {after['a']})"}
        assert "two" not in answer.text
        events = (await api.client.get("/api/events")).json()["events"]
        assert [e["kind"] for e in events if e["kind"].startswith("reload")] == [
            "reload_planned", "reload_service", "reload"]


async def test_plan_and_dry_run_change_nothing(tmp_path: Path) -> None:
    path = tmp_path / "supervisor.yaml"
    write_config(path, {"a": svc()}, api=API)
    async with serving(load_config(path)) as api:
        await wait_for(lambda: api.sup.status("a").state == "running", what="running")
        pid, config = api.sup.status("a").pid, api.sup.config
        write_config(path, {"a": svc(restart={"attempts": 9, "cooldown": 0}), "new": svc()}, api=API)
        plan = await api.client.get("/api/reload/plan")  # a read: no token needed on loopback
        dry = await api.client.post("/api/reload?dry_run=true", headers=api.auth)
        for answer in (plan, dry):
            assert answer.status_code == 200, answer.text
            body = answer.json()
            assert body["dry_run"] is True and body["outcomes"] == {}
            assert body["plan"]["summary"] == "1 add, 1 update"
        assert api.sup.config is config and list(api.sup.runners) == ["a"] and api.sup.status("a").pid == pid
        assert not [e for e in api.sup.events.since(0) if e.kind.startswith("reload")]
        bad = await api.client.post("/api/reload?dry_run=maybe", headers=api.auth)
        assert bad.status_code == 400 and "dry_run" in bad.json()["error"]


async def test_plan_without_a_token_parses_the_file_once_per_version(tmp_path: Path) -> None:
    path = tmp_path / "supervisor.yaml"
    write_config(path, {"a": svc()}, api=API)
    async with serving(load_config(path)) as api:
        reloader = system_of(api.sup).reloader
        write_config(path, {"a": svc(), "b": svc()}, api=API)
        for _ in range(20):  # no token: anyone on the machine may ask this as often as they like
            answer = await api.client.get("/api/reload/plan")
            assert answer.json()["plan"]["summary"] == "1 add, 1 keep"
        assert reloader.parsed_total == 1
        write_config(path, {"a": svc(), "b": svc(), "c": svc()}, api=API)  # another size: a new version
        assert (await api.client.get("/api/reload/plan")).json()["plan"]["summary"] == "2 add, 1 keep"
        assert reloader.parsed_total == 2
        path.write_text("services: {a: {command: [x], ports: oops}}\n")
        for _ in range(5):  # an invalid file is remembered too
            assert (await api.client.get("/api/reload/plan")).status_code == 422
        assert reloader.parsed_total == 3
        assert (await api.client.post("/api/reload", headers=api.auth)).status_code == 422  # a real reload reads
        assert reloader.parsed_total == 4


async def test_invalid_file_answers_422_with_line_and_key_and_changes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "supervisor.yaml"
    write_config(path, {"a": svc()}, api=API)
    async with serving(load_config(path)) as api:
        config = api.sup.config
        text = write_config(path, {"a": svc(stop={"timeout": "forever"})}, api=API)
        line = next(i for i, t in enumerate(text.splitlines(), 1) if "forever" in t)
        for answer in (await api.client.post("/api/reload", headers=api.auth),
                       await api.client.get("/api/reload/plan")):
            assert answer.status_code == 422
            body = answer.json()
            assert body["error"] == "invalid config, nothing changed" and body["plan"] is None
            assert [(e["line"], e["key_path"]) for e in body["errors"]] == [(line, "services.a.stop.timeout")]
            assert body["issues"][0].startswith(f"{path}:{line}: services.a.stop.timeout:")
        assert api.sup.config is config
        assert [e.kind for e in api.sup.events.since(0)].count("config_error") == 1  # the plan records none
        schema = (await api.client.get("/api/openapi.json")).json()
        assert {"/api/reload", "/api/reload/plan"} <= set(schema["paths"])


async def test_listen_change_rebinds_after_answering_and_token_change_swaps_without_a_gap(tmp_path: Path) -> None:
    path = tmp_path / "supervisor.yaml"
    write_config(path, {"a": svc()}, api={"listen": "127.0.0.1:0", "token": "tok-one"})
    system = make_system(load_config(path))
    sup = system.supervisor
    urls: list[str] = []
    async with anyio.create_task_group() as tg:
        tg.start_soon(lambda: run(sup.config, system=system, announce=urls.append))
        try:
            await wait_for(lambda: bool(urls), what="the API")
            first, port = urls[0], free_port()
            write_config(path, {"a": svc()}, api={"listen": f"127.0.0.1:{port}", "token": "tok-one"})
            async with httpx.AsyncClient(trust_env=False, timeout=30) as client:
                auth = {"Authorization": "Bearer tok-one"}
                answer = await client.post(f"{first}/api/reload", headers=auth)
                assert answer.status_code == 200, answer.text
                [change] = answer.json()["plan"]["globals"]
                assert (change["key"], change["effect"]) == ("api.listen", "rebind")
                assert change["detail"] == f"127.0.0.1:0 -> 127.0.0.1:{port}"
                await wait_for(lambda: len(urls) == 2, what="the new address")
                second = urls[1]
                assert second == f"http://127.0.0.1:{port}"
                assert (await client.get(f"{second}/api/health")).status_code == 200
                await _refused(client, f"{first}/api/health")
                # Same address, new token: the server in force adopts the new app (no second socket).
                write_config(path, {"a": svc()}, api={"listen": f"127.0.0.1:{port}", "token": "tok-two"})
                answer = await client.post(f"{second}/api/reload", headers=auth)
                assert answer.status_code == 200 and "tok-two" not in answer.text
                await wait_for(lambda: len(urls) == 3, what="the swap")
                assert urls[2] == second
            # A new connection: the old server closes its idle keep-alive ones as it stops, and a request
            # sent on one just then gets no answer (a client reconnects; this test should not race it).
            async with httpx.AsyncClient(trust_env=False, timeout=30) as client:
                assert (await client.post(f"{second}/api/reload?dry_run=true", headers=auth)).status_code == 401
                new_auth = {"Authorization": "Bearer tok-two"}
                assert (await client.post(f"{second}/api/reload?dry_run=true", headers=new_auth)).status_code == 200
        finally:
            with anyio.move_on_after(30, shield=True):
                await sup.shutdown()


@pytest.mark.parametrize("api", [{"listen": "TAKEN", "token": "tok"}, {"listen": "0.0.0.0:0"}])
async def test_a_listen_that_cannot_be_served_keeps_the_old_server(tmp_path: Path, api: dict[str, str]) -> None:
    path = tmp_path / "supervisor.yaml"
    write_config(path, {"a": svc()}, api={"listen": "127.0.0.1:0", "token": "tok"})
    system = make_system(load_config(path))
    sup = system.supervisor
    urls: list[str] = []
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        taken = f"127.0.0.1:{holder.getsockname()[1]}"
        async with anyio.create_task_group() as tg:
            tg.start_soon(lambda: run(sup.config, system=system, announce=urls.append))
            try:
                await wait_for(lambda: bool(urls), what="the API")
                write_config(path, {"a": svc()}, api={k: v.replace("TAKEN", taken) for k, v in api.items()})
                async with httpx.AsyncClient(trust_env=False, timeout=30) as client:
                    answer = await client.post(f"{urls[0]}/api/reload", headers={"Authorization": "Bearer tok"})
                    assert answer.status_code == 200, answer.text
                    await wait_for(lambda: any(e.kind == "api_rebind_failed" for e in sup.events.since(0)))
                    event = next(e for e in sup.events.since(0) if e.kind == "api_rebind_failed")
                    assert urls[0] in event.message
                    assert ("in use" in event.message) if "token" in api else ("api.token" in event.message)
                    assert (await client.get(f"{urls[0]}/api/health")).status_code == 200
                    # The config in force keeps the old api: the next plan shows the change again.
                    plan = (await client.get(f"{urls[0]}/api/reload/plan")).json()["plan"]
                    assert "api.listen" in {g["key"] for g in plan["globals"]}
            finally:
                with anyio.move_on_after(30, shield=True):
                    await sup.shutdown()


async def _refused(client: httpx.AsyncClient, url: str) -> None:
    async def gone() -> bool:
        try:
            await client.get(url)
        except httpx.ConnectError:
            return True
        return False

    with anyio.fail_after(10):
        while not await gone():
            await anyio.sleep(0.05)
