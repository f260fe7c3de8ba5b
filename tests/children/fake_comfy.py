"""fake_comfy.py PORTFILE [--port N]: a stand-in ComfyUI (0.3.64's response shapes) on 127.0.0.1.

Serves GET /system_stats (with a Set-Cookie), GET /queue, GET|POST /prompt, GET /models, GET /view (a
chunked body that stops half-way until the gate opens), GET /cookies (two Set-Cookie headers), POST
/upload/image (streams the body in, answers size and sha256), GET /manager/reboot (ComfyUI-Manager's
restart: with __COMFY_CLI_SESSION__ set it writes `<value>.reboot` and exits 0), each also under
/api/... as ComfyUI does. Writes the port to PORTFILE.

Test-only routes: GET /_debug -> {"requests": [{method, path, headers}], "upload_chunks": N};
POST /_control with any of {"queue": {"running": N, "pending": N}, "stats_delay": S, "hang": bool,
"gate": "open"|"close", "refuse": true (close the listening socket, stay alive), "exit": RC}.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import socket
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

MODELS = ["audio_encoders", "checkpoints", "clip", "clip_vision", "configs", "controlnet", "diffusers",
          "diffusion_models", "embeddings", "gligen", "hypernetworks", "loras", "model_patches", "photomaker",
          "style_models", "text_encoders", "upscale_models", "vae", "vae_approx"]


class State:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.running: list[list[Any]] = []
        self.pending: list[list[Any]] = []
        self.number = 0
        self.stats_delay = 0.0
        self.unhung = threading.Event()
        self.unhung.set()
        self.gate = threading.Event()
        self.requests: list[dict[str, Any]] = []
        self.upload_chunks = 0
        self.quit_code: int | None = None
        self.quit = threading.Event()
        self.refuse = threading.Event()
        self.connections: set[socket.socket] = set()

    def entry(self) -> list[Any]:
        self.number += 1
        graph = {"9": {"class_type": "SaveImage", "inputs": {"images": ["8", 0]}}}
        return [self.number, str(uuid.uuid4()), graph, {"client_id": "fake"}, ["9"]]

    def set_queue(self, running: int, pending: int) -> None:
        with self.lock:
            self.running = [self.entry() for _ in range(running)]
            self.pending = [self.entry() for _ in range(pending)]

    def stop(self, code: int) -> None:
        self.quit_code = code
        self.quit.set()


STATE = State()


def system_stats() -> dict[str, Any]:
    return {
        "system": {
            "os": os.name, "ram_total": 68_719_476_736, "ram_free": 41_231_686_041,
            "comfyui_version": "0.3.64", "required_frontend_version": "1.27.10",
            "python_version": sys.version, "pytorch_version": "2.8.0+cu128",
            "embedded_python": False, "argv": ["main.py", "--port", str(PORT)],
        },
        "devices": [{
            "name": "cuda:0 NVIDIA GeForce RTX 4090 : cudaMallocAsync", "type": "cuda", "index": 0,
            "vram_total": 25_756_696_576, "vram_free": 24_110_956_544,
            "torch_vram_total": 0, "torch_vram_free": 0,
        }],
    }


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive and chunked bodies, like aiohttp

    def log_message(self, format: str, *args: Any) -> None:
        print(f"{self.command} {self.path}", flush=True)

    def setup(self) -> None:
        super().setup()
        with STATE.lock:
            STATE.connections.add(self.connection)

    def finish(self) -> None:
        with STATE.lock:
            STATE.connections.discard(self.connection)
        super().finish()

    # -- plumbing ------------------------------------------------------------------------------
    def reply(self, status: int, body: Any, content_type: str = "application/json",
              cookies: tuple[str, ...] = ()) -> None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        for cookie in cookies:
            self.send_header("Set-Cookie", cookie)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        self.wfile.flush()

    def body_chunks(self) -> Any:
        """The request body as it arrives: chunked transfer coding or Content-Length."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return
                data = self.rfile.read(size)
                self.rfile.readline()
                yield data
        else:
            left = int(self.headers.get("Content-Length", "0") or 0)
            while left > 0:
                data = self.rfile.read(min(left, 65536))
                if not data:
                    return
                left -= len(data)
                yield data

    def json_body(self) -> Any:
        raw = b"".join(self.body_chunks())
        try:
            return json.loads(raw or b"null")
        except ValueError:
            return None

    def route(self) -> tuple[str, str]:
        path, _, query = self.path.partition("?")
        if path.startswith("/api/"):
            path = path[4:]
        return path, query

    def record(self) -> None:
        with STATE.lock:
            STATE.requests.append({"method": self.command, "path": self.path, "headers": dict(self.headers)})

    # -- verbs ---------------------------------------------------------------------------------
    def do_GET(self) -> None:
        path, query = self.route()
        if path == "/_debug":
            with STATE.lock:
                return self.reply(200, {"requests": STATE.requests, "upload_chunks": STATE.upload_chunks})
        self.record()
        STATE.unhung.wait()
        if path == "/system_stats":
            time.sleep(STATE.stats_delay)
            # A cookie on the health endpoint: a client that kept it would send it everywhere after.
            return self.reply(200, system_stats(), cookies=("probe_session=from-system-stats; Path=/",))
        if path == "/cookies":
            return self.reply(200, {"set": 2}, cookies=("comfy_a=one; Path=/", "comfy_b=two; Path=/; HttpOnly"))
        if path == "/queue":
            with STATE.lock:
                return self.reply(200, {"queue_running": STATE.running, "queue_pending": STATE.pending})
        if path == "/prompt":
            with STATE.lock:
                return self.reply(200, {"exec_info": {"queue_remaining": len(STATE.running) + len(STATE.pending)}})
        if path == "/models":
            return self.reply(200, MODELS)
        if path == "/view":
            return self.stream_view(query)
        if path == "/manager/reboot":
            return self.manager_reboot()
        self.reply(404, b"404: Not Found", "text/plain")

    def do_POST(self) -> None:
        path, _ = self.route()
        if path == "/_control":
            return self.control(self.json_body() or {})
        self.record()
        STATE.unhung.wait()
        if path == "/prompt":
            return self.post_prompt(self.json_body())
        if path == "/upload/image":
            return self.upload()
        self.reply(405 if path in ("/queue", "/system_stats") else 404, b"not here", "text/plain")

    # -- routes --------------------------------------------------------------------------------
    def post_prompt(self, body: Any) -> None:
        if not isinstance(body, dict) or not isinstance(body.get("prompt"), dict):
            error = {"type": "no_prompt", "message": "No prompt provided", "details": "No prompt provided",
                     "extra_info": {}}
            return self.reply(400, {"error": error, "node_errors": {}})
        with STATE.lock:
            entry = STATE.entry()
            STATE.pending.append(entry)
        self.reply(200, {"prompt_id": entry[1], "number": entry[0], "node_errors": {}})

    def upload(self) -> None:
        digest, size = hashlib.sha256(), 0
        for chunk in self.body_chunks():
            with STATE.lock:
                STATE.upload_chunks += 1
            digest.update(chunk)
            size += len(chunk)
        self.reply(200, {"name": "upload.png", "subfolder": "", "type": "input", "size": size,
                         "sha256": digest.hexdigest()})

    def stream_view(self, query: str) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for part in (b"first part;", b"second part"):
            self.wfile.write(f"{len(part):x}\r\n".encode() + part + b"\r\n")
            self.wfile.flush()
            if "gate=1" in query and part.startswith(b"first"):
                STATE.gate.wait()
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def manager_reboot(self) -> None:
        session = os.environ.get("__COMFY_CLI_SESSION__")
        if session is not None:
            with open(session + ".reboot", "w"):
                pass
            print("\nRestarting...\n\n", flush=True)
        else:
            print("\nRestarting... [Legacy Mode]\n\n", flush=True)
        self.reply(200, b"", "text/plain")
        STATE.stop(0)

    def control(self, cmd: dict[str, Any]) -> None:
        if "queue" in cmd:
            STATE.set_queue(int(cmd["queue"].get("running", 0)), int(cmd["queue"].get("pending", 0)))
        if "stats_delay" in cmd:
            STATE.stats_delay = float(cmd["stats_delay"])
        if "hang" in cmd:
            (STATE.unhung.clear if cmd["hang"] else STATE.unhung.set)()
        if "gate" in cmd:
            (STATE.gate.set if cmd["gate"] == "open" else STATE.gate.clear)()
        self.reply(200, {"ok": True})
        if cmd.get("refuse"):
            STATE.refuse.set()
        if "exit" in cmd:
            STATE.stop(int(cmd["exit"]))


