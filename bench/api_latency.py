"""Control API latency with 100 services, one of them writing logs as fast as it can.

`python -m orchestrator run` (a real process) supervises 99 `sleep` children and one `yes` (its stdout
rotated at 10 MiB). Measured from a client in this process, on 127.0.0.1, 16 connections at once:
- how long from launching the supervisor until every service is `running` (start check off:
  start_period 0, as supervisord's startsecs=0), seen by polling the API, and inside the supervisor
  (first spawn to last `running` event);
- GET /api/health and GET /api/status: p50/p90/p99/max latency and requests/s, under the log load,
  then /api/status again with the writer stopped (side by side, same run);
- GET /api/health under the log load while 1,000 idle connections (connected, sending nothing) and 4
  followers of the writer's log that never read (`?follow=true`, 4 KiB receive buffers) are open:
  the target is p99 under 50 ms. The server closes idle connections 5 s after they open
  (api/guard.py), so this phase is capped at 4 s;
- the supervisor's CPU over each phase, and the log bytes it wrote meanwhile.

    .venv/bin/python bench/api_latency.py [--services 100] [--requests 10000] [--concurrency 16]
                                          [--supervisord PATH]
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import xmlrpc.client
from dataclasses import dataclass
from pathlib import Path

import anyio
import anyio.abc
import httpx
import psutil
from anyio.streams.buffered import BufferedByteReceiveStream
from prometheus_client.parser import text_string_to_metric_families

PHASE_CAP_S = 30.0  # no phase runs longer than this, whatever --requests says


@dataclass
class Phase:
    name: str
    latencies_ms: list[float]
    wall_s: float
    cpu_s: float
    errors: int
    log_mb_s: float = 0.0
    client_cpu_s: float = 0.0

    def row(self) -> str:
        lat = sorted(self.latencies_ms)
        q = statistics.quantiles(lat, n=100, method="inclusive")
        rps = len(lat) / self.wall_s
        return (f"{self.name:<34} {len(lat):>6} {q[49]:>7.2f} {q[89]:>7.2f} {q[98]:>7.2f} {lat[-1]:>8.2f} "
                f"{rps:>8.0f} {self.cpu_s:>7.2f} {self.client_cpu_s:>7.2f} {self.log_mb_s:>8.0f} {self.errors:>4}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write_config(tmp: Path, services: int, port: int) -> Path:
    sleep, yes = shutil.which("sleep"), shutil.which("yes")
    if sleep is None or yes is None:
        raise SystemExit("needs coreutils `sleep` and `yes` (POSIX)")
    line = "x" * 99  # `yes` repeats it: 100-byte lines, as fast as the pipe takes them
    lines = [f"api: {{listen: 127.0.0.1:{port}}}", "logs: {dir: ./logs, max_size: 10MB, backups: 2}",
             "state_dir: ./state", "defaults: {start_period: 0s, stop: {timeout: 5s}}", "services:",
             f"  chatty: {{command: ['{yes}', '{line}']}}"]
    lines += [f"  sleeper{i:03d}: {{command: ['{sleep}', '3600']}}" for i in range(services - 1)]
    cfg = tmp / "supervisor.yaml"
    cfg.write_text("\n".join(lines) + "\n")
    return cfg


async def wait_all_running(client: httpx.AsyncClient, n: int, launched: float) -> tuple[float, dict[str, object]]:
    with anyio.fail_after(60):
        while True:
            try:
                body = (await client.get("/api/status")).json()
            except httpx.TransportError:
                await anyio.sleep(0.005)
                continue
            if sum(s["state"] == "running" for s in body["services"]) == n:
                return time.perf_counter() - launched, body
            await anyio.sleep(0.005)


def internal_spread_s(events: list[dict[str, object]]) -> float:
    starts = [float(e["at"]) for e in events if e.get("to_state") == "starting"]  # type: ignore[arg-type]
    running = [float(e["at"]) for e in events if e.get("to_state") == "running"]  # type: ignore[arg-type]
    return max(running) - min(starts)


class RawClient:
    """A bare HTTP/1.1 keep-alive GET over one connection: microseconds per request, so the figures are
    the server's (httpx costs ~2 ms of this process's CPU per request and would measure itself)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.stream: BufferedByteReceiveStream | None = None
        self.sock: anyio.abc.SocketStream | None = None

    async def get(self, path: str) -> int:
        if self.sock is None or self.stream is None:
            self.sock = await anyio.connect_tcp("127.0.0.1", self.port)
            self.stream = BufferedByteReceiveStream(self.sock)
        await self.sock.send(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\n\r\n".encode())
        head = await self.stream.receive_until(b"\r\n\r\n", 65536)
        status = int(head.split(b" ", 2)[1])
        length = next(int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                      if line.lower().startswith(b"content-length:"))
        await self.stream.receive_exactly(length)
        return status

    async def aclose(self) -> None:
        if self.sock is not None:
            await self.sock.aclose()


async def load(port: int, path: str, requests: int, concurrency: int, sup: psutil.Process, name: str,
               cap_s: float = PHASE_CAP_S) -> Phase:
    latencies: list[float] = []
    errors = 0
    remaining = requests
    deadline = time.perf_counter() + cap_s

    async def worker(client: RawClient) -> None:
        nonlocal remaining, errors
        while remaining > 0 and time.perf_counter() < deadline:
            remaining -= 1
            t = time.perf_counter()
            status = await client.get(path)
            latencies.append((time.perf_counter() - t) * 1000)
            errors += status != 200

    clients = [RawClient(port) for _ in range(concurrency)]
    for client in clients:  # warm-up: connections open, caches filled
        for _ in range(5):
            await client.get(path)
    me = psutil.Process()
    cpu0, me0, t0 = sum(sup.cpu_times()[:2]), sum(me.cpu_times()[:2]), time.perf_counter()
    deadline = t0 + cap_s
    async with anyio.create_task_group() as tg:
        for client in clients:
            tg.start_soon(worker, client)
    wall = time.perf_counter() - t0
    for client in clients:
        await client.aclose()
    return Phase(name, latencies, wall, sum(sup.cpu_times()[:2]) - cpu0, errors,
                 client_cpu_s=sum(me.cpu_times()[:2]) - me0)


async def bench(args: argparse.Namespace, tmp: Path) -> None:
    port = free_port()
    cfg = write_config(tmp, args.services, port)
    out = open(tmp / "supervisor.out", "wb")  # noqa: SIM115 - handed to the child
    launched = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "orchestrator", "run", "-c", str(cfg)], stdout=out,
                            stderr=subprocess.STDOUT, start_new_session=True)
    out.close()
    sup = psutil.Process(proc.pid)
    limits = httpx.Limits(max_connections=args.concurrency, max_keepalive_connections=args.concurrency)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", limits=limits, trust_env=False,
                                     timeout=30) as client:
            all_running_s, _ = await wait_all_running(client, args.services, launched)
            events = (await client.get("/api/events")).json()["events"]
            print(f"all {args.services} running {all_running_s:.3f} s after launching the supervisor "
                  f"(first spawn to last running: {internal_spread_s(events):.3f} s)")
            await anyio.sleep(1.0)  # let the log writer reach its pace
            token = (tmp / "state" / "api-token").read_text().strip()
            phases = await run_phases(client, args, sup, token, port)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    report(phases, args)


