"""Who may use the ComfyUI proxy, checked before anything reaches ComfyUI (pure: headers in, refusal out).

- **No cross-site use, whatever the method.** A page on another site can make a browser send a GET
  to `http://127.0.0.1:8765/api/comfy/manager/reboot` with a plain `<img>` tag, and the API's own
  rule lets reads through on loopback. ComfyUI has routes that act on a GET (ComfyUI-Manager's
  reboot), so the proxy refuses (403) every request a browser marks as coming from elsewhere:
  `Sec-Fetch-Site: cross-site` or `same-site` (every current browser sends it), or an `Origin` or
  `Referer` whose scheme://host:port is not the API's own (the Host the request was sent to, which
  the access guard has already checked names us). A request with none of these (curl, scripts, the
  CLI) is not a browser's cross-site request.
- **`comfy.proxy_auth`.** `token`: every proxied request needs the API token, reads too. `loopback`:
  only clients on this machine (the peer address is loopback). Unset: the API's own rule (reads are
  open on loopback; beyond loopback every request needs the token).

Messages never quote the Referer (its query may hold a token).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from orchestrator.config.spec import ProxyAuth

__all__ = ["ProxyRefusal", "proxy_refusal"]

_CROSS = frozenset({"cross-site", "same-site"})


@dataclass(frozen=True, slots=True)
class ProxyRefusal:
    status: int
    message: str


def proxy_refusal(headers: Mapping[str, str], peer: str | None, token_ok: bool,
                  auth: ProxyAuth | None) -> ProxyRefusal | None:
    """Why a proxied request must not reach ComfyUI, or None. `headers`: lowercase names."""
    fetch_site = headers.get("sec-fetch-site", "").strip().lower()
    if fetch_site in _CROSS:
        return ProxyRefusal(403, f"cross-site request refused (Sec-Fetch-Site: {fetch_site}): the ComfyUI"
                                 " proxy serves only pages of this API's own origin")  # fmt: skip
    host = headers.get("host", "")
    for name in ("origin", "referer"):
        value = headers.get(name, "")
        if value and not _same_origin(value, host):
            return ProxyRefusal(403, f"cross-site request refused: its {name.capitalize()} is not this"
                                     " API's origin; the ComfyUI proxy serves only pages of this API's own"
                                     " origin")  # fmt: skip
    if auth is ProxyAuth.TOKEN and not token_ok:
        return ProxyRefusal(401, "comfy.proxy_auth is token: send 'Authorization: Bearer <token>' with every"
                                 " proxied request, reads too")  # fmt: skip
    if auth is ProxyAuth.LOOPBACK and not _loopback(peer):
        return ProxyRefusal(403, "comfy.proxy_auth is loopback: only clients on this machine may use the"
                                 " ComfyUI proxy")  # fmt: skip
    return None


def _same_origin(url: str, host: str) -> bool:
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return False
    # "null" (sandboxed frames, file://) and anything without a host is another origin.
    return parts.scheme in ("http", "https") and bool(host) and parts.netloc.lower() == host.strip().lower()


def _loopback(peer: str | None) -> bool:
    try:
        return peer is not None and ipaddress.ip_address(peer.split("%", 1)[0]).is_loopback
    except ValueError:
        return False
