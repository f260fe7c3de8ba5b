"""The supervisor's memory over a long mixed run: does it level, and where does it go?

The mix (issue 16): 20 chatty services (100 flushed lines of 90 B a second each, like progress
output), 5 probed services (a small HTTP server child, probed every 2 s), 5 crash-looping services
(exit 1 at once, restart always, 1 s cooldown), the API up, and a dashboard/Prometheus-like client
that reads `GET /api/status` and `GET /api/metrics` every 5 s. The bench runs `orchestrator run` on
it for `--minutes` (10) and samples the supervisor's own process every 10 s: RSS, USS, threads, open
fds. It prints the curve, start/peak/end and the slope over the last 5 minutes (least squares).

    .venv/bin/python bench/rss_soak.py [--minutes 10] [--env MALLOC_ARENA_MAX=2] [--tracemalloc]

`--tracemalloc` runs the same supervisor under a wrapper (this file, `_serve`) that starts
tracemalloc and dumps a snapshot every minute; at the end the bench prints what grew between minute 1
and the last snapshot (Python allocations only: the rest of RSS is the interpreter, C libraries and
malloc's free lists), and the RSS before and after `malloc_trim(0)` in the supervisor (what glibc
holds free but has not returned); `--trim-every S` calls malloc_trim(0) every S seconds. Measure with
a venv holding only the runtime dependencies: structlog imports `rich` when it is installed (+6 MiB).
Not part of `make bench-compare` nor of CI.

What it found (docs/benchmarks.md, "RSS over a 10-minute mixed run"): RSS 43 -> 68 MiB in 10 minutes
with Python's traced memory flat at 21 MiB: the growth was glibc's main heap keeping freed memory
(malloc_trim gave 16 MiB back). Since the supervisor trims every 60 s, the same mix stays at 46-47 MiB.
"""

from __future__ import annotations

import argparse
import ctypes
import http.client
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import tracemalloc
from pathlib import Path

import psutil

HERE = Path(__file__).resolve().parent
CHILD = str(HERE / "compare_child.py")
PY = sys.executable
CHATTY, PROBED, CRASHING = 20, 5, 5


def _free_ports(n: int) -> list[int]:
    import socket

    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [int(s.getsockname()[1]) for s in socks]
    for s in socks:
        s.close()
    return ports


def write_config(run_dir: Path) -> int:
    api, *web = _free_ports(1 + PROBED)
    q = json.dumps
    lines = [f"api: {{listen: '127.0.0.1:{api}'}}", "logs: {dir: ./logs, max_size: 10MB, backups: 2}",
             "state_dir: ./state", "services:"]
    for k in range(CHATTY):
        lines.append(f"  chatty{k:02d}: {{command: {q([PY, '-S', CHILD, 'chatty', '86400'])}, "
                     "restart: {policy: always}}")
    for k, port in enumerate(web):
        argv = [PY, "-m", "http.server", "--bind", "127.0.0.1", str(port)]
        lines.append(f"  web{k}: {{command: {q(argv)}, cwd: {q(str(run_dir))}, restart: {{policy: always}}, "
                     f"health: {{url: 'http://127.0.0.1:{port}/', every: 2s, grace: 10s}}}}")
    for k in range(CRASHING):
        argv = [PY, "-S", "-c", "raise SystemExit(1)"]
        lines.append(f"  crash{k}: {{command: {q(argv)}, "
                     "restart: {policy: always, attempts: unlimited, cooldown: 1s}, start_period: 0s}")
    (run_dir / "supervisor.yaml").write_text("\n".join(lines) + "\n")
    return api


class Dashboard(threading.Thread):
    """GET /api/status and /api/metrics every `every_s`, as a dashboard or Prometheus would."""

    def __init__(self, port: int, token: str, every_s: float) -> None:
        super().__init__(daemon=True)
        self.port, self.token, self.every_s = port, token, every_s
        self.stop = threading.Event()
        self.reads = 0
        self.errors = 0
        self.last_error = ""
        self.last_status: list[dict[str, object]] = []

    def run(self) -> None:
        headers = {"Authorization": f"Bearer {self.token}"}
        while not self.stop.wait(self.every_s):
            # A connection per round: uvicorn closes a keep-alive connection idle for 5 s.
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
            try:
                for path in ("/api/status", "/api/metrics"):
                    conn.request("GET", path, headers=headers)
                    body = conn.getresponse().read()
                    if path == "/api/status":
                        self.last_status = json.loads(body)["services"]
                self.reads += 1
            except (OSError, http.client.HTTPException) as exc:
                self.errors += 1
                self.last_error = repr(exc)
            finally:
                conn.close()


