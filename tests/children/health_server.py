"""health_server.py PORT [--mode-file F] [--port-file F] [--listen-after S]: an HTTP health endpoint.

Listens on 127.0.0.1:PORT (0: any free port, written to --port-file) after waiting --listen-after
seconds. Every GET answers by the mode read from --mode-file at that moment (missing file: ok):
  ok   -> 200        fail -> 500        hang -> never answers
Each request is printed as `request <mode> <epoch seconds>` so a test can count and time probes.
"""

import argparse
import os
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

parser = argparse.ArgumentParser()
parser.add_argument("port", type=int)
parser.add_argument("--mode-file")
parser.add_argument("--port-file")
parser.add_argument("--listen-after", type=float, default=0.0)
args = parser.parse_args()


def mode() -> str:
    try:
        with open(args.mode_file) as f:
            return f.read().strip() or "ok"
    except (TypeError, FileNotFoundError):
        return "ok"


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        current = mode()
        print(f"request {current} {time.time():.6f}", flush=True)
        if current == "hang":
            time.sleep(3600)
            return
        status = 500 if current == "fail" else 200
        body = current.encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass  # the request line above is all we want


time.sleep(args.listen_after)
server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
server.daemon_threads = True  # a hanging request never delays the exit
port = server.server_address[1]
if args.port_file:
    with open(args.port_file + ".tmp", "w") as f:
        f.write(str(port))
    os.replace(args.port_file + ".tmp", args.port_file)
print(f"listening {port}", flush=True)
server.serve_forever()