async def run_phases(client: httpx.AsyncClient, args: argparse.Namespace, sup: psutil.Process,
                     token: str, port: int) -> list[Phase]:
    phases = []
    for path in ("/api/health", "/api/status"):
        before = await chatty_bytes(client)
        phase = await load(port, path, args.requests, args.concurrency, sup, f"GET {path} (log load)")
        phase.log_mb_s = (await chatty_bytes(client) - before) / phase.wall_s / 1e6
        phases.append(phase)
    phases.append(await flooded_health(client, port, args, sup))
    r = await client.post("/api/system/chatty/stop", headers={"Authorization": f"Bearer {token}"})
    if r.json().get("state") != "stopped":
        raise SystemExit(f"could not stop the log writer: {r.text}")
    phases.append(await load(port, "/api/status", args.requests, args.concurrency, sup, "GET /api/status (quiet)"))
    return phases


IDLE_CONNECTIONS, STUCK_FOLLOWERS, FLOOD_CAP_S = 1000, 4, 4.0


async def flooded_health(client: httpx.AsyncClient, port: int, args: argparse.Namespace,
                         sup: psutil.Process) -> Phase:
    """/api/health while 1,000 idle connections and 4 never-reading followers are open."""
    try:
        import resource

        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 4096)), hard))
    except (ImportError, ValueError, OSError):
        pass
    held: list[socket.socket] = []
    try:
        for _ in range(STUCK_FOLLOWERS):
            s = socket.socket()
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            s.connect(("127.0.0.1", port))
            s.sendall(b"GET /api/logs/chatty?follow=true&lines=100 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            held.append(s)
        for _ in range(IDLE_CONNECTIONS):
            held.append(socket.create_connection(("127.0.0.1", port)))
        name = f"GET /api/health ({IDLE_CONNECTIONS} idle, {STUCK_FOLLOWERS} stuck)"
        before = await chatty_bytes(client)
        phase = await load(port, "/api/health", args.requests, args.concurrency, sup, name, cap_s=FLOOD_CAP_S)
        phase.log_mb_s = (await chatty_bytes(client) - before) / phase.wall_s / 1e6
        return phase
    finally:
        for s in held:
            s.close()


async def chatty_bytes(client: httpx.AsyncClient) -> float:
    text = (await client.get("/api/metrics")).text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "orchestrator_log_bytes_total" and sample.labels == {"service": "chatty",
                                                                                   "stream": "stdout"}:
                return sample.value
    return 0.0


def supervisord_start_s(exe: str, services: int, tmp: Path) -> float:
    """Launch to every program RUNNING, for supervisord with the same children (startsecs=0), polled
    over its XML-RPC interface the way our API is polled."""
    port, sleep = free_port(), shutil.which("sleep")
    conf = [f"[supervisord]\nnodaemon=true\nlogfile={tmp}/sd.log\npidfile={tmp}/sd.pid\nchildlogdir={tmp}\n",
            f"[inet_http_server]\nport=127.0.0.1:{port}\n",
            "[rpcinterface:supervisor]\n"
            "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface\n"]
    conf += [f"[program:s{i:03d}]\ncommand={sleep} 3600\nstartsecs=0\n" for i in range(services)]
    (tmp / "sd.conf").write_text("\n".join(conf))
    launched = time.perf_counter()
    proc = subprocess.Popen([exe, "-c", str(tmp / "sd.conf")], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        rpc = xmlrpc.client.ServerProxy(f"http://127.0.0.1:{port}/RPC2")
        while time.perf_counter() - launched < 60:
            try:
                infos = rpc.supervisor.getAllProcessInfo()
                if len(infos) == services and all(i["statename"] == "RUNNING" for i in infos):
                    return time.perf_counter() - launched
            except (OSError, xmlrpc.client.Fault):
                pass
            time.sleep(0.005)
        raise SystemExit("supervisord did not start everything within 60 s")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)


def report(phases: list[Phase], args: argparse.Namespace) -> None:
    print(f"\n{platform.system()} {platform.release()}, {os.cpu_count()} CPUs, Python {platform.python_version()}; "
          f"{args.services} services, {args.concurrency} connections")
    print(f"{'phase':<34} {'n':>6} {'p50 ms':>7} {'p90 ms':>7} {'p99 ms':>7} {'max ms':>8} {'req/s':>8} "
          f"{'sup cpu':>7} {'cli cpu':>7} {'log MB/s':>8} {'err':>4}")
    for phase in phases:
        print(phase.row())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--services", type=int, default=100)
    parser.add_argument("--requests", type=int, default=10000, help="per phase (each capped at 30 s)")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--supervisord", help="a supervisord executable: its start of the same children, beside ours")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="api-latency-") as tmp:
        anyio.run(bench, args, Path(tmp))
    if args.supervisord:
        with tempfile.TemporaryDirectory(prefix="supervisord-") as tmp:
            start = supervisord_start_s(args.supervisord, args.services, Path(tmp))
            print(f"supervisord: all {args.services} RUNNING {start:.3f} s after launching it (startsecs=0)")


if __name__ == "__main__":
    main()
