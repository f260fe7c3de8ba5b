"""The sampled picture of ComfyUI: what a failed part keeps, what a timeout is called."""

from __future__ import annotations

import httpx

from orchestrator.comfy.client import ComfyDevice, ComfyError, ComfySample, QueueCounts, describe_http_error

GPU = ComfyDevice("cuda:0 RTX", "cuda", 0, 24, 20, 0, 0)
SYSTEM = {"os": "nt", "ram_free": 1000, "comfyui_version": "0.3.64"}


def test_an_answer_replaces_and_a_failure_keeps_the_last_known_value() -> None:
    first = ComfySample().updated((SYSTEM, (GPU,)), QueueCounts(1, 2), now=10.0, wall=1e9)
    assert first.reachable and first.error is None and first.at == 10.0 and first.ram_free == 1000
    busy = first.updated(ComfyError("timeout", "timeout after 5s"), QueueCounts(1, 1), now=20.0, wall=1e9 + 10)
    assert busy.reachable and busy.devices == (GPU,) and busy.queue == QueueCounts(1, 1) and busy.at == 20.0
    assert busy.error == "/system_stats: timeout after 5s"


def test_no_answer_at_all_is_unreachable_with_both_reasons() -> None:
    first = ComfySample().updated((SYSTEM, (GPU,)), QueueCounts(0, 0), now=10.0, wall=1e9)
    down = first.updated(ComfyError("refused", "connection refused"), ComfyError("refused", "connection refused"),
                         now=20.0, wall=1e9 + 10)
    assert not down.reachable and down.at == 10.0
    assert down.error == "/system_stats: connection refused; /queue: connection refused"
    assert down.to_dict()["queue"] == {"running": 0, "pending": 0}


def test_a_device_with_missing_or_odd_fields_parses_to_zeroes() -> None:
    dev = ComfyDevice.parse({"name": "cpu", "type": "cpu", "index": None, "vram_total": True, "vram_free": "x"})
    assert dev == ComfyDevice("cpu", "cpu", None, 0, 0, 0, 0)


def test_errors_are_named_by_kind() -> None:
    request = httpx.Request("GET", "http://127.0.0.1:8188/system_stats")
    timeout = describe_http_error(httpx.ReadTimeout("read", request=request), 5.0)
    assert (timeout.kind, timeout.message) == ("timeout", "timeout after 5s")
    try:
        raise httpx.ConnectError("All connection attempts failed", request=request) from ConnectionRefusedError(111)
    except httpx.ConnectError as exc:
        refused = describe_http_error(exc, 5.0)
    assert (refused.kind, refused.message) == ("refused", "connection refused")
    other = describe_http_error(httpx.RemoteProtocolError("peer closed", request=request), 5.0)
    assert other.kind == "error" and "peer closed" in other.message