def wait_api(port: int, proc: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the supervisor exited with {proc.returncode}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            conn.request("GET", "/api/health")
            conn.getresponse().read()
            conn.close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit("the API did not answer")


def heap_rss_mib(pid: int) -> tuple[float, float]:
    """(RSS of the brk heap, glibc's main malloc arena; RSS of the anonymous mappings: pymalloc's 1 MiB
    arenas, large mallocs, the other threads' malloc arenas and stacks), from /proc/PID/smaps."""
    heap = anon = 0
    path = ""
    with open(f"/proc/{pid}/smaps") as f:
        for line in f:
            head = line.split(maxsplit=6)
            if "-" in head[0] and len(head) >= 5 and ":" in head[3]:  # a mapping's first line
                path = head[5].strip() if len(head) > 5 else ""
            elif head[0] == "Rss:":
                kib = int(head[1])
                if path == "[heap]":
                    heap += kib
                elif not path:
                    anon += kib
    return heap / 1024, anon / 1024


def slope_mib_per_min(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of (seconds, MiB) points, in MiB per minute."""
    if len(points) < 2:
        return 0.0
    mt = statistics.fmean(t for t, _ in points)
    mv = statistics.fmean(v for _, v in points)
    num = sum((t - mt) * (v - mv) for t, v in points)
    den = sum((t - mt) ** 2 for t, _ in points)
    return num / den * 60 if den else 0.0


def soak(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="rss-soak-") as t:
        run_dir = Path(t)
        port = write_config(run_dir)
        env = {**os.environ, **dict(kv.split("=", 1) for kv in args.env)}
        snaps = run_dir / "snaps"
        if args.tracemalloc or args.trim_every:
            snaps.mkdir()
            argv = [PY, __file__, "_serve", str(run_dir / "supervisor.yaml"), str(snaps),
                    "1" if args.tracemalloc else "0", str(args.trim_every)]
        else:
            argv = [PY, "-m", "orchestrator", "run", "-c", str(run_dir / "supervisor.yaml")]
        proc = subprocess.Popen(argv, cwd=run_dir, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                start_new_session=True)
        try:
            wait_api(port, proc)
            token = (run_dir / "state" / "api-token").read_text().strip()
            dash = Dashboard(port, token, args.scrape_every)
            dash.start()
            sup = psutil.Process(proc.pid)
            t0 = time.monotonic()
            rows: list[tuple[float, float, float, int, int]] = []
            print(f"{'min':>5} {'RSS MiB':>8} {'USS MiB':>8} {'heap':>6} {'anon':>6} {'threads':>7} {'fds':>5}",
                  flush=True)
            end = t0 + args.minutes * 60
            next_at = t0
            while True:
                now = time.monotonic()
                if proc.poll() is not None:
                    raise SystemExit(f"the supervisor exited with {proc.returncode}")
                full = sup.memory_full_info()
                row = (now - t0, full.rss / 2**20, full.uss / 2**20, sup.num_threads(), sup.num_fds())
                rows.append(row)
                heap, anon = heap_rss_mib(proc.pid)
                print(f"{row[0] / 60:5.1f} {row[1]:8.1f} {row[2]:8.1f} {heap:6.1f} {anon:6.1f} {row[3]:7d} {row[4]:5d}",
                      flush=True)
                if now >= end:
                    break
                next_at += args.every
                time.sleep(max(0.0, min(next_at, end) - time.monotonic()))
            dash.stop.set()
            dash.join(15)
            restarts = sum(int(s["restarts"]) for s in dash.last_status  # type: ignore[call-overload]
                           if str(s["name"]).startswith("crash"))
            healthy = sum(s["health"] == "healthy" for s in dash.last_status if str(s["name"]).startswith("web"))
            if args.tracemalloc or args.trim_every:
                (snaps / "trim").touch()
                wait_for_file(snaps / "trimmed.json", 30)
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        rss = [(r[0], r[1]) for r in rows]
        last5 = [r for r in rows if r[0] >= rows[-1][0] - 300]
        peak = max(rss, key=lambda p: p[1])
        uss_slope = slope_mib_per_min([(r[0], r[2]) for r in last5])
        print(f"\nRSS start {rss[0][1]:.1f} MiB, peak {peak[1]:.1f} MiB at {peak[0] / 60:.1f} min, "
              f"end {rss[-1][1]:.1f} MiB; slope of the last 5 min {slope_mib_per_min(rss[-len(last5):]):+.3f} "
              f"MiB/min (USS {uss_slope:+.3f}); threads {min(r[3] for r in rows)}-{max(r[3] for r in rows)}, "
              f"fds {min(r[4] for r in rows)}-{max(r[4] for r in rows)}")
        errors = f" ({dash.errors} errors, the last {dash.last_error})" if dash.errors else ""
        print(f"dashboard reads {dash.reads}{errors}; crash-loop restarts {restarts}; "
              f"probed services healthy at the end {healthy}/{PROBED}")
        if args.tracemalloc:
            report_tracemalloc(snaps)
        if args.tracemalloc or args.trim_every:
            trimmed = json.loads((snaps / "trimmed.json").read_text())
            print(f"malloc_trim(0) at the end: RSS {trimmed['before'] / 2**20:.1f} -> "
                  f"{trimmed['after'] / 2**20:.1f} MiB")


def wait_for_file(path: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if time.monotonic() > deadline:
            raise SystemExit(f"no {path.name} after {timeout} s")
        time.sleep(0.1)


def report_tracemalloc(snaps: Path) -> None:
    files = sorted(snaps.glob("snap-*.pickle"))
    if len(files) < 2:
        print("fewer than 2 tracemalloc snapshots: run longer")
        return
    first, last = (tracemalloc.Snapshot.load(str(f)) for f in (files[0], files[-1]))
    size = [sum(s.size for s in tracemalloc.Snapshot.load(str(f)).statistics("filename")) / 2**20 for f in files]
    print("\ntraced Python memory per minute (MiB): " + " ".join(f"{s:.1f}" for s in size))
    for key in ("filename", "lineno"):
        print(f"\nwhat grew from {files[0].stem} to {files[-1].stem}, by {key} (top 12):")
        for stat in last.compare_to(first, key)[:12]:
            print(f"  {stat.size_diff / 1024:+9.1f} KiB {stat.count_diff:+7d} blocks  {stat.traceback}")


def serve(config: str, snaps: str, traced: bool, trim_every: float) -> None:
    """The supervisor in this process; with `traced`, tracemalloc and a snapshot every minute, and
    malloc_trim(0) on request at the end; with `trim_every`, malloc_trim(0) that often."""
    if traced:
        tracemalloc.start(1)
    out = Path(snaps)
    libc = ctypes.CDLL("libc.so.6")

    def dumper() -> None:
        me = psutil.Process()
        n = 0
        last_trim = time.monotonic()
        while True:
            for _ in range(600):
                time.sleep(0.1)
                if trim_every and time.monotonic() - last_trim >= trim_every:
                    libc.malloc_trim(0)
                    last_trim = time.monotonic()
                if (out / "trim").exists():
                    if traced:
                        tracemalloc.take_snapshot().dump(str(out / f"snap-{n:03d}.pickle"))
                    before = me.memory_info().rss
                    libc.malloc_trim(0)
                    (out / "trimmed.json").write_text(json.dumps({"before": before, "after": me.memory_info().rss}))
                    return
            if traced:
                tracemalloc.take_snapshot().dump(str(out / f"snap-{n:03d}.pickle"))
            n += 1

    threading.Thread(target=dumper, daemon=True).start()
    from orchestrator.cli.main import main as cli_main

    raise SystemExit(cli_main(["run", "-c", config]))


def main() -> None:
    if sys.argv[1:2] == ["_serve"]:
        serve(sys.argv[2], sys.argv[3], sys.argv[4] == "1", float(sys.argv[5]))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--every", type=float, default=10.0, help="seconds between samples")
    parser.add_argument("--scrape-every", type=float, default=5.0, help="seconds between dashboard reads")
    parser.add_argument("--env", action="append", default=[], help="KEY=VALUE for the supervisor (MALLOC_ARENA_MAX=2)")
    parser.add_argument("--tracemalloc", action="store_true", help="diff tracemalloc snapshots; malloc_trim at the end")
    parser.add_argument("--trim-every", type=float, default=0.0,
                        help="seconds: the supervisor calls malloc_trim(0) this often (and once at the end)")
    soak(parser.parse_args())


if __name__ == "__main__":
    main()
