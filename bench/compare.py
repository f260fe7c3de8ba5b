"""orchestrator, supervisord and PM2 side by side, each figure in the same run: `make bench-compare`.

The rule: a figure is only a ratio or a difference against a peer or a floor measured minutes apart
on the same machine, never an absolute from another day (the dev machine is shared and its load
moves absolute times by ±30%). Every figure is the median of `--rounds` (3) rounds, with min-max;
the peers of a round run one after the other, never at once.

Same children, same method for every manager (bench/compare_child.py): a child stamps its own start
time; "all running" is when the processes exist in /proc, not when the manager says so; CLI figures
time the whole CLI process, interpreter start included. Manager CPU and RSS are read with psutil
from the manager's own process (PM2: its daemon), children excluded.

    bench/.peers/venv/bin/python bench/compare.py [--rounds 3] [--lines 2000000] [--no-write]

It writes the table between the `compare:` markers of docs/benchmarks.md, with the date, machine and
load average. About 8 minutes on the 2-core dev machine (`--only hundred --rounds 3`: 110 s before the
ignite rows, 172 s with them, load 12 to 15).

The `hundred` group also starts our 100 by `POST /api/system/ignite` with the API up, alone and with a
`StatusReader` reading `GET /api/status` every 10 ms (`--read-every`), and reports the one ÷ the other
in the same round: a status read during a start must not slow it (issue 16). With the reader during
the launch instead, there was nothing to see: the API listens once the spawns are under way, and on a
loaded machine the reader got its first answer after the last spawn in 3 rounds out of 3.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import http.client
import itertools
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
from peers import PY, Orchestrator, Peer, Pm2, Prog, Supervisord

CHILD = str(Path(__file__).resolve().parent / "compare_child.py")
DOC = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"
BEGIN, END = "<!-- compare:begin -->", "<!-- compare:end -->"
LINE_BYTES = 100
SLEEP = shutil.which("sleep") or "/bin/sleep"  # absolute: PM2 resolves it, and /proc must match

Cell = float | str  # a figure, or a note such as "no restart"


def child(*args: object) -> tuple[str, ...]:
    return (PY, "-S", CHILD, *(str(a) for a in args))


def wait_for(pred: Callable[[], bool], timeout: float, step: float = 0.002) -> float:
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise TimeoutError
        time.sleep(step)
    return time.time()


def stamp(path: Path) -> float:
    return float(path.read_text().split()[0])


def check_lines(files: list[Path], lines: int) -> tuple[int, int, int]:
    """lost, duplicated, split (a line across two files or damaged) over the files, oldest first."""
    seen: set[int] = set()
    total = split = 0
    carry = b""
    for f in files:
        data = carry + f.read_bytes() if carry else f.read_bytes()
        carry = b""
        if data and not data.endswith(b"\n"):
            data, _, carry = data.rpartition(b"\n")
            split += 1
        for line in data.removesuffix(b"\n").split(b"\n") if data else []:
            if len(line) != LINE_BYTES - 1 or not line[:9].isdigit():
                split += 1
                continue
            seen.add(int(line[:9]))
            total += 1
    if carry:
        split += 1
    return lines - len(seen), total - len(seen), split


# -- the figures: each returns {column: value} for one round ------------------------------------------


def log_throughput(peers: list[Peer], tmp: Path, n: int, lines: int) -> dict[str, dict[str, Cell]]:
    """Time from the first child's own start to all bytes on disk, ÷ the same children `> file`."""
    out: dict[str, dict[str, Cell]] = {"ratio": {}, "cpu": {}, "integrity": {}}
    floor_dir = tmp / "floor"
    floor_dir.mkdir()
    outs = [(floor_dir / f"o{i}").open("wb") for i in range(n)]
    procs = [subprocess.Popen(child("writer", lines, floor_dir / f"s{i}"), stdout=f) for i, f in enumerate(outs)]
    for p, f in zip(procs, outs, strict=True):
        p.wait()
        f.close()
    end = time.time()
    floor = end - min(stamp(floor_dir / f"s{i}") for i in range(n))
    shutil.rmtree(floor_dir)
    out["ratio"]["floor"] = 1.0
    out["cpu"]["floor"] = 0.0
    want = lines * LINE_BYTES
    for peer in peers:
        d = tmp / peer.name
        d.mkdir()
        names = [f"w{i}" for i in range(n)]
        progs = [Prog(nm, child("writer", lines, d / f"s{nm}"), autostart=False) for nm in names]
        peer.launch(d, progs)
        try:
            mgr = peer.manager()
            cpu0 = sum(mgr.cpu_times()[:2])
            subprocess.Popen(peer.start_argv(names), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            end = wait_bytes(peer, names, want)
            cpu = sum(mgr.cpu_times()[:2]) - cpu0
            first = min(stamp(d / f"s{nm}") for nm in names)
            out["ratio"][peer.name] = (end - first) / floor
            out["cpu"][peer.name] = cpu
            lost = dup = split = 0
            for nm in names:
                a, b, c = check_lines(peer.log_files(nm), lines)
                lost, dup, split = lost + a, dup + b, split + c
            out["integrity"][peer.name] = f"{lost}/{dup}/{split}"
        finally:
            peer.shutdown()
            shutil.rmtree(d, ignore_errors=True)
    return out


def wait_bytes(peer: Peer, names: list[str], want: int) -> float:
    """When every byte is on disk; a peer that loses lines ends when its files stop growing (2 s)."""
    last, last_t = -1, time.time()
    while True:
        try:
            sizes = [sum(f.stat().st_size for f in peer.log_files(nm)) for nm in names]
        except FileNotFoundError:  # rotated between the listing and the stat
            continue
        now = time.time()
        if all(s >= want for s in sizes):
            return now
        if sum(sizes) != last or not last:  # the stall clock runs from the first byte on
            last, last_t = sum(sizes), now
        elif now - last_t > 2.0:
            return last_t
        time.sleep(0.002)


def _more_than(stamps: Path, n: int) -> bool:
    return stamps.exists() and len(stamps.read_text().split()) > n


def bash_loop_ms(tmp: Path, n: int) -> float:
    stamps = tmp / "loop-stamps"
    argv = " ".join(f"'{a}'" for a in child("blink", stamps))
    subprocess.run(["bash", "-c", f"for i in $(seq {n + 1}); do {argv}; done"], check=True)
    xs = [float(x) for x in stamps.read_text().split()]
    stamps.unlink()
    return statistics.median(b - a for a, b in itertools.pairwise(xs)) * 1000


def restart(peers: list[Peer], tmp: Path, n: int) -> dict[str, Cell]:
    """Median interval between a crash-looping child's own starts, minus a bash loop's (ms).

    The floor is the mean of a bash loop just before and just after each manager: the shared
    machine's load moves from one minute to the next. (A bash loop at the same time as the manager
    was tried: the manager's own CPU then slows the floor, so a busy manager looks faster.)"""
    res: dict[str, Cell] = {"floor": 0.0}
    for peer in peers:
        d = tmp / peer.name
        d.mkdir()
        stamps = d / "stamps"
        before = bash_loop_ms(tmp, n)
        peer.launch(d, [Prog("blink", child("blink", stamps), restart=True)])
        try:
            with contextlib.suppress(TimeoutError):  # supervisord ticks once a second: 8 s show it
                wait_for(partial(_more_than, stamps, n), 8.0, 0.01)
            xs = [float(x) for x in stamps.read_text().split()][: n + 1] if stamps.exists() else []
        finally:
            peer.shutdown()
            shutil.rmtree(d, ignore_errors=True)
        floor = (before + bash_loop_ms(tmp, n)) / 2
        gaps = [b - a for a, b in itertools.pairwise(xs)]
        res[peer.name] = statistics.median(gaps) * 1000 - floor if gaps else "no restart"
    return res


def count_procs(argv: tuple[str, ...]) -> int:
    want = "\0".join(argv).encode() + b"\0"
    n = 0
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    n += f.read() == want
            except OSError:
                pass
    return n


READ_EVERY_S = 0.010


class StatusReader(threading.Thread):
    """`GET /api/status` every 10 ms on one keep-alive connection (back to back when an answer takes
    longer), from the launch on; keeps the latency of each answer until `stop` is set.

    Every 10 ms rather than back to back: 100 reads a second is far more than a dashboard (one every
    few seconds) or `watch orchestrator status`, so a start that does not slow under it does not slow
    under them, while a reader that never pauses would measure our HTTP parsing as much as the status
    route. One connection: a dashboard keeps one."""

    def __init__(self, peer: Orchestrator, run_dir: Path) -> None:
        super().__init__(daemon=True)
        self.port, self.token_file = peer.port, run_dir / "state" / "api-token"
        self.stop = threading.Event()
        self.every_s = READ_EVERY_S  # read when started: `--read-every` sets it
        self.latencies_ms: list[float] = []
        self.start()

    def run(self) -> None:
        conn: http.client.HTTPConnection | None = None
        token = ""
        while not self.stop.is_set():
            t0 = time.monotonic()
            try:
                if conn is None:
                    token = self.token_file.read_text().strip()  # written before the API listens
                    conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
                conn.request("GET", "/api/status", headers={"Authorization": f"Bearer {token}"})
                resp = conn.getresponse()
                resp.read()
                if resp.status == 200:
                    self.latencies_ms.append((time.monotonic() - t0) * 1000)
            except (OSError, http.client.HTTPException):  # not listening yet
                if conn is not None:
                    conn.close()
                conn = None
            self.stop.wait(max(0.0, t0 + self.every_s - time.monotonic()))
        if conn is not None:
            conn.close()


def start_100(peer: Peer, d: Path, argv: tuple[str, ...]) -> float | str:
    """Launch `peer` with 100 `argv` children: seconds until 100 exist in /proc (or what was seen after
    60 s). The peer is left up."""
    progs = [Prog(f"s{k:03d}", argv, stop_timeout_s=5) for k in range(100)]
    t0 = time.time()
    peer.launch(d, progs, wait=False)
    try:
        end = wait_for(lambda: count_procs(argv) >= 100, 60, 0.005)
    except TimeoutError:
        return f"{count_procs(argv)} after 60 s"
    return end - t0


def ignite_100(peer: Orchestrator, d: Path, argv: tuple[str, ...], *, read: bool) -> tuple[float | str, list[float]]:
    """With the API up and 100 services stopped (`autostart: false`): `POST /api/system/ignite` → 100
    processes exist, and the latencies of a StatusReader polling meanwhile (`read`; it has had its
    first answer before the ignite). The launch itself cannot show it: the API listens once the
    first spawns are under way, and on a loaded machine after the last."""
    peer.launch(d, [Prog(f"s{k:03d}", argv, autostart=False, stop_timeout_s=5) for k in range(100)])
    reader = StatusReader(peer, d) if read else None
    if reader is not None:
        try:
            wait_for(lambda: bool(reader.latencies_ms), 30)
        except TimeoutError:
            reader.stop.set()
            return "no status answer in 30 s", []
        del reader.latencies_ms[:]
    conn = http.client.HTTPConnection("127.0.0.1", peer.port, timeout=60)
    headers = {"Authorization": f"Bearer {peer.token()}"}
    t0 = time.time()
    conn.request("POST", "/api/system/ignite", headers=headers)  # answered once all are spawned: read later
    try:
        end = wait_for(lambda: count_procs(argv) >= 100, 60, 0.005)
    except TimeoutError:
        return f"{count_procs(argv)} after 60 s", []
    finally:
        if reader is not None:
            reader.stop.set()
            reader.join(15)
        with contextlib.suppress(OSError, http.client.HTTPException):
            conn.getresponse().read()
        conn.close()
    return end - t0, reader.latencies_ms if reader is not None else []


def hundred(peers: list[Peer], tmp: Path, rnd: int) -> dict[str, dict[str, Cell]]:
    """100 `sleep` children: launch → 100 exist; then status from the CLI, and our raw HTTP status.

    For us also a start of the 100 by `POST /api/system/ignite` with the API up, once alone and once
    with a StatusReader polling `GET /api/status` throughout (which goes first alternates by round):
    the one ÷ the other, and the reader's latencies during it."""
    out: dict[str, dict[str, Cell]] = {"start": {}, "cli": {}, "http": {}, "reader": {}, "p50": {}, "max": {},
                                       "n": {}, "ignite": {}}
    t0 = time.monotonic()
    subprocess.run([PY, "-c", "pass"], check=True)
    out["cli"]["floor"] = time.monotonic() - t0
    for i, peer in enumerate(peers):
        argv = (SLEEP, f"{86400 + rnd * 10 + i}")
        d = tmp / peer.name
        d.mkdir()
        try:
            out["start"][peer.name] = took = start_100(peer, d, argv)
            if isinstance(took, float):
                peer.wait_ready()
                time.sleep(0.5)
                t0 = time.monotonic()
                subprocess.run(peer.status_argv(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
                out["cli"][peer.name] = time.monotonic() - t0
                if isinstance(peer, Orchestrator):
                    out["http"][peer.name] = http_status_ms(peer)
        finally:
            peer.shutdown()
            shutil.rmtree(d, ignore_errors=True)
        if not isinstance(peer, Orchestrator):
            continue
        ignited: dict[bool, float | str] = {}
        for read in [False, True] if rnd % 2 == 0 else [True, False]:
            d = tmp / f"{peer.name}-ignite{'-read' if read else ''}"
            d.mkdir()
            try:
                ignited[read], lat = ignite_100(peer, d, argv, read=read)
            finally:
                peer.shutdown()
                shutil.rmtree(d, ignore_errors=True)
            if read:
                out["n"][peer.name] = float(len(lat))
                out["p50"][peer.name] = statistics.median(lat) if lat else "no read during the start"
                out["max"][peer.name] = max(lat) if lat else "no read during the start"
        plain, busy = ignited[False], ignited[True]
        out["ignite"][peer.name] = plain
        if isinstance(plain, float) and isinstance(busy, float):
            out["reader"][peer.name] = busy / plain
        else:  # what went wrong, from whichever run it was
            out["reader"][peer.name] = busy if isinstance(plain, float) else plain
    return out


def http_status_ms(peer: Orchestrator) -> float:
    """Median of 20 `GET /api/status` on one keep-alive connection, in ms."""
    conn = http.client.HTTPConnection("127.0.0.1", peer.port)
    headers = {"Authorization": f"Bearer {peer.token()}"}
    times = []
    for _ in range(20):
        t0 = time.monotonic()
        conn.request("GET", "/api/status", headers=headers)
        conn.getresponse().read()
        times.append((time.monotonic() - t0) * 1000)
    conn.close()
    return statistics.median(times)


def stop_idle_orphans(peers: list[Peer], tmp: Path) -> dict[str, dict[str, Cell]]:
    """Idle RSS with 2 children; stop of a SIGTERM-ignorer from the CLI (2 s); kill -9 → orphans."""
    out: dict[str, dict[str, Cell]] = {"rss": {}, "stop": {"floor": 2.0}, "orphans": {"floor": "0"}}
    for peer in peers:
        d = tmp / peer.name
        d.mkdir()
        progs = [Prog("idle", (SLEEP, "86399")), Prog("stubborn", child("stubborn", d / "st"), stop_timeout_s=2)]
        peer.launch(d, progs)
        try:
            wait_for(lambda: (d / "st").exists(), 30)  # noqa: B023
            time.sleep(3)  # start-up work is over
            out["rss"][peer.name] = peer.manager().memory_info().rss / 2**20
            t0 = time.monotonic()
            subprocess.run(peer.stop_argv("stubborn"), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                           check=False)
            took = time.monotonic() - t0
            pid = int((d / "st.pid").read_text())
            # A CLI that returns before the child is gone has not stopped it yet: say so.
            alive = psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
            out["stop"][peer.name] = f"{took:.2f} child alive at return" if alive else took
        finally:
            peer.shutdown()
        progs = [Prog(f"o{k}", (SLEEP, "86398")) for k in range(6)]
        peer.launch(d, progs)
        try:
            wait_for(lambda: count_procs((SLEEP, "86398")) >= 6, 30)
            os.kill(peer.manager().pid, signal.SIGKILL)
            time.sleep(2)
            left = count_procs((SLEEP, "86398"))
            out["orphans"][peer.name] = f"{left}/6"
        finally:
            for p in psutil.process_iter(["cmdline"]):
                if p.info["cmdline"] == [SLEEP, "86398"]:
                    p.kill()
            peer.proc = None
            shutil.rmtree(d, ignore_errors=True)
    return out


def chatty(peers: list[Peer], tmp: Path, window_s: float) -> dict[str, Cell]:
    """Manager CPU-s per minute with 10 children writing 100 flushed lines of 90 B a second."""
    res: dict[str, Cell] = {"floor": 0.0}
    for peer in peers:
        d = tmp / peer.name
        d.mkdir()
        peer.launch(d, [Prog(f"c{k}", child("chatty", 3600)) for k in range(10)])
        try:
            time.sleep(2)
            mgr = peer.manager()
            cpu0 = sum(mgr.cpu_times()[:2])
            time.sleep(window_s)
            res[peer.name] = (sum(mgr.cpu_times()[:2]) - cpu0) * 60 / window_s
        finally:
            peer.shutdown()
            shutil.rmtree(d, ignore_errors=True)
    return res


# -- the table ---------------------------------------------------------------------------------------

ROWS = [  # key, what it is, unit format
    ("log1", "log throughput, 1 child, {mb} MB in 100 B lines, 10 MB rotation: child start → all bytes on "
             "disk, ÷ `> file`", "{:.2f}"),
    ("log1i", "  lines lost/duplicated/split, 1 child (all rounds)", "{}"),
    ("log2", "same, 2 children at once", "{:.2f}"),
    ("log2i", "  lines lost/duplicated/split, 2 children (all rounds)", "{}"),
    ("cpu1", "manager CPU for the 1-child run (s)", "{:.2f}"),
    ("restart", "restart of a child that exits at once, cooldown 0: median spawn interval minus a bash "
                "respawn loop's (ms)", "{:+.1f}"),
    ("start100", "100 children: launch of the manager → 100 processes exist (s)", "{:.2f}"),
    ("ignite100", "  100 children started by `POST /api/system/ignite`, the API up: request → 100 processes "
                  "exist (s)", "{:.2f}"),
    ("read100", "  the same with a client reading `GET /api/status` every {ms:g} ms meanwhile, ÷ without it "
                "(same round)", "{:.2f}"),
    ("read100n", "  that client's answers during the start", "{:.0f}"),
    ("read100p50", "  their latency, median (ms)", "{:.1f}"),
    ("read100max", "  their latency, max (ms)", "{:.1f}"),
    ("cli100", "status of 100 services from the CLI, the whole process (s); floor: `python -c pass`", "{:.2f}"),
    ("http100", "the same over raw HTTP, `GET /api/status`, keep-alive (ms)", "{:.1f}"),
    ("stop", "stop of a SIGTERM-ignoring child from the CLI, 2 s stop timeout (s)", "{:.2f}"),
    ("rss", "idle RSS of the manager, 2 children, 3 s after start (MiB)", "{:.1f}"),
    ("chatty", "manager CPU with 10 chatty children (100 flushed lines of 90 B/s each), CPU-s per minute",
     "{:.2f}"),
    ("orphans", "children alive 2 s after kill -9 of the manager", "{}"),
]
COLS = ["orchestrator", "supervisord", "PM2", "circus", "floor"]


def cell(values: list[Cell], fmt: str) -> str:
    nums = [v for v in values if isinstance(v, float | int)]
    if not values:
        return "\u2013"
    if len(nums) < len(values):
        return ", ".join(sorted({str(v) if not isinstance(v, float) else fmt.format(v) for v in values}))
    med = statistics.median(nums)
    if len(nums) == 1 or min(nums) == max(nums):
        return fmt.format(med)
    return f"{fmt.format(med)} ({fmt.format(min(nums))}\u2013{fmt.format(max(nums))})"


def render(results: dict[str, dict[str, list[Cell]]], missing: dict[str, str], mb: int, head: str) -> str:
    lines = [head, "", "| figure | " + " | ".join(COLS) + " |", "|---" * (len(COLS) + 1) + "|"]
    for key, what, fmt in ROWS:
        row = []
        for col in COLS:
            if col in missing:
                row.append("\u2013")
            elif key.endswith("i") or key == "orphans":
                vals = results.get(key, {}).get(col, [])
                row.append(" ".join(str(v) for v in vals) if vals else "\u2013")
            else:
                row.append(cell(results.get(key, {}).get(col, []), fmt))
        lines.append(f"| {what.format(mb=mb, ms=READ_EVERY_S * 1000)} | " + " | ".join(row) + " |")
    lines.append("")
    lines += [f"- {col}: `\u2013` because {why}" for col, why in missing.items()]
    return "\n".join(lines) + "\n"


def write_doc(table: str) -> None:
    text = DOC.read_text()
    if BEGIN in text:
        pre, _, rest = text.partition(BEGIN)
        _, _, post = rest.partition(END)
        DOC.write_text(f"{pre}{BEGIN}\n{table}{END}{post}")
    else:
        DOC.write_text(f"{text.rstrip()}\n\n{BEGIN}\n{table}{END}\n")


def main() -> None:
    global READ_EVERY_S
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--lines", type=int, default=2_000_000)
    parser.add_argument("--restarts", type=int, default=30)
    parser.add_argument("--chatty-window", type=float, default=10.0)
    parser.add_argument("--read-every", type=float, default=0.010,
                        help="seconds between the status reader's requests during the ignite of 100 (hundred)")
    parser.add_argument("--only", default="", help="comma-separated figure groups: log,restart,hundred,stop,chatty")
    parser.add_argument("--no-write", action="store_true", help="print the table, leave docs/benchmarks.md alone")
    args = parser.parse_args()
    READ_EVERY_S = args.read_every
    groups = set(args.only.split(",")) if args.only else {"log", "restart", "hundred", "stop", "chatty"}
    everyone: list[Peer] = [Orchestrator(), Supervisord(), Pm2()]
    missing = {p.name: why for p in everyone if (why := p.missing())}
    missing["circus"] = "optional, not run"
    peers = [p for p in everyone if p.name not in missing]
    results: dict[str, dict[str, list[Cell]]] = {}

    def add(key: str, vals: dict[str, Cell]) -> None:
        for col, v in vals.items():
            results.setdefault(key, {}).setdefault(col, []).append(v)
        print(f"  {key}: {vals}", flush=True)

    load0 = os.getloadavg()
    started = time.monotonic()
    for rnd in range(args.rounds):
        print(f"round {rnd + 1}/{args.rounds}", flush=True)
        with tempfile.TemporaryDirectory(dir=Path(__file__).resolve().parent / ".peers") as t:
            tmp = Path(t)
            if "log" in groups:
                for n, key in ((1, "log1"), (2, "log2")):
                    sub = tmp / f"log{n}"
                    sub.mkdir()
                    r = log_throughput(peers, sub, n, args.lines)
                    add(key, r["ratio"])
                    add(key + "i", r["integrity"])
                    if n == 1:
                        add("cpu1", r["cpu"])
            if "restart" in groups:
                add("restart", restart(peers, tmp, args.restarts))
            if "hundred" in groups:
                r = hundred(peers, tmp, rnd)
                add("start100", r["start"])
                add("cli100", r["cli"])
                add("http100", r["http"])
                add("ignite100", r["ignite"])
                add("read100", r["reader"])
                add("read100n", r["n"])
                add("read100p50", r["p50"])
                add("read100max", r["max"])
            if "stop" in groups:
                r = stop_idle_orphans(peers, tmp)
                add("stop", r["stop"])
                add("rss", r["rss"])
                add("orphans", r["orphans"])
            if "chatty" in groups:
                add("chatty", chatty(peers, tmp, args.chatty_window))
    load1 = os.getloadavg()
    mins = (time.monotonic() - started) / 60
    head = (f"Taken {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC by `make bench-compare` "
            f"({mins:.1f} min) on {platform.node()}: {os.cpu_count()} cores, "
            f"{psutil.virtual_memory().total / 2**30:.0f} GiB, {platform.system()} {platform.release()}, "
            f"Python {platform.python_version()}; load average {load0[0]:.1f} at the start, {load1[0]:.1f} at "
            f"the end{' (a loaded machine: other test suites were running)' if max(load0[0], load1[0]) > 1.5 else ''}."
            f" Medians of {args.rounds} rounds, min\u2013max in brackets.")
    table = render(results, missing, args.lines * LINE_BYTES // 10**6, head)
    print(table)
    if not args.no_write:
        write_doc(table)
        print(f"written to {DOC}")


if __name__ == "__main__":
    main()
