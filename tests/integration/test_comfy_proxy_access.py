"""Who may use the ComfyUI proxy, and what it keeps: the stand-in ComfyUI records every request it gets.

A browser's cross-site request (Sec-Fetch-Site, or an Origin/Referer of another origin) is refused
with 403 whatever its method, before anything reaches ComfyUI; `comfy.proxy_auth: token` asks the
token of reads too. The shared client of the probes and the proxy keeps no cookie, the client's own
Cookie is never forwarded, and every Set-Cookie of ComfyUI's answer comes back on its own.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.comfy.access import proxy_refusal
from orchestrator.config.spec import ProxyAuth
from tests.integration.test_comfy_api import comfy_up
from tests.support.api import serving
from tests.support.comfy import comfy_service, free_port, recorded_requests
from tests.support.helpers import config

pytestmark = pytest.mark.anyio

EVIL = "http://evil.example"
MARK = {"X-Test-Request": "1"}  # on every request the test sends: tells them from the supervisor's own polls


async def proxied(port: int) -> list[str]:
    """The paths of the test's requests that reached the stand-in ComfyUI."""
    return [r["path"] for r in await recorded_requests(port)
            if any(k.lower() == "x-test-request" for k in r["headers"])]  # fmt: skip


async def test_cross_site_requests_are_refused_before_they_reach_comfyui(tmp_path: Path) -> None:
    port = free_port()
    async with serving(config(tmp_path, comfy_service(tmp_path, port))) as api:
        await comfy_up(api)
        foreign = [
            {"Origin": EVIL},  # what an <img src> on another site sends with a GET
            {"Origin": "null"},  # a sandboxed frame or a file:// page
            {"Referer": f"{EVIL}/page?key=hunter2"},
            {"Referer": f"http://evil@{api.url.removeprefix('http://')}/"},
            {"Sec-Fetch-Site": "cross-site"},
            {"Sec-Fetch-Site": "same-site"},  # another port of this host is another origin
            {"Origin": api.url, "Sec-Fetch-Site": "cross-site"},
            {"Origin": api.url.replace("127.0.0.1", "localhost")},
        ]
        for headers in foreign:
            for method, path in [("GET", "/api/comfy/manager/reboot"), ("GET", "/api/comfy/api/manager/reboot"),
                                 ("POST", "/api/comfy/prompt"), ("GET", "/api/comfy/queue")]:
                r = await api.client.request(method, path, headers={**api.auth, **MARK, **headers})
                assert r.status_code == 403, (method, path, headers, r.text)
                assert "cross-site request" in r.json()["error"]  # the guard's words for a POST, else ours
                assert "hunter2" not in r.text  # a Referer is never quoted
        assert await proxied(port) == []
        assert api.sup.status("comfyui").state == "running"
        # The API's own pages, and clients that are not browsers, still get through.
        own = [{}, {"Origin": api.url}, {"Referer": f"{api.url}/ui/?x=1"}, {"Sec-Fetch-Site": "same-origin"},
               {"Sec-Fetch-Site": "none"}]
        for headers in own:
            r = await api.client.get("/api/comfy/queue", headers={**MARK, **headers})
            assert r.status_code == 200, (headers, r.text)
        assert await proxied(port) == ["/queue"] * 5


async def test_no_cookie_is_kept_or_forwarded_and_every_set_cookie_comes_back(tmp_path: Path) -> None:
    port = free_port()
    async with serving(config(tmp_path, comfy_service(tmp_path, port))) as api:
        await comfy_up(api)  # the probes got /system_stats' Set-Cookie
        r = await api.client.get("/api/comfy/cookies", headers=MARK)
        assert r.status_code == 200
        assert r.headers.get_list("set-cookie") == ["comfy_a=one; Path=/", "comfy_b=two; Path=/; HttpOnly"]
        api.client.cookies.clear()  # our own client must not send them back either: this is about the proxy
        r = await api.client.get("/api/comfy/queue", headers={**MARK, "Cookie": "panel_session=mine"})
        assert r.status_code == 200
        probes = len([q for q in await recorded_requests(port) if q["path"] == "/system_stats"])
        assert probes >= 1
        seen = await recorded_requests(port)
        for request in seen:
            names = {name.lower() for name in request["headers"]}
            assert "cookie" not in names, request
        assert await proxied(port) == ["/cookies", "/queue"]


async def test_proxy_auth_token_asks_the_token_of_reads_too(tmp_path: Path) -> None:
    port = free_port()
    async with serving(config(tmp_path, comfy_service(tmp_path, port, proxy_auth=ProxyAuth.TOKEN))) as api:
        await comfy_up(api)
        refused = await api.client.get("/api/comfy/queue", headers=MARK)
        assert refused.status_code == 401 and refused.headers["www-authenticate"] == "Bearer"
        assert "comfy.proxy_auth is token" in refused.json()["error"]
        wrong = await api.client.get("/api/comfy/queue", headers={**MARK, "Authorization": "Bearer nope"})
        assert wrong.status_code == 401
        assert await proxied(port) == []
        assert (await api.client.get("/api/comfy/queue", headers={**MARK, **api.auth})).status_code == 200
        assert await proxied(port) == ["/queue"]
        assert (await api.client.get("/api/comfy/status")).status_code == 200  # the status route is not the proxy


@pytest.mark.parametrize(
    ("peer", "auth", "token_ok", "status"),
    [
        ("127.0.0.1", ProxyAuth.LOOPBACK, False, None),
        ("::1", ProxyAuth.LOOPBACK, False, None),
        ("192.168.1.20", ProxyAuth.LOOPBACK, True, 403),  # the token does not make a LAN client local
        (None, ProxyAuth.LOOPBACK, True, 403),
        ("192.168.1.20", ProxyAuth.TOKEN, True, None),
        ("127.0.0.1", ProxyAuth.TOKEN, False, 401),
        ("192.168.1.20", None, False, None),  # unset: the access guard's rule alone
    ],
)
def test_proxy_auth_rule(peer: str | None, auth: ProxyAuth | None, token_ok: bool, status: int | None) -> None:
    refusal = proxy_refusal({"host": "127.0.0.1:8765"}, peer, token_ok, auth)
    assert (refusal.status if refusal else None) == status
