"""What an idle supervisor costs: CPU seconds per minute and memory, with the API up and 2 children
whose health is probed every 15 s (the production shape: ComfyUI and the panel).

`python -m orchestrator run` supervises two `python -m http.server` children, each probed every 15 s.
Once both are healthy and a settling pause has passed, nothing talks to it for `--duration` seconds;
its CPU time (user + system, psutil) over that window and its RSS at the end are reported. With
`--supervisord PATH`, supervisord runs the same two children at the same time (it has no health
probes) and its figures are printed beside ours.

With `--page`, a second window of the same length follows with the dashboard open: three SSE
clients stand in for the page (/api/live, and the log pane's stdout and stderr follows of one
service) and read everything the supervisor pushes; the difference is what an open page costs.

    .venv/bin/python bench/idle.py [--duration 60] [--supervisord /tmp/sv/bin/supervisord] [--page]
"""

from __future__ import annotations

import argparse
import os
import platform
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

SETTLE_S = 5.0  # after both are healthy: start-up work (imports, first samples) is over


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def child_argv(port: int) -> list[str]:
    return [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"]


def ours(tmp: Path, ports: list[int]) -> tuple[subprocess.Popen[bytes], int]:
    api = free_port()
    lines = [f"api: {{listen: 127.0.0.1:{api}}}", "logs: {dir: ./logs}", "state_dir: ./state", "services:"]
    for i, port in enumerate(ports):
        argv = ", ".join(f"'{a}'" for a in child_argv(port))
        lines.append(f"  web{i}: {{command: [{argv}], health: {{url: 'http://127.0.0.1:{port}/', every: 15s}}}}")
    (tmp / "ours").mkdir()
    cfg = tmp / "ours" / "supervisor.yaml"
    cfg.write_text("\n".join(lines) + "\n")
    proc = subprocess.Popen([sys.executable, "-m", "orchestrator", "run", "-c", str(cfg)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    return proc, api


def supervisord(tmp: Path, exe: str, ports: list[int]) -> subprocess.Popen[bytes]:
    conf = tmp / "supervisord.conf"
    parts = [f"[supervisord]\nnodaemon=true\nlogfile={tmp}/supervisord.log\npidfile={tmp}/supervisord.pid\n"
             f"childlogdir={tmp}\n"]
    for i, port in enumerate(ports):
        parts.append(f"[program:web{i}]\ncommand={' '.join(child_argv(port))}\nstartsecs=1\n")
    conf.write_text("\n".join(parts))
    return subprocess.Popen([exe, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)


def wait_healthy(api: int, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    with httpx.Client(base_url=f"http://127.0.0.1:{api}", trust_env=False) as client:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise SystemExit(f"the supervisor exited with {proc.returncode}")
            try:
                services = client.get("/api/status").json()["services"]
                if all(s["health"] == "healthy" for s in services):
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
    raise SystemExit("the children did not become healthy")


def open_page(api: int) -> list[threading.Thread]:
    """What the dashboard keeps open: the live feed and one service's two log follows (read to the end)."""
    paths = ["/api/live", "/api/logs/web0?stream=stdout&follow=true", "/api/logs/web0?stream=stderr&follow=true"]

    def read(path: str) -> None:
        with httpx.Client(base_url=f"http://127.0.0.1:{api}", trust_env=False, timeout=None) as client:
            try:
                with client.stream("GET", path) as response:
                    for _ in response.iter_bytes():
                        pass
            except httpx.HTTPError:
                pass  # the supervisor stopped at the end of the run

    threads = [threading.Thread(target=read, args=(p,), daemon=True) for p in paths]
    for t in threads:
        t.start()
    return threads


def cpu_s(proc: psutil.Process) -> float:
    times = proc.cpu_times()
    return times.user + times.system


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=60.0, help="idle seconds measured")
    parser.add_argument("--supervisord", help="a supervisord executable to measure beside ours")
    parser.add_argument("--page", action="store_true", help="then a second window with the dashboard open")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="idle-") as tmp_name:
        tmp = Path(tmp_name)
        procs: dict[str, subprocess.Popen[bytes]] = {}
        try:
            procs["orchestrator"], api = ours(tmp, [free_port(), free_port()])
            if args.supervisord:
                procs["supervisord"] = supervisord(tmp, args.supervisord, [free_port(), free_port()])
            wait_healthy(api, procs["orchestrator"])
            time.sleep(SETTLE_S)
            watched = {name: psutil.Process(p.pid) for name, p in procs.items()}
            before = {name: cpu_s(p) for name, p in watched.items()}
            time.sleep(args.duration)
            rows = [(name, (cpu_s(p) - before[name]) * 60 / args.duration, p.memory_info().rss / 2**20)
                    for name, p in watched.items()]
            if args.page:
                open_page(api)
                time.sleep(SETTLE_S)  # the page's first messages and its one sample are not idle cost
                ours_proc = watched["orchestrator"]
                start = cpu_s(ours_proc)
                time.sleep(args.duration)
                rows.append(("+ page open", (cpu_s(ours_proc) - start) * 60 / args.duration,
                             ours_proc.memory_info().rss / 2**20))
        finally:
            for proc in procs.values():
                proc.send_signal(signal.SIGTERM)
            for proc in procs.values():
                proc.wait(timeout=60)
    print(f"{platform.system()} {platform.release()}, {os.cpu_count()} CPUs, Python {platform.python_version()}; "
          f"idle {args.duration:.0f} s after both children were healthy (+{SETTLE_S:.0f} s)")
    print(f"{'supervisor':<14} {'CPU s/min':>10} {'RSS MiB':>8}")
    for name, cpu, rss in rows:
        print(f"{name:<14} {cpu:>10.4f} {rss:>8.1f}")


if __name__ == "__main__":
    main()
