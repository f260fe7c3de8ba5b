"""`/api/comfy/{path}`: a streaming reverse proxy to ComfyUI's own API, kept on a short leash.

- The path cannot leave ComfyUI: no absolute URL, no scheme, no `//`, no `.` or `..` segment, no
  backslash or control character, checked after percent-decoding (repeatedly: `%252e` too). 400.
- Refused before anything reaches ComfyUI: a request a browser marks as cross-site, and one that
  comfy.proxy_auth does not allow (comfy/access.py).
- Hop-by-hop headers, Host, our Authorization, the client's Cookie, Origin and Referer are not
  forwarded (ComfyUI refuses a foreign Origin; once proxied, the request is ours). The shared client
  keeps no cookies (health/probe.py), so no other client's or probe's cookie is sent either.
- Every header of ComfyUI's answer but the hop-by-hop ones goes back as sent: each Set-Cookie on its
  own (a dict of the headers kept only the last).
- Bodies stream both ways. `proxy_timeout` bounds the connect and every wait for data: no answer in
  time is a 504, nothing listening a 502, each with a one-line reason.
- While a drain runs, a new prompt (`POST /prompt`) gets 503 with Retry-After.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterable
from typing import TYPE_CHECKING
from urllib.parse import unquote

import anyio
import structlog
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from orchestrator.api.auth import TOKEN_OK
from orchestrator.comfy.access import proxy_refusal
from orchestrator.comfy.client import describe_http_error
from orchestrator.comfy.model import ComfyUI
from orchestrator.config.redact import shown_url
from orchestrator.errors import OrchestratorError

if TYPE_CHECKING:
    import httpx

__all__ = [
    "HOP_BY_HOP",
    "KNOWN_ENDPOINTS",
    "PREFIX",
    "RETRY_AFTER_S",
    "BadProxyPath",
    "endpoint_label",
    "forward",
    "forwarded_request_headers",
    "forwarded_response_headers",
    "upstream_path",
]

_log = structlog.get_logger("orchestrator.comfy")

PREFIX = "/api/comfy/"
RETRY_AFTER_S = 30  # what a refused prompt is told while a drain runs
HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "proxy-connection",
                        "te", "trailer", "transfer-encoding", "upgrade"})
_NOT_FORWARDED = HOP_BY_HOP | {"host", "authorization", "cookie", "origin", "referer"}
# The bounded `endpoint` label of orchestrator_comfy_api_calls_total: ComfyUI's top-level routes.
KNOWN_ENDPOINTS = frozenset({
    "prompt", "queue", "history", "system_stats", "models", "object_info", "view", "view_metadata", "upload",
    "interrupt", "free", "embeddings", "extensions", "features", "settings", "userdata", "users", "i18n",
    "workflow_templates", "internal", "manager", "ws",
})
_SCHEME = re.compile(r"^[a-z][a-z0-9+.-]*:", re.IGNORECASE)


class BadProxyPath(OrchestratorError):
    pass


def upstream_path(raw: str) -> str:
    """The decoded path under ComfyUI's URL for the raw (still percent-encoded) remainder; else BadProxyPath."""
    decoded, previous = raw, None
    for _ in range(5):  # %252e%252e -> %2e%2e -> ..
        if decoded == previous:
            break
        previous, decoded = decoded, unquote(decoded)
    if decoded != previous:
        raise BadProxyPath("path: too many layers of percent-encoding")
    if any(ord(c) < 0x20 or c in "\\\x7f" for c in decoded):
        raise BadProxyPath("path: control characters and backslashes are not allowed")
    if decoded.startswith("/") or _SCHEME.match(decoded) or "://" in decoded:
        raise BadProxyPath("path: must be relative to ComfyUI's URL (no scheme, no host, no leading /)")
    segments = decoded.split("/")
    if any(seg in (".", "..") for seg in segments):
        raise BadProxyPath("path: '.' and '..' segments are not allowed")
    if "" in segments[:-1]:
        raise BadProxyPath("path: empty segments ('//') are not allowed")
    return decoded


def endpoint_label(path: str) -> str:
    """`/prompt`, `/view`, ... for a known top-level route (with or without ComfyUI's `api/`), else `other`."""
    segments = path.split("/")
    first = segments[1] if segments[0] == "api" and len(segments) > 1 else segments[0]
    return f"/{first}" if first in KNOWN_ENDPOINTS else "other"


