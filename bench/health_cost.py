"""What health probes and resource sampling cost the supervisor: CPU and wall time per operation.

    .venv/bin/python bench/health_cost.py [--services 1,10,100] [--rounds 20]

1. `sample_trees` (resources.py) over N running services (sleeping children), as a status read
   triggers it at most once per `status.every`: wall and CPU seconds of one sample, median of rounds.
2. `probe_once` (probe.py) against a local stdlib HTTP server, over the shared client settings the
   supervisor uses: wall and CPU per probe, and what two services probed every 15 s cost per minute.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import anyio
import httpx

from orchestrator.config.spec import HealthSpec
from orchestrator.core.resources import sample_trees
from orchestrator.health.probe import probe_once

SLEEPER = [sys.executable, "-c", "import time; time.sleep(3600)"]


def measure(fn: object, rounds: int) -> tuple[float, float]:
    """Median wall and CPU seconds of calling fn() (CPU: this process, all threads)."""
    walls, cpus = [], []
    for _ in range(rounds):
        w0, c0 = time.perf_counter(), time.process_time()
        fn()  # type: ignore[operator]
        walls.append(time.perf_counter() - w0)
        cpus.append(time.process_time() - c0)
    return statistics.median(walls), statistics.median(cpus)


def bench_sampling(counts: list[int], rounds: int) -> None:
    print("resource sampling: one sample_trees() over N services")
    print(f"{'services':>9} {'wall ms':>9} {'cpu ms':>9}")
    for n in counts:
        procs = [subprocess.Popen(SLEEPER) for _ in range(n)]
        try:
            roots = {f"svc{i}": p.pid for i, p in enumerate(procs)}
            sample_trees(roots)  # first call: psutil builds its process cache
            wall, cpu = measure(lambda roots=roots: sample_trees(roots), rounds)
            print(f"{n:>9} {wall * 1000:>9.1f} {cpu * 1000:>9.1f}")
        finally:
            for p in procs:
                p.kill()
                p.wait()


class _Ok(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, format: str, *args: object) -> None:
        pass


async def _probes(url: str, rounds: int) -> tuple[float, float]:
    spec = HealthSpec(url=url, timeout_s=5.0)
    limits = httpx.Limits(max_keepalive_connections=0)  # as Prober.open() sets it up
    walls, cpus = [], []
    async with httpx.AsyncClient(trust_env=False, limits=limits) as client:
        await probe_once(client, spec)
        for _ in range(rounds):
            w0, c0 = time.perf_counter(), time.thread_time()
            result = await probe_once(client, spec)
            walls.append(time.perf_counter() - w0)
            cpus.append(time.thread_time() - c0)  # the event loop's thread only: not the server's
            assert result.ok, result
    return statistics.median(walls), statistics.median(cpus)


def bench_probes(rounds: int) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Ok)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/health"
        wall, cpu = anyio.run(_probes, url, rounds)
    finally:
        server.shutdown()
    per_minute = cpu * 2 * (60 / 15)
    print("\nhealth probe: one probe_once() on loopback")
    print(f"wall {wall * 1000:.2f} ms, cpu {cpu * 1000:.2f} ms per probe;"
          f" two services every 15 s: {per_minute * 1000:.1f} ms CPU per minute")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--services", default="1,10,100")
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    bench_sampling([int(n) for n in args.services.split(",")], args.rounds)
    bench_probes(args.rounds * 5)


if __name__ == "__main__":
    main()