PORT = 0


def main() -> None:
    global PORT
    portfile = sys.argv[1]
    port = int(sys.argv[sys.argv.index("--port") + 1]) if "--port" in sys.argv else 0
    ThreadingHTTPServer.daemon_threads = True
    # aiohttp's (ComfyUI's) backlog, not socketserver's 5: with probes, samples and proxied requests every
    # 0.1 s, a busy machine filled 5 and the test's own request timed out connecting (Wine lane, 2 cores)
    ThreadingHTTPServer.request_queue_size = 128
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    PORT = server.server_address[1]
    with open(portfile + ".tmp", "w") as f:
        f.write(str(PORT))
    os.replace(portfile + ".tmp", portfile)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    print(f"To see the GUI go to: http://127.0.0.1:{PORT}", flush=True)
    try:
        while not STATE.quit.wait(0.05):
            if STATE.refuse.is_set():
                STATE.refuse.clear()
                server.shutdown()
                server.server_close()  # connections are refused from now on; the process stays
                with STATE.lock:  # and kept-alive ones end, as when a process dies
                    for conn in STATE.connections:
                        with contextlib.suppress(OSError):
                            conn.shutdown(socket.SHUT_RDWR)
                print("refusing connections", flush=True)
    except KeyboardInterrupt:  # ComfyUI's stop signal is SIGINT (Ctrl+C)
        print("\nStopped server", flush=True)
        sys.exit(0)
    time.sleep(0.05)  # let the handler's reply leave before the process does
    sys.exit(STATE.quit_code or 0)


if __name__ == "__main__":
    main()