def forwarded_request_headers(headers: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    pairs = list(headers)
    named = {v.strip().lower() for k, v in pairs if k.lower() == "connection" for v in v.split(",")}
    return [(k, v) for k, v in pairs if k.lower() not in _NOT_FORWARDED and k.lower() not in named]


def forwarded_response_headers(headers: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    pairs = list(headers)
    named = {v.strip().lower() for k, v in pairs if k.lower() == "connection" for v in v.split(",")}
    return [(k, v) for k, v in pairs if k.lower() not in HOP_BY_HOP and k.lower() not in named]


async def forward(request: Request, comfy: ComfyUI) -> Response:
    """Proxy one request to ComfyUI and count it under its endpoint and our answer's status."""
    spec = comfy.spec
    if spec is None:
        return _error(404, "no service carries comfy: in the config")
    import httpx  # here: with ComfyUI configured; a config without it never imports httpx
    client = request.scope.get("client")
    refusal = proxy_refusal({k.lower(): v for k, v in request.headers.items()},
                            client[0] if client else None, bool(request.scope.get("state", {}).get(TOKEN_OK)),
                            spec.proxy_auth)
    if refusal is not None:
        comfy.proxy_calls[(endpoint_label(upstream_path_or_other(request)), str(refusal.status))] += 1
        extra = {"WWW-Authenticate": "Bearer"} if refusal.status == 401 else None
        return _error(refusal.status, refusal.message, headers=extra)
    raw = _raw_remainder(request)
    try:
        path = upstream_path(raw)
    except BadProxyPath as exc:
        return _error(400, str(exc))
    endpoint = endpoint_label(path)
    if request.method == "POST" and endpoint == "/prompt" and comfy.draining:
        comfy.proxy_calls[(endpoint, "503")] += 1
        return _error(503, "ComfyUI is draining before a restart; new prompts are refused until it is back",
                      headers={"Retry-After": str(RETRY_AFTER_S)})
    query = request.scope.get("query_string", b"").decode("latin-1")
    url = f"{spec.url.rstrip('/')}/{raw}" + (f"?{query}" if query else "")
    upstream = comfy.http.build_request(
        request.method, url, headers=forwarded_request_headers(request.headers.items()),
        content=request.stream() if request.method == "POST" else None,
        timeout=httpx.Timeout(spec.proxy_timeout_s),
    )
    base = httpx.URL(spec.url)
    if (upstream.url.scheme, upstream.url.host, upstream.url.port) != (base.scheme, base.host, base.port):
        return _error(400, "path: must stay on ComfyUI's host")  # unreachable by the rules above; kept as a guard
    try:
        response = await comfy.http.send(upstream, stream=True)
    except httpx.HTTPError as exc:
        failure = describe_http_error(exc, spec.proxy_timeout_s)
        status = 504 if failure.kind == "timeout" else 502
        comfy.proxy_calls[(endpoint, str(status))] += 1
        what = "did not answer in time" if status == 504 else "cannot be reached"
        return _error(status, f"ComfyUI at {shown_url(spec.url)} {what}: {failure.message}")
    comfy.proxy_calls[(endpoint, str(response.status_code))] += 1
    relayed = StreamingResponse(_relay(response, endpoint), status_code=response.status_code)
    encoding = response.headers.encoding  # how httpx decoded them: encoded back to the same bytes
    relayed.raw_headers = [(k.lower().encode(encoding), v.encode(encoding))
                           for k, v in forwarded_response_headers(response.headers.multi_items())]
    return relayed


def upstream_path_or_other(request: Request) -> str:
    """The upstream path for the metrics label of a refused request ("other" if it is not a valid one)."""
    try:
        return upstream_path(_raw_remainder(request))
    except BadProxyPath:
        return "other"


def _raw_remainder(request: Request) -> str:
    """The path after /api/comfy/ as the client sent it (still percent-encoded)."""
    raw_path = request.scope.get("raw_path")
    text = raw_path.decode("latin-1") if isinstance(raw_path, bytes) else request.url.path
    return text.split("?", 1)[0][len(PREFIX):] if text.startswith(PREFIX) else request.path_params["path"]


async def _relay(response: httpx.Response, endpoint: str) -> AsyncIterator[bytes]:
    """ComfyUI's body as it arrives; the upstream response is closed however the relay ends."""
    import httpx

    try:
        async for chunk in response.aiter_raw():
            yield chunk
    except httpx.HTTPError as exc:  # cut mid-body: the client must see a broken response, not a short one
        _log.warning("comfy_proxy_body_broken", endpoint=endpoint, error=f"{type(exc).__name__}: {exc}")
        raise
    finally:
        with anyio.CancelScope(shield=True):
            await response.aclose()


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)
