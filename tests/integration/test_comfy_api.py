"""ComfyUI's routes over HTTP: the stand-in ComfyUI as a real child of a real supervisor, a real server.

Status up and down; the proxy's GET/POST round trip, streaming both ways, 504 on a hang, 502 when
nothing listens, paths that would leave ComfyUI, headers we never forward; drain refusals; metrics.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator
from functools import partial
from pathlib import Path

import anyio
import httpx
import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from orchestrator.comfy_client import QueueCounts
from orchestrator.comfy_metrics import ComfyCollector
from orchestrator.supervisor import Supervisor
from tests.support.comfy import (
    comfy_api,
    comfy_service,
    control,
    free_port,
    raw_request,
    recorded_requests,
    supervising,
)
from tests.support.helpers import config, wait_for

pytestmark = pytest.mark.anyio


async def comfy_up(sup: Supervisor) -> None:
    await wait_for(lambda: sup.comfy.sample.reachable and sup.status("comfyui").state == "running", 10, "ComfyUI up")


def client(base: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=base, trust_env=False, timeout=10)


async def test_status_while_up_and_after_a_stop(tmp_path: Path) -> None:
    port = free_port()
    async with supervising(config(tmp_path, comfy_service(tmp_path, port))) as sup, comfy_api(sup) as base:
        await comfy_up(sup)
        await control(port, queue={"running": 1, "pending": 2})
        async with client(base) as http:
            body = (await http.get("/api/comfy/status")).json()
            assert body["service"] == "comfyui" and body["state"] == "running" and body["reachable"] is True
            assert body["queue"] == {"running": 1, "pending": 2} and body["error"] is None
            assert body["system"]["comfyui_version"] == "0.3.64" and body["devices"][0]["vram_total"] > 0
            assert "checkpoints" in body["models"] and body["draining"] is False
            await sup.stop("comfyui")
            down = await http.get("/api/comfy/status")
        assert down.status_code == 200
        assert down.json() | {"reason": None} == {
            "service": "comfyui", "state": "stopped", "health": "unknown", "pid": None, "reason": None,
            "url": f"http://127.0.0.1:{port}", "draining": False, "reachable": False, "error": "ComfyUI is stopped",
            "system": None, "devices": [], "queue": None, "models": None,
        }


async def test_status_of_a_running_comfyui_that_refuses_connections(tmp_path: Path) -> None:
    port = free_port()
    async with supervising(config(tmp_path, comfy_service(tmp_path, port))) as sup, comfy_api(sup) as base:
        await comfy_up(sup)
        await control(port, refuse=True)
        await wait_for(lambda: not sup.comfy.sample.reachable, 5, "refusing")
        async with client(base) as http:
            response = await http.get("/api/comfy/status")
        body = response.json()
        assert response.status_code == 200 and body["state"] == "running" and body["reachable"] is False
        assert body["error"] == "/system_stats: connection refused; /queue: connection refused"


async def test_proxy_get_and_post_round_trips(tmp_path: Path) -> None:
    port = free_port()
    async with supervising(config(tmp_path, comfy_service(tmp_path, port))) as sup, comfy_api(sup) as base:
        await comfy_up(sup)
        async with client(base) as http:
            queued = await http.post("/api/comfy/prompt", json={"prompt": {"3": {"class_type": "KSampler"}}})
            assert queued.status_code == 200 and queued.json()["node_errors"] == {}
            rejected = await http.post("/api/comfy/api/prompt", json={"client_id": "x"})
            assert rejected.status_code == 400 and rejected.json()["error"]["type"] == "no_prompt"
            queue = await http.get("/api/comfy/api/queue", params={"a": "1", "b": "two words"})
            assert queue.status_code == 200 and len(queue.json()["queue_pending"]) == 1
            assert queue.json()["queue_pending"][0][1] == queued.json()["prompt_id"]
            missing = await http.get("/api/comfy/no/such/route")
            assert missing.status_code == 404 and missing.text == "404: Not Found"
        paths = [r["path"] for r in await recorded_requests(port)]
        assert "/api/queue?a=1&b=two+words" in paths and "/no/such/route" in paths


async def test_proxy_streams_a_response_before_it_is_complete(tmp_path: Path) -> None:
    port = free_port()
    async with supervising(config(tmp_path, comfy_service(tmp_path, port))) as sup, comfy_api(sup) as base:
        await comfy_up(sup)
        async with client(base) as http, http.stream("GET", "/api/comfy/view", params={"gate": "1"}) as response:
            chunks = response.aiter_raw()
            first = await chunks.__anext__()  # ComfyUI holds the rest back until the gate opens
            assert first == b"first part;"
            await control(port, gate="open")
            rest = b"".join([chunk async for chunk in chunks])
        assert rest == b"second part"


async def test_proxy_streams_a_request_body_as_it_comes(tmp_path: Path) -> None:
    port = free_port()
    async with supervising(config(tmp_path, comfy_service(tmp_path, port))) as sup, comfy_api(sup) as base:
        await comfy_up(sup)

        async def upload_chunks() -> int:
            return int((await httpx_get_json(port, "/_debug"))["upload_chunks"])

        async def body() -> AsyncIterator[bytes]:
            yield b"a" * 70_000
            # Only once ComfyUI has the first part does the second go: a buffering proxy would hang here.
            await wait_until_async(lambda: upload_chunks(), 1)
            yield b"b" * 30_000

        async with client(base) as http:
            response = await http.post("/api/comfy/upload/image", content=body())
        sent = b"a" * 70_000 + b"b" * 30_000
        assert response.status_code == 200
        assert response.json()["size"] == len(sent)
        assert response.json()["sha256"] == hashlib.sha256(sent).hexdigest()


async def test_proxy_answers_504_when_comfyui_hangs_and_502_when_nothing_listens(tmp_path: Path) -> None:
    port = free_port()
    svc = comfy_service(tmp_path, port, proxy_timeout_s=0.5)
    async with supervising(config(tmp_path, svc)) as sup, comfy_api(sup) as base:
        await comfy_up(sup)
        async with client(base) as http:
            await control(port, hang=True)
            hung = await http.get("/api/comfy/queue")
            assert hung.status_code == 504
            assert hung.json() == {"error": f"ComfyUI at http://127.0.0.1:{port} did not answer in time: "
                                            "timeout after 0.5s"}
            await control(port, hang=False, refuse=True)
            await wait_for(lambda: not sup.comfy.sample.reachable, 5, "refusing")
            down = await http.post("/api/comfy/prompt", json={"prompt": {}})
            assert down.status_code == 502
            assert down.json() == {"error": f"ComfyUI at http://127.0.0.1:{port} cannot be reached: "
                                            "connection refused"}
        assert sup.comfy.proxy_calls[("/queue", "504")] == 1 and sup.comfy.proxy_calls[("/prompt", "502")] == 1


ESCAPES = [
    "/api/comfy/../status", "/api/comfy/%2e%2e/%2e%2e/api/status", "/api/comfy/view/..%2f..%2fsecret",
    "/api/comfy/%252e%252e/x", "/api/comfy//evil.example/x", "/api/comfy/%2F%2Fevil.example/x",
    "/api/comfy/http://evil.example/", "/api/comfy/http:%2F%2Fevil.example/x", "/api/comfy/a//b",
    "/api/comfy/a/./b", "/api/comfy/a%5c..%5cb",
]


async def test_paths_that_would_leave_comfyui_are_refused(tmp_path: Path) -> None:
    port = free_port()
    async with supervising(config(tmp_path, comfy_service(tmp_path, port))) as sup, comfy_api(sup) as base:
        await comfy_up(sup)
        for target in ESCAPES:  # sent byte for byte: an HTTP client library would normalise `..` itself
            status, body = await raw_request(base, f"GET {target} HTTP/1.1")
            assert status == 400, (target, body)
            assert json.loads(body)["error"].startswith("path: "), target
        assert not [r for r in await recorded_requests(port) if r["path"] not in ("/system_stats", "/queue")]


async def test_our_token_cookies_and_hop_by_hop_headers_never_reach_comfyui(tmp_path: Path) -> None:
    port = free_port()
    async with supervising(config(tmp_path, comfy_service(tmp_path, port))) as sup, comfy_api(sup) as base:
        await comfy_up(sup)
        headers = {"Authorization": "Bearer our-secret-token", "Cookie": "panel_session=abc",
                   "Connection": "keep-alive, X-Hop", "X-Hop": "1", "Keep-Alive": "timeout=5",
                   "Proxy-Authorization": "Basic eDp5", "Origin": "http://127.0.0.1:3000", "X-Trace": "t-1"}
        async with client(base) as http:
            assert (await http.post("/api/comfy/prompt", json={"prompt": {}}, headers=headers)).status_code == 200
        (seen,) = [r for r in await recorded_requests(port) if r["path"] == "/prompt"]
        names = {name.lower(): value for name, value in seen["headers"].items()}
        assert names["x-trace"] == "t-1" and names["host"] == f"127.0.0.1:{port}"
        assert names["content-type"] == "application/json"
        for name in ("authorization", "cookie", "x-hop", "keep-alive", "proxy-authorization", "origin"):
            assert name not in names, name
        assert "our-secret-token" not in json.dumps(seen)


async def test_a_drain_refuses_new_prompts_and_still_proxies_reads(tmp_path: Path) -> None:
    port = free_port()
    svc = comfy_service(tmp_path, port, drain_timeout_s=30)
    async with supervising(config(tmp_path, svc)) as sup, comfy_api(sup) as base:
        await comfy_up(sup)
        await control(port, queue={"running": 1, "pending": 0})
        async with client(base) as http, anyio.create_task_group() as tg:
            tg.start_soon(partial(sup.restart, "comfyui", drain=True))
            await wait_for(lambda: sup.status("comfyui").state == "draining", 5, "draining")
            refused = await http.post("/api/comfy/api/prompt", json={"prompt": {}})
            assert refused.status_code == 503 and refused.headers["Retry-After"] == "30"
            assert "draining" in refused.json()["error"]
            assert (await http.get("/api/comfy/queue")).status_code == 200
            status = (await http.get("/api/comfy/status")).json()
            assert status["state"] == "draining" and status["draining"] is True
            posted = [r for r in await recorded_requests(port) if r["method"] == "POST"]
            assert posted == []  # the refused prompt never reached ComfyUI
            await control(port, queue={"running": 0, "pending": 0})
        await wait_for(lambda: sup.status("comfyui").restarts_by_reason == {"manual": 1}, 10, "the drained restart")


async def test_metrics_come_from_the_sample_and_the_proxy_counter(tmp_path: Path) -> None:
    port = free_port()
    async with supervising(config(tmp_path, comfy_service(tmp_path, port))) as sup, comfy_api(sup) as base:
        await comfy_up(sup)
        await control(port, queue={"running": 1, "pending": 2})
        await wait_for(lambda: sup.comfy.sample.queue == QueueCounts(1, 2), 5, "the queue sampled")
        async with client(base) as http:
            await http.post("/api/comfy/prompt", json={"prompt": {}})
            await http.get("/api/comfy/history/3f1c9a7e-1d2b-4c5e-8f00-1234567890ab")
            await http.get("/api/comfy/3f1c9a7e-1d2b")
        registry = CollectorRegistry(auto_describe=True)
        registry.register(ComfyCollector(sup.comfy))
        samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
                   for family in text_string_to_metric_families(generate_latest(registry).decode())
                   for s in family.samples}
    assert samples[("orchestrator_comfy_api_calls_total", (("endpoint", "/prompt"), ("status", "200")))] == 1
    assert samples[("orchestrator_comfy_api_calls_total", (("endpoint", "/history"), ("status", "404")))] == 1
    assert samples[("orchestrator_comfy_api_calls_total", (("endpoint", "other"), ("status", "404")))] == 1
    assert samples[("orchestrator_comfy_queue_running", ())] == 1
    assert samples[("orchestrator_comfy_queue_pending", ())] in (2, 3)  # the new prompt may be sampled already
    assert samples[("orchestrator_comfy_reachable", ())] == 1
    assert samples[("orchestrator_comfy_vram_total_bytes", (("device", "cuda:0"),))] == 25_756_696_576
    assert samples[("orchestrator_comfy_vram_free_bytes", (("device", "cuda:0"),))] == 24_110_956_544
    assert samples[("orchestrator_comfy_ram_free_bytes", ())] == 41_231_686_041


async def httpx_get_json(port: int, path: str) -> dict[str, object]:
    async with httpx.AsyncClient(trust_env=False) as http:
        body: dict[str, object] = (await http.get(f"http://127.0.0.1:{port}{path}", timeout=5)).json()
        return body


async def wait_until_async(read: object, at_least: int, timeout: float = 10.0) -> None:
    """Poll an async reading until it reaches `at_least` (bounded)."""
    assert callable(read)
    with anyio.fail_after(timeout):
        while await read() < at_least:
            await anyio.sleep(0.01)
