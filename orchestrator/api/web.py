"""The dashboard's files: `GET /` (index.html) and `GET /web/{file}` (app.js, app.css, icon.svg).

Rule: the files are package data (orchestrator/web/), read once when the app is built and served from
memory, so a request reads no disk and a missing file fails at start, not in a browser. There is no
build step and nothing from another origin: the box may be offline.

Every answer carries a Content-Security-Policy that allows our own origin only and no inline script or
style, so a child's output that somehow reached the page as HTML still could not run; the page itself
writes child data with textContent only (docs/dashboard.md).
"""

from __future__ import annotations

from importlib import resources

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

__all__ = ["CSP", "FILES", "web_routes"]

CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
       "base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
FILES = {"index.html": "text/html; charset=utf-8", "app.js": "text/javascript; charset=utf-8",
         "app.css": "text/css; charset=utf-8", "icon.svg": "image/svg+xml"}
HEADERS = {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer",
           "Cache-Control": "no-cache"}


def web_routes() -> list[BaseRoute]:
    folder = resources.files("orchestrator").joinpath("web")
    page = _Page({name: folder.joinpath(name).read_bytes() for name in FILES})
    return [Route("/", page.index, methods=["GET"]), Route("/web/{file}", page.asset, methods=["GET"])]


class _Page:
    def __init__(self, files: dict[str, bytes]) -> None:
        self.files = files

    async def index(self, request: Request) -> Response:
        """---
        summary: The dashboard (docs/dashboard.md); live over /api/live, actions need the token
        responses: {200: {description: text/html}}
        """
        return self._file("index.html")

    async def asset(self, request: Request) -> Response:
        """---
        summary: The dashboard's script, style sheet and icon
        parameters: [{name: file, in: path, required: true, schema: {type: string, enum: [app.js, app.css, icon.svg]}}]
        responses: {200: {description: the file}, 404: {description: no such file}}
        """
        name = request.path_params["file"]
        if name not in self.files or name == "index.html":
            return JSONResponse({"error": f"no file {name!r} in the dashboard"}, status_code=404)
        return self._file(name)

    def _file(self, name: str) -> Response:
        return Response(self.files[name], media_type=FILES[name], headers=HEADERS)
