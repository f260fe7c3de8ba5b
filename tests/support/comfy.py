"""Helpers for tests that run the stand-in ComfyUI (tests/children/fake_comfy.py) under a real supervisor."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import httpx

from orchestrator.config.spec import ComfySpec, HealthSpec, ProxyAuth, ServiceSpec
from tests.support.helpers import child, free_port, service, supervising

__all__ = ["comfy_service", "control", "free_port", "get", "raw_request", "recorded_requests",
           "supervising"]


def comfy_service(tmp: Path, port: int, *, name: str = "comfyui", every_s: float = 0.1, timeout_s: float = 1.0,
                  proxy_timeout_s: float = 2.0, drain_timeout_s: float = 5.0, busy_timeout_s: float = 300.0,
                  proxy_auth: ProxyAuth | None = None, **kw: Any) -> ServiceSpec:
    url = f"http://127.0.0.1:{port}"
    kw.setdefault("health", HealthSpec(url=f"{url}/system_stats", every_s=every_s, timeout_s=timeout_s,
                                       grace_s=kw.pop("grace_s", 30.0), failures=kw.pop("failures", 3)))
    return service(
        name, child("fake_comfy.py", tmp / f"{name}.port", "--port", port), signal="SIGINT",
        comfy=ComfySpec(url=url, proxy_timeout_s=proxy_timeout_s, drain_timeout_s=drain_timeout_s,
                        busy_timeout_s=busy_timeout_s, proxy_auth=proxy_auth),
        **kw,
    )


async def control(port: int, **cmd: Any) -> None:
    """Tell the stand-in what to be (busy queue, slow stats, hang, refuse, exit)."""
    async with httpx.AsyncClient(trust_env=False) as http:
        # a bound, not a wait: a connect took over 5 s under Wine on a loaded 2-core machine (1.5 s at worst
        # in 300 connects when idle), as the supervisor's probes and samples hit the same stand-in
        (await http.post(f"http://127.0.0.1:{port}/_control", json=cmd, timeout=20)).raise_for_status()


async def get(port: int, path: str, timeout: float = 20.0) -> httpx.Response:
    async with httpx.AsyncClient(trust_env=False) as http:
        return await http.get(f"http://127.0.0.1:{port}{path}", timeout=timeout)


async def recorded_requests(port: int) -> list[dict[str, Any]]:
    requests: list[dict[str, Any]] = (await get(port, "/_debug")).json()["requests"]
    return requests


async def raw_request(base: str, request_line: str, headers: str = "") -> tuple[int, bytes]:
    """Send a request line exactly as written (httpx would normalise `..`); returns status and body."""
    host, port = base.removeprefix("http://").split(":")
    async with await anyio.connect_tcp(host, int(port)) as stream:
        await stream.send(f"{request_line}\r\nHost: {host}:{port}\r\n{headers}Connection: close\r\n\r\n".encode())
        data = b""
        with anyio.fail_after(10):
            while True:
                try:
                    data += await stream.receive()
                except anyio.EndOfStream:
                    break
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body
