"""Who may use the control API: the Host, Origin and bearer-token rules, as pure ASGI middleware.

- Host must name us (the listen address, localhost, 127.0.0.1 or [::1], with our port if a port is
  given): a DNS-rebinding page that resolves its own name to 127.0.0.1 is refused (421).
- Every mutation (any method but GET/HEAD) needs `Authorization: Bearer <token>`, and is refused when
  its Origin is another site (a web page must not be able to stop ComfyUI).
- Reads are open on loopback; listening elsewhere they need the token too (the address is then a
  wildcard or a LAN address whose names we cannot know, so the token is the guard).
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from urllib.parse import urlsplit

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from orchestrator.api.token import is_loopback

__all__ = ["TOKEN_OK", "AccessGuard", "AccessPolicy", "Refusal"]

# The key in scope["state"] (request.state) that says whether the request carried the right token:
# a route with a stricter rule than the guard's (comfy.proxy_auth: token) reads it instead of the token.
TOKEN_OK = "token_ok"

_READ_METHODS = frozenset({"GET", "HEAD"})
_WILDCARDS = frozenset({"0.0.0.0", "::", ""})


@dataclass(frozen=True, slots=True)
class Refusal:
    status: int
    message: str


@dataclass(frozen=True, slots=True)
class AccessPolicy:
    token: str
    hosts: frozenset[str]  # acceptable Host header values, lowercase; empty: any (wildcard listen)
    reads_need_token: bool

    @classmethod
    def for_listener(cls, host: str, port: int, token: str) -> AccessPolicy:
        """The rules for a server bound to host:port (the real port, after binding port 0)."""
        if not token:
            raise ValueError("the API token must not be empty")
        bare = host.strip("[]").lower()
        names = {"localhost", "127.0.0.1", "[::1]", f"[{bare}]" if ":" in bare else bare}
        hosts = frozenset() if bare in _WILDCARDS else frozenset(
            form for name in names for form in (name, f"{name}:{port}")
        )
        return cls(token=token, hosts=hosts, reads_need_token=not is_loopback(bare))

    def check(self, method: str, host: str, origin: str | None, authorization: str | None) -> Refusal | None:
        if self.hosts and host.lower() not in self.hosts:
            return Refusal(421, f"host {host!r} is not this server; use {_example(self.hosts)}")
        mutation = method not in _READ_METHODS
        if mutation and origin is not None and not self._same_site(origin, host):
            return Refusal(403, f"cross-site request from origin {origin!r} refused")
        if (mutation or self.reads_need_token) and not self.token_ok(authorization):
            what = "missing" if not authorization else "wrong"
            return Refusal(401, f"{what} token: send 'Authorization: Bearer <token>' (api.token or the token file)")
        return None

    def _same_site(self, origin: str, host: str) -> bool:
        parts = urlsplit(origin)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            return False  # "null" (sandboxed frames, file://) and anything odd
        netloc = parts.netloc.lower()
        return netloc in self.hosts if self.hosts else netloc == host.lower()

    def token_ok(self, authorization: str | None) -> bool:
        scheme, _, given = (authorization or "").partition(" ")
        if scheme.lower() != "bearer":
            return False
        return hmac.compare_digest(given.strip().encode(), self.token.encode())


class AccessGuard:
    """Applies an AccessPolicy to every HTTP request before it reaches a route."""

    def __init__(self, app: ASGIApp, policy: AccessPolicy) -> None:
        self.app = app
        self.policy = policy

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = _headers(scope)
        refusal = self.policy.check(
            scope["method"], headers.get("host", ""), headers.get("origin"), headers.get("authorization")
        )
        if refusal is None:
            scope.setdefault("state", {})[TOKEN_OK] = self.policy.token_ok(headers.get("authorization"))
            await self.app(scope, receive, send)
            return
        extra = {"WWW-Authenticate": "Bearer"} if refusal.status == 401 else None
        response = JSONResponse({"error": refusal.message}, status_code=refusal.status, headers=extra)
        await response(scope, receive, send)


def _headers(scope: Scope) -> dict[str, str]:
    wanted = (b"host", b"origin", b"authorization")
    return {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"] if k in wanted}


def _example(hosts: frozenset[str]) -> str:
    with_port = sorted(h for h in hosts if h.startswith("127.0.0.1:"))
    return with_port[0] if with_port else "127.0.0.1"
