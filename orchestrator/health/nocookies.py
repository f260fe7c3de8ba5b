"""The probes' cookie policy: none kept, none sent. Its own module because http.cookiejar imports
urllib.request (and the email package): imported with httpx, when the first probe or ComfyUI needs
the shared client, never by a config that has neither (probe.py)."""

from __future__ import annotations

import urllib.request
from http.cookiejar import Cookie, CookieJar, CookiePolicy

__all__ = ["NoCookies"]


class NoCookies(CookiePolicy):
    """A cookie policy that accepts none and returns none: the jar stays empty."""

    netscape = True
    rfc2965 = False
    hide_cookie2 = True

    def set_ok(self, cookie: Cookie, request: urllib.request.Request) -> bool:
        return False

    def return_ok(self, cookie: Cookie, request: urllib.request.Request) -> bool:
        return False

    def domain_return_ok(self, domain: str, request: urllib.request.Request) -> bool:
        return False

    def path_return_ok(self, path: str, request: urllib.request.Request) -> bool:
        return False

    @classmethod
    def jar(cls) -> CookieJar:
        return CookieJar(policy=cls())
