"""Demo service: an HTTP server on 127.0.0.1:$PORT (8780) answering /health with 200 and JSON."""

from __future__ import annotations

import json
import os
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from _common import exit_on_signals, say

STARTED = time.monotonic()


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path == "/health":
            self.reply(200, {"status": "ok", "uptime_s": round(time.monotonic() - STARTED, 1)})
        else:
            self.reply(200, {"hello": "from the orchestrator demo", "try": "/health"})

    def reply(self, status: int, body: dict[str, object]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        say(f"web: {self.address_string()} {format % args}")


def main() -> None:
    exit_on_signals("web")
    port = int(os.environ.get("PORT", "8780"))
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    say(f"web: listening on http://127.0.0.1:{port}")
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
