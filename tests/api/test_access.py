"""Token, Host and Origin rules over a real server; the token file; refusing a public address without a token."""

from __future__ import annotations

import os
import socket
import stat
import sys
from pathlib import Path

import anyio
import httpx
import pytest
from prometheus_client import CollectorRegistry

from orchestrator.api.app import create_app
from orchestrator.api.auth import AccessPolicy
from orchestrator.api.server import ApiServer, bind_socket
from orchestrator.api.token import ApiSetupError, ensure_token, read_token, token_path
from orchestrator.config.spec import ApiSpec
from orchestrator.core.supervisor import Supervisor
from tests.support.api import serving, with_api
from tests.support.helpers import child, config, service, wait_for

pytestmark = pytest.mark.anyio


async def test_mutations_need_the_token_and_reads_do_not_on_loopback(tmp_path: Path) -> None:
    async with serving(config(tmp_path, service("web", child("ready_then_sleep.py")))) as api:
        await wait_for(lambda: api.sup.status("web").state == "running", what="running")
        pid = api.sup.status("web").pid
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {api.token}"},
                        {"Authorization": api.token}):
            r = await api.client.post("/api/system/web/stop", headers=headers)
            assert r.status_code == 401, headers
            assert r.headers["www-authenticate"] == "Bearer" and "token" in r.json()["error"]
        r = await api.client.post("/api/system/ignite")
        assert r.status_code == 401
        assert api.sup.status("web").pid == pid and api.sup.status("web").state == "running"
        assert (await api.client.get("/api/status")).status_code == 200
        assert (await api.client.get("/api/metrics")).status_code == 200


async def test_host_header_must_name_this_server(tmp_path: Path) -> None:
    async with serving(config(tmp_path)) as api:
        for host in (f"127.0.0.1:{api.port}", f"localhost:{api.port}", "localhost", f"[::1]:{api.port}"):
            r = await api.client.get("/api/health", headers={"Host": host})
            assert r.status_code == 200, host
        for host in ("evil.example", f"evil.example:{api.port}", f"127.0.0.1:{api.port + 1}", "127.0.0.2"):
            r = await api.client.get("/api/health", headers={"Host": host})
            assert r.status_code == 421, host
            assert "is not this server" in r.json()["error"]
        r = await api.client.post("/api/system/ignite", headers={**api.auth, "Host": "rebound.example"})
        assert r.status_code == 421


async def test_cross_site_origin_is_refused_on_mutations_only(tmp_path: Path) -> None:
    async with serving(config(tmp_path, service("web", child("ready_then_sleep.py")))) as api:
        await wait_for(lambda: api.sup.status("web").state == "running", what="running")
        for origin in ("http://evil.example", f"http://evil.example:{api.port}", "null", "file://"):
            r = await api.client.post("/api/system/web/stop", headers={**api.auth, "Origin": origin})
            assert r.status_code == 403, origin
            assert "cross-site" in r.json()["error"]
        assert api.sup.status("web").state == "running"
        r = await api.client.get("/api/status", headers={"Origin": "http://evil.example"})
        assert r.status_code == 200  # a read: the browser's same-origin policy keeps the answer from the page
        r = await api.client.post("/api/system/web/stop", headers={**api.auth, "Origin": f"http://localhost:{api.port}"})
        assert r.status_code == 200 and r.json()["state"] == "stopped"


async def test_reads_need_the_token_when_listening_beyond_loopback(tmp_path: Path) -> None:
    # The policy of a 0.0.0.0 listener, served on a loopback socket so the test exposes nothing.
    sup = Supervisor(config(tmp_path))
    sock = bind_socket("127.0.0.1", 0)
    policy = AccessPolicy.for_listener("0.0.0.0", sock.getsockname()[1], "s3cret")
    server = ApiServer(create_app(sup, CollectorRegistry(), access=policy), sock)
    async with anyio.create_task_group() as tg:
        await tg.start(sup.run)
        url = await tg.start(server.serve_in_group)
        async with httpx.AsyncClient(base_url=url, trust_env=False) as client:
            assert (await client.get("/api/health")).status_code == 401
            assert (await client.get("/api/metrics")).status_code == 401
            r = await client.get("/api/health", headers={"Authorization": "Bearer s3cret", "Host": "gpu-box:8765"})
            assert r.status_code == 200  # a wildcard listener cannot know its names: the token is the guard
        await sup.shutdown()
        server.stop()


def test_policy_for_addresses() -> None:
    lan = AccessPolicy.for_listener("192.168.1.5", 8765, "t")
    assert lan.reads_need_token and "192.168.1.5:8765" in lan.hosts and "localhost:8765" in lan.hosts
    v6 = AccessPolicy.for_listener("::1", 8765, "t")
    assert not v6.reads_need_token and "[::1]:8765" in v6.hosts
    assert lan.check("GET", "192.168.1.5:8765", None, "Bearer t") is None
    refusal = lan.check("GET", "192.168.1.5:8765", None, None)
    assert refusal is not None and refusal.status == 401
    with pytest.raises(ValueError):
        AccessPolicy.for_listener("127.0.0.1", 1, "")


def test_token_file_is_created_once_owner_only_and_read_back_by_clients(tmp_path: Path) -> None:
    api = ApiSpec()
    assert read_token(api, tmp_path) is None
    token = ensure_token(api, tmp_path)
    assert len(token) >= 32
    assert ensure_token(api, tmp_path) == token == read_token(api, tmp_path)
    if sys.platform != "win32":
        assert stat.S_IMODE(os.stat(token_path(tmp_path)).st_mode) == 0o600
    configured = ApiSpec(token="from-config")
    assert ensure_token(configured, tmp_path) == "from-config" == read_token(configured, tmp_path)
    token_path(tmp_path).write_text("")
    with pytest.raises(ApiSetupError, match="empty"):
        ensure_token(api, tmp_path)
    token_path(tmp_path).unlink()
    token_path(tmp_path).mkdir()  # unreadable as a file: a clear error, not a traceback
    with pytest.raises(ApiSetupError, match="cannot read the API token file"):
        ensure_token(api, tmp_path)


def test_public_address_without_a_configured_token_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ApiSetupError, match=r"0\.0\.0\.0:8765 is not a loopback address: set api.token"):
        ensure_token(ApiSpec(host="0.0.0.0"), tmp_path)
    assert not token_path(tmp_path).exists()
    assert ensure_token(ApiSpec(host="0.0.0.0", token="t"), tmp_path) == "t"


def test_address_in_use_is_a_clear_error() -> None:
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    try:
        port = holder.getsockname()[1]
        with pytest.raises(ApiSetupError, match=rf"cannot listen on 127\.0\.0\.1:{port} \(api\.listen\)"):
            bind_socket("127.0.0.1", port)
    finally:
        holder.close()


async def test_run_refuses_to_start_anything_when_the_api_cannot_listen(tmp_path: Path) -> None:
    from orchestrator.app import run

    cfg = with_api(config(tmp_path, service("web", child("ready_then_sleep.py"))), host="0.0.0.0")
    with pytest.raises(ApiSetupError):
        await run(cfg)
    assert not (tmp_path / "logs" / "web-stdout.log").exists()
