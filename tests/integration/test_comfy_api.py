"""ComfyUI's routes over HTTP: the stand-in ComfyUI as a real child of a real supervisor, behind the real
control API (its token, Host and Origin rules) on a real server.

Status up and down; the proxy's GET/POST round trip, streaming both ways, 504 on a hang, 502 when
nothing listens, paths that would leave ComfyUI, the token for POST and headers we never forward;
drained restarts over HTTP; the metrics after a scrape.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from orchestrator.comfy.client import QueueCounts
from tests.support.api import Served, serving
from tests.support.comfy import comfy_service, control, free_port, raw_request, recorded_requests
from tests.support.helpers import config, system_of, wait_for

pytestmark = pytest.mark.anyio


async def comfy_up(api: Served) -> None:
    sup, comfy = api.sup, system_of(api.sup).comfy
    await wait_for(lambda: comfy.sample.reachable and sup.status("comfyui").state == "running", 10, "ComfyUI up")


async def test_status_while_up_and_after_a_stop(tmp_path: Path) -> None:
    port = free_port()
    async with serving(config(tmp_path, comfy_service(tmp_path, port))) as api:
        await comfy_up(api)
        await control(port, queue={"running": 1, "pending": 2})
        body = (await api.client.get("/api/comfy/status")).json()
        assert body["service"] == "comfyui" and body["state"] == "running" and body["reachable"] is True
        assert body["queue"] == {"running": 1, "pending": 2} and body["error"] is None
        assert body["system"]["comfyui_version"] == "0.3.64" and body["devices"][0]["vram_total"] > 0
        assert "checkpoints" in body["models"] and body["draining"] is False
        assert (await api.client.post("/api/system/comfyui/stop", headers=api.auth)).status_code == 200
        down = await api.client.get("/api/comfy/status")
        assert down.status_code == 200
        assert down.json() | {"reason": None} == {
            "service": "comfyui", "state": "stopped", "health": "unknown", "pid": None, "reason": None,
            "url": f"http://127.0.0.1:{port}", "draining": False, "reachable": False, "error": "ComfyUI is stopped",
            "system": None, "devices": [], "queue": None, "models": None,
        }


async def test_status_of_a_running_comfyui_that_refuses_connections(tmp_path: Path) -> None:
    port = free_port()
    async with serving(config(tmp_path, comfy_service(tmp_path, port))) as api:
        await comfy_up(api)
        await control(port, refuse=True)
        await wait_for(lambda: not system_of(api.sup).comfy.sample.reachable, 5, "refusing")
        response = await api.client.get("/api/comfy/status")
        body = response.json()
        assert response.status_code == 200 and body["state"] == "running" and body["reachable"] is False
        assert body["error"] == "/system_stats: connection refused; /queue: connection refused"


async def test_proxy_get_and_post_round_trips(tmp_path: Path) -> None:
    port = free_port()
    async with serving(config(tmp_path, comfy_service(tmp_path, port))) as api:
        await comfy_up(api)
        http, auth = api.client, api.auth
        queued = await http.post("/api/comfy/prompt", json={"prompt": {"3": {"class_type": "KSampler"}}}, headers=auth)
        assert queued.status_code == 200 and queued.json()["node_errors"] == {}
        rejected = await http.post("/api/comfy/api/prompt", json={"client_id": "x"}, headers=auth)
        assert rejected.status_code == 400 and rejected.json()["error"]["type"] == "no_prompt"
        queue = await http.get("/api/comfy/api/queue", params={"a": "1", "b": "two words"})
        assert queue.status_code == 200 and len(queue.json()["queue_pending"]) == 1
        assert queue.json()["queue_pending"][0][1] == queued.json()["prompt_id"]
        schema = (await http.get("/api/openapi.json")).json()["paths"]
        assert "get" in schema["/api/comfy/status"] and "post" in schema["/api/comfy/{path}"]
        missing = await http.get("/api/comfy/no/such/route")
        assert missing.status_code == 404 and missing.text == "404: Not Found"
        paths = [r["path"] for r in await recorded_requests(port)]
        assert "/api/queue?a=1&b=two+words" in paths and "/no/such/route" in paths


async def test_post_needs_the_token_and_the_token_never_reaches_comfyui(tmp_path: Path) -> None:
    port = free_port()
    async with serving(config(tmp_path, comfy_service(tmp_path, port))) as api:
        await comfy_up(api)
        refused = await api.client.post("/api/comfy/prompt", json={"prompt": {}})
        assert refused.status_code == 401
        assert (await api.client.get("/api/comfy/queue")).status_code == 200  # reads are open on loopback
        headers = {**api.auth, "Cookie": "panel_session=abc", "Connection": "keep-alive, X-Hop", "X-Hop": "1",
                   "Keep-Alive": "timeout=5", "Proxy-Authorization": "Basic eDp5", "X-Trace": "t-1"}
        assert (await api.client.post("/api/comfy/prompt", json={"prompt": {}}, headers=headers)).status_code == 200
        (seen,) = [r for r in await recorded_requests(port) if r["path"] == "/prompt"]  # not the refused one
        names = {name.lower(): value for name, value in seen["headers"].items()}
        assert names["x-trace"] == "t-1" and names["host"] == f"127.0.0.1:{port}"
        assert names["content-type"] == "application/json"
        for name in ("authorization", "cookie", "x-hop", "keep-alive", "proxy-authorization"):
            assert name not in names, name
        assert api.token not in json.dumps(seen)


async def test_proxy_streams_a_response_before_it_is_complete(tmp_path: Path) -> None:
    port = free_port()
    async with serving(config(tmp_path, comfy_service(tmp_path, port))) as api:
        await comfy_up(api)
        async with api.client.stream("GET", "/api/comfy/view", params={"gate": "1"}) as response:
            chunks = response.aiter_raw()
            first = await chunks.__anext__()  # ComfyUI holds the rest back until the gate opens
            assert first == b"first part;"
            await control(port, gate="open")
            rest = b"".join([chunk async for chunk in chunks])
        assert rest == b"second part"


async def test_proxy_streams_a_request_body_as_it_comes(tmp_path: Path) -> None:
    port = free_port()
    async with serving(config(tmp_path, comfy_service(tmp_path, port))) as api:
        await comfy_up(api)

        async def body() -> AsyncIterator[bytes]:
            yield b"a" * 70_000
            # Only once ComfyUI has the first part does the second go: a buffering proxy would hang here.
            with anyio.fail_after(10):
                while await upload_chunks(port) < 1:
                    await anyio.sleep(0.01)
            yield b"b" * 30_000

        response = await api.client.post("/api/comfy/upload/image", content=body(), headers=api.auth)
        sent = b"a" * 70_000 + b"b" * 30_000
        assert response.status_code == 200
        assert response.json()["size"] == len(sent)
        assert response.json()["sha256"] == hashlib.sha256(sent).hexdigest()


async def test_proxy_answers_504_when_comfyui_hangs_and_502_when_nothing_listens(tmp_path: Path) -> None:
    port = free_port()
    async with serving(config(tmp_path, comfy_service(tmp_path, port, proxy_timeout_s=0.5))) as api:
        await comfy_up(api)
        await control(port, hang=True)
        hung = await api.client.get("/api/comfy/queue")
        assert hung.status_code == 504
        assert hung.json() == {"error": f"ComfyUI at http://127.0.0.1:{port} did not answer in time: "
                                        "timeout after 0.5s"}
        await control(port, hang=False, refuse=True)
        await wait_for(lambda: not system_of(api.sup).comfy.sample.reachable, 5, "refusing")
        down = await api.client.post("/api/comfy/prompt", json={"prompt": {}}, headers=api.auth)
        assert down.status_code == 502
        assert down.json() == {"error": f"ComfyUI at http://127.0.0.1:{port} cannot be reached: "
                                        "connection refused"}
        calls = system_of(api.sup).comfy.proxy_calls
        assert calls[("/queue", "504")] == 1 and calls[("/prompt", "502")] == 1


ESCAPES = [
    "/api/comfy/../status", "/api/comfy/%2e%2e/%2e%2e/api/status", "/api/comfy/view/..%2f..%2fsecret",
    "/api/comfy/%252e%252e/x", "/api/comfy//evil.example/x", "/api/comfy/%2F%2Fevil.example/x",
    "/api/comfy/http://evil.example/", "/api/comfy/http:%2F%2Fevil.example/x", "/api/comfy/a//b",
    "/api/comfy/a/./b", "/api/comfy/a%5c..%5cb",
]


async def test_paths_that_would_leave_comfyui_are_refused(tmp_path: Path) -> None:
    port = free_port()
    async with serving(config(tmp_path, comfy_service(tmp_path, port))) as api:
        await comfy_up(api)
        for target in ESCAPES:  # sent byte for byte: an HTTP client library would normalise `..` itself
            status, body = await raw_request(api.url, f"GET {target} HTTP/1.1")
            assert status == 400, (target, body)
            assert json.loads(body)["error"].startswith("path: "), target
        assert not [r for r in await recorded_requests(port) if r["path"] not in ("/system_stats", "/queue")]


async def test_a_drained_restart_over_http_refuses_new_prompts_and_still_proxies_reads(tmp_path: Path) -> None:
    port = free_port()
    async with serving(config(tmp_path, comfy_service(tmp_path, port, drain_timeout_s=30))) as api:
        await comfy_up(api)
        http, old = api.client, api.sup.status("comfyui").pid
        await control(port, queue={"running": 1, "pending": 0})
        restarted: list[httpx.Response] = []

        async def restart() -> None:
            restarted.append(await http.post("/api/system/comfyui/restart?drain=true", headers=api.auth))

        async with anyio.create_task_group() as tg:
            tg.start_soon(restart)
            await wait_for(lambda: api.sup.status("comfyui").state == "draining", 5, "draining")
            refused = await http.post("/api/comfy/api/prompt", json={"prompt": {}}, headers=api.auth)
            assert refused.status_code == 503 and refused.headers["Retry-After"] == "30"
            assert "draining" in refused.json()["error"]
            assert (await http.get("/api/comfy/queue")).status_code == 200
            status = (await http.get("/api/comfy/status")).json()
            assert status["state"] == "draining" and status["draining"] is True
            service = (await http.get("/api/system/comfyui/status")).json()
            assert service["state"] == "draining" and service["reason"].startswith("draining: 1 running, 0 pending")
            assert [r for r in await recorded_requests(port) if r["method"] == "POST"] == []  # never reached it
            scraped = samples_of((await http.get("/api/metrics")).text)
            assert scraped[("orchestrator_service_up", (("service", "comfyui"),))] == 1  # draining is up
            assert scraped[("orchestrator_service_state", (("service", "comfyui"), ("state", "draining")))] == 1
            assert scraped[("orchestrator_service_state", (("service", "comfyui"), ("state", "running")))] == 0
            await control(port, queue={"running": 0, "pending": 0})
        (done,) = restarted
        assert done.status_code == 200 and done.json()["pid"] not in (None, old)
        assert done.json()["restarts_by_reason"] == {"manual": 1}


async def test_metrics_after_a_scrape_come_from_the_sample_and_the_proxy_counter(tmp_path: Path) -> None:
    port = free_port()
    async with serving(config(tmp_path, comfy_service(tmp_path, port))) as api:
        await comfy_up(api)
        await control(port, queue={"running": 1, "pending": 2})
        await wait_for(lambda: system_of(api.sup).comfy.sample.queue == QueueCounts(1, 2), 5, "the queue sampled")
        await api.client.post("/api/comfy/prompt", json={"prompt": {}}, headers=api.auth)
        await api.client.get("/api/comfy/history/3f1c9a7e-1d2b-4c5e-8f00-1234567890ab")
        await api.client.get("/api/comfy/3f1c9a7e-1d2b")
        text = (await api.client.get("/api/metrics")).text
    samples = samples_of(text)
    assert samples[("orchestrator_comfy_api_calls_total", (("endpoint", "/prompt"), ("status", "200")))] == 1
    assert samples[("orchestrator_comfy_api_calls_total", (("endpoint", "/history"), ("status", "404")))] == 1
    assert samples[("orchestrator_comfy_api_calls_total", (("endpoint", "other"), ("status", "404")))] == 1
    assert samples[("orchestrator_comfy_queue_running", ())] == 1
    assert samples[("orchestrator_comfy_queue_pending", ())] in (2, 3)  # the new prompt may be sampled already
    assert samples[("orchestrator_comfy_reachable", ())] == 1
    assert samples[("orchestrator_comfy_vram_total_bytes", (("device", "cuda:0"),))] == 25_756_696_576
    assert samples[("orchestrator_comfy_vram_free_bytes", (("device", "cuda:0"),))] == 24_110_956_544
    assert samples[("orchestrator_comfy_ram_free_bytes", ())] == 41_231_686_041
    assert "3f1c9a7e" not in text  # never a prompt id in a label
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool not installed (Debian package prometheus; .ci/run installs it)")
    checked = subprocess.run([promtool, "check", "metrics"], input=text.encode(), capture_output=True, timeout=30)
    assert checked.returncode == 0, checked.stdout.decode() + checked.stderr.decode()


def samples_of(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


async def upload_chunks(port: int) -> int:
    async with httpx.AsyncClient(trust_env=False) as http:
        return int((await http.get(f"http://127.0.0.1:{port}/_debug", timeout=5)).json()["upload_chunks"])
