"""The proxy's rules without a network: which paths stay on ComfyUI, the endpoint label, the headers."""

from __future__ import annotations

import pytest

from orchestrator.comfy.proxy import (
    BadProxyPath,
    endpoint_label,
    forwarded_request_headers,
    forwarded_response_headers,
    upstream_path,
)


@pytest.mark.parametrize("raw", [
    "..", "../x", "a/../../x", "a/..", "%2e%2e/x", "%2E%2E%2Fsecret", "%252e%252e/x", "%25252e%25252e/x",
    "./x", "a/./b", "/etc/passwd", "%2Fetc%2Fpasswd", "//evil.example/x", "%2F%2Fevil.example", "a//b",
    "http://evil.example/", "http:%2F%2Fevil.example", "HTTPS:x", "javascript:alert(1)", "a\\..\\b", "a%5c..",
    "a%00b", "a%0d%0aHost:%20x", "%2525252525252e",
])
def test_paths_that_could_leave_comfyui_are_refused(raw: str) -> None:
    with pytest.raises(BadProxyPath):
        upstream_path(raw)


@pytest.mark.parametrize(("raw", "path"), [
    ("prompt", "prompt"), ("api/queue", "api/queue"), ("view", "view"), ("", ""), ("userdata/", "userdata/"),
    ("userdata/workflows%2Fmy%20flow.json", "userdata/workflows/my flow.json"), ("a..b/c.d", "a..b/c.d"),
    ("history/3f1c-9a", "history/3f1c-9a"), ("models/checkpoints", "models/checkpoints"),
])
def test_ordinary_paths_pass(raw: str, path: str) -> None:
    assert upstream_path(raw) == path


@pytest.mark.parametrize(("path", "label"), [
    ("prompt", "/prompt"), ("api/prompt", "/prompt"), ("history/3f1c9a7e-1d2b-4c5e-8f00-1234567890ab", "/history"),
    ("view", "/view"), ("upload/image", "/upload"), ("system_stats", "/system_stats"), ("models/loras", "/models"),
    ("", "other"), ("api", "other"), ("3f1c9a7e-1d2b", "other"), ("api/3f1c9a7e", "other"), ("favicon.ico", "other"),
])
def test_the_endpoint_label_is_bounded(path: str, label: str) -> None:
    assert endpoint_label(path) == label


def test_request_headers_lose_hop_by_hop_host_and_our_credentials() -> None:
    sent = [("Host", "127.0.0.1:8765"), ("Authorization", "Bearer s3cret"), ("Cookie", "session=1"),
            ("Connection", "keep-alive, X-Private"), ("Keep-Alive", "timeout=5"), ("X-Private", "p"),
            ("Proxy-Authorization", "Basic x"), ("TE", "trailers"), ("Transfer-Encoding", "chunked"),
            ("Upgrade", "websocket"), ("Origin", "http://127.0.0.1:3000"), ("Content-Type", "application/json"),
            ("Content-Length", "12"), ("X-Request-Id", "abc"), ("Accept", "*/*")]
    assert forwarded_request_headers(sent) == [("Content-Type", "application/json"), ("Content-Length", "12"),
                                               ("X-Request-Id", "abc"), ("Accept", "*/*")]


def test_response_headers_lose_hop_by_hop_only() -> None:
    got = [("content-type", "image/png"), ("content-length", "5"), ("transfer-encoding", "chunked"),
           ("connection", "close"), ("content-encoding", "gzip"), ("set-cookie", "a=b")]
    assert forwarded_response_headers(got) == [("content-type", "image/png"), ("content-length", "5"),
                                               ("content-encoding", "gzip"), ("set-cookie", "a=b")]
