"""Hostile output against a real supervisor: a 200 MB line, a tail of it, followers that never read.

`python -m orchestrator run` (a real process) with `logs: {max_size: 1MB, backups: 3}` and two services
started by hand through the API:
- `line` writes MIB mebibytes of `x` with no newline, in 1 MiB writes: the largest log file, and the
  supervisor's peak RSS meanwhile;
- then `GET /api/logs/line?lines=1`: its time and size, the supervisor's peak RSS, and the slowest
  `GET /api/health` while it runs (a second client asking every 10 ms);
- `lines` writes MIB mebibytes of 100-byte lines while two followers (`?follow=true`, raw sockets with a
  4 KiB receive buffer) never read: the peak RSS, and the RSS 3 s after they hang up.

    .venv/bin/python bench/hostile_logs.py [--mib 200] [--source DIR]

`--source DIR` runs the supervisor from another checkout (PYTHONPATH=DIR), e.g. main's, for a before
and after on the same machine.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import psutil
from prometheus_client.parser import text_string_to_metric_families

LINE = "import sys\nc=b'x'*(1<<20)\nfor _ in range(int(sys.argv[1])): sys.stdout.buffer.write(c)\n" \
       "sys.stdout.flush()\nimport time\ntime.sleep(3600)\n"
LINES = "import sys\nc=(b'y'*99+b'\\n')*10486\nfor _ in range(int(sys.argv[1])): sys.stdout.buffer.write(c)\n" \
        "sys.stdout.flush()\nimport time\ntime.sleep(3600)\n"
MB = 1e6


class RssPeak:
    """Samples a process's RSS every 10 ms in a thread; `peak()` since the last `reset()`."""

    def __init__(self, proc: psutil.Process) -> None:
        self.proc, self._peak, self._stop = proc, 0, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.01):
            try:
                self._peak = max(self._peak, self.proc.memory_info().rss)
            except psutil.Error:
                return

    def reset(self) -> None:
        self._peak = self.proc.memory_info().rss

    def peak(self) -> int:
        return self._peak

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write_config(tmp: Path, port: int, mib: int) -> Path:
    py = sys.executable
    (tmp / "line.py").write_text(LINE)
    (tmp / "lines.py").write_text(LINES)
    cfg = tmp / "supervisor.yaml"
    cfg.write_text("\n".join([
        f"api: {{listen: 127.0.0.1:{port}}}", "logs: {dir: ./logs, max_size: 1MB, backups: 3}",
        "state_dir: ./state", "defaults: {start_period: 0s}", "services:",
        f"  line: {{command: ['{py}', '{tmp / 'line.py'}', '{mib}'], autostart: false}}",
        f"  lines: {{command: ['{py}', '{tmp / 'lines.py'}', '{mib}'], autostart: false}}",
    ]) + "\n")
    return cfg


def log_bytes(client: httpx.Client, service: str) -> float:
    for family in text_string_to_metric_families(client.get("/api/metrics").text):
        for sample in family.samples:
            if sample.name == "orchestrator_log_bytes_total" and sample.labels == {"service": service,
                                                                                   "stream": "stdout"}:
                return sample.value
    return 0.0


def wait_written(client: httpx.Client, service: str, n: float) -> float:
    t0 = time.perf_counter()
    while log_bytes(client, service) < n:
        if time.perf_counter() - t0 > 300:
            raise SystemExit(f"{service} did not write {n:.0f} bytes in 300 s")
        time.sleep(0.05)
    return time.perf_counter() - t0


def slowest_health(port: int, stop: threading.Event, out: list[float]) -> None:
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", trust_env=False, timeout=60) as client:
        while not stop.is_set():
            t = time.perf_counter()
            client.get("/api/health")
            out.append((time.perf_counter() - t) * 1000)
            stop.wait(0.01)


def bench(args: argparse.Namespace, tmp: Path) -> None:
    port = free_port()
    cfg = write_config(tmp, port, args.mib)
    env = dict(os.environ, PYTHONPATH=args.source) if args.source else None
    out = open(tmp / "supervisor.out", "wb")  # noqa: SIM115 - handed to the child
    proc = subprocess.Popen([sys.executable, "-m", "orchestrator", "run", "-c", str(cfg)], stdout=out,
                            stderr=subprocess.STDOUT, start_new_session=True, env=env, cwd=tmp)
    out.close()
    sup = psutil.Process(proc.pid)
    rss = RssPeak(sup)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", trust_env=False, timeout=120) as client:
            t0 = time.perf_counter()
            while True:
                try:
                    client.get("/api/health")
                    break
                except httpx.TransportError:
                    if time.perf_counter() - t0 > 30:
                        raise SystemExit((tmp / "supervisor.out").read_text()) from None
                    time.sleep(0.05)
            auth = {"Authorization": "Bearer " + (tmp / "state" / "api-token").read_text().strip()}
            phases(args, client, auth, port, tmp, sup, rss)
    finally:
        rss.stop()
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)


def phases(args: argparse.Namespace, client: httpx.Client, auth: dict[str, str], port: int, tmp: Path,
           sup: psutil.Process, rss: RssPeak) -> None:
    time.sleep(1)
    idle = sup.memory_info().rss
    print(f"supervisor RSS at start: {idle / MB:.0f} MB")
    rss.reset()
    client.post("/api/system/line/start", headers=auth)
    took = wait_written(client, "line", args.mib * (1 << 20))
    biggest = max(p.stat().st_size for p in (tmp / "logs").glob("line-stdout.log*"))
    print(f"{args.mib} MiB line: written in {took:.1f} s; largest file {biggest:,} bytes; "
          f"peak RSS {rss.peak() / MB:.0f} MB")

    rss.reset()
    stop, health = threading.Event(), []
    watcher = threading.Thread(target=slowest_health, args=(port, stop, health))
    watcher.start()
    time.sleep(0.2)
    t = time.perf_counter()
    r = client.get("/api/logs/line", params={"lines": 1})
    tail_s = time.perf_counter() - t
    time.sleep(0.2)
    stop.set()
    watcher.join()
    print(f"GET /api/logs/line?lines=1: {r.status_code} in {tail_s * 1000:.0f} ms, {len(r.content):,} bytes; "
          f"peak RSS {rss.peak() / MB:.0f} MB; slowest /api/health meanwhile {max(health):.0f} ms "
          f"({len(health)} requests)")
    client.post("/api/system/line/stop", headers=auth)

    before = sup.memory_info().rss
    rss.reset()
    stuck = []
    for _ in range(2):
        s = socket.create_connection(("127.0.0.1", port))
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.sendall(b"GET /api/logs/lines?follow=true&lines=0 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        stuck.append(s)
    time.sleep(0.5)
    client.post("/api/system/lines/start", headers=auth)
    wait_written(client, "lines", args.mib * (1 << 20) * 0.99)
    peak = rss.peak()
    for s in stuck:
        s.close()
    time.sleep(3)
    print(f"2 followers that never read, {args.mib} MiB of lines: RSS {before / MB:.0f} MB before, "
          f"peak {peak / MB:.0f} MB, {sup.memory_info().rss / MB:.0f} MB 3 s after they left")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=int, default=200)
    parser.add_argument("--source", help="run the supervisor from this checkout (PYTHONPATH)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="hostile-logs-") as tmp:
        bench(args, Path(tmp))


if __name__ == "__main__":
    main()
