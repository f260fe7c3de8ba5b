"""Log throughput: does logging a fast child through our pipe + LogSink slow the child down?

A child writes N numbered 100-byte lines to stdout as fast as it can and records its own wall time in a
side file. Each mode runs `--runs` times (interleaved, median reported), with one and with two children
writing at once, and every output is scanned for lost, duplicated and split lines (must all be 0).

Modes: (a) stdout redirected to a file; `| cat > file` for reference; (b) piped into LogSink by the
in-process asyncio pump (10 MiB rotation): through anyio's process pipes (64 KiB), through the
supervisor's spawner (orchestrator.platform: 1 MiB pipes on Linux), the same with `coalesce_s=2 ms`,
and the same into a 1 MiB buffered file (no write per chunk: does the per-chunk write cost?); (c) the
child as a service of the real supervisor (`python -m orchestrator run -c FILE`).

Run: python bench/log_throughput.py [--lines 2000000] [--runs 3] [--kinds blocks,lines] [--out DIR]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import anyio

from orchestrator.config.spec import LogSpec
from orchestrator.logs.sink import LogSink, ReceiveStreamSource, pump
from orchestrator.platform import Platform
from orchestrator.platform import current as current_platform

__all__ = ["main"]

LINE = 100  # bytes per line, newline included
ROTATE = 10 * 1024 * 1024

# "blocks": builds 1000 lines and writes them at once (the fastest a child can go: the worst case for
# us). "lines": one write per line through the default buffered stdout, like print() in a service.
CHILD = r"""
import sys, time
tag, n, timefile, kind = sys.argv[1].encode(), int(sys.argv[2]), sys.argv[3], sys.argv[4]
fmt = tag + b" %09d " + b"." * 87 + b"\n"
out = sys.stdout.buffer
t0 = time.perf_counter()
if kind == "lines":
    for i in range(n):
        out.write(fmt % i)
else:
    for s in range(0, n, 1000):
        out.write(b"".join([fmt % i for i in range(s, min(n, s + 1000))]))
out.flush()
elapsed = time.perf_counter() - t0
with open(timefile, "w") as f:
    f.write(repr(elapsed))
"""


@dataclass
class Job:
    """One child of one run: how to start it and where its output and timing land."""

    work: Path
    index: int
    kind: str
    lines: int

    @property
    def tag(self) -> str:
        return "AB"[self.index]

    @property
    def log(self) -> Path:
        return self.work / f"c{self.index}-stdout.log"

    @property
    def timefile(self) -> Path:
        return self.work / f"c{self.index}.time"

    def command(self) -> list[str]:
        child = self.work.parent / "child.py"
        return [sys.executable, str(child), self.tag, str(self.lines), str(self.timefile), self.kind]

    def child_seconds(self) -> float:
        return float(self.timefile.read_text())


@dataclass
class Outcome:
    child_s: float  # the slowest child's own wall time
    total_s: float  # from spawn until every byte is in the files
    cpu_s: float  # CPU of everything involved: children, copier, pump (0 where unknown: Windows)
    lost: int
    duplicated: int
    split: int  # lines cut across two files, or malformed


@dataclass
class Row:
    mode: str
    kind: str
    children: int
    outcomes: list[Outcome] = field(default_factory=list)
    note: str = ""


Runner = Callable[[list[Job]], float]  # runs the jobs to completion; returns the end-to-end seconds


# -- modes ------------------------------------------------------------------------------------------


def run_file(jobs: list[Job]) -> float:
    t0 = time.perf_counter()
    procs = []
    for job in jobs:
        with job.log.open("wb") as out:
            procs.append(subprocess.Popen(job.command(), stdout=out))
    _wait_all(procs)
    return time.perf_counter() - t0


def run_cat(jobs: list[Job]) -> float:
    cat = shutil.which("cat")
    if cat is None:
        raise Skip("no `cat` on this machine")
    t0 = time.perf_counter()
    procs = []
    for job in jobs:
        child = subprocess.Popen(job.command(), stdout=subprocess.PIPE)
        with job.log.open("wb") as out:
            procs += [child, subprocess.Popen([cat], stdin=child.stdout, stdout=out)]
        assert child.stdout is not None
        child.stdout.close()  # cat holds the read end now
    _wait_all(procs)
    return time.perf_counter() - t0


def _wait_all(procs: list[subprocess.Popen[bytes]]) -> None:
    for proc in procs:
        if proc.wait(timeout=600) != 0:
            raise RuntimeError(f"{proc.args!r} exited with {proc.returncode}")


def _backups(lines: int) -> int:
    return lines * LINE // ROTATE + 2  # enough to keep everything, for the loss check


def _buffered_opener(path: Path) -> BinaryIO:
    path.parent.mkdir(parents=True, exist_ok=True)
    return open(path, "ab", buffering=1 << 20)


def run_pump(*, spawner: bool, buffered: bool = False, coalesce_s: float = 0.0) -> Runner:
    """(b): LogSink fed by the pump, in this process.

    spawner=True starts the child the way the supervisor does (orchestrator.platform: on Linux a
    1 MiB pipe read with large non-blocking reads); False uses anyio's own pipes (64 KiB on Linux).
    """

    async def one(job: Job) -> None:
        spec = LogSpec(dir=job.work, max_size=ROTATE, backups=_backups(job.lines))
        sink = LogSink(job.log, spec, opener=_buffered_opener) if buffered else LogSink(job.log, spec)
        try:
            if spawner:
                child = await _platform().spawn(job.command(), cwd=None, env=dict(os.environ))
                await pump(child.stdout, sink, coalesce_s=coalesce_s)
                returncode = await child.wait()
            else:
                async with await anyio.open_process(job.command(), stderr=None) as proc:
                    assert proc.stdout is not None
                    await pump(ReceiveStreamSource(proc.stdout), sink, coalesce_s=coalesce_s)
                    returncode = await proc.wait()
            if returncode != 0:
                raise RuntimeError(f"child exited with {returncode}")
        finally:
            sink.close()

    async def all_jobs(jobs: list[Job]) -> None:
        async with anyio.create_task_group() as tg:
            for job in jobs:
                tg.start_soon(one, job)

    def runner(jobs: list[Job]) -> float:
        t0 = time.perf_counter()
        anyio.run(all_jobs, jobs, backend="asyncio")
        return time.perf_counter() - t0

    return runner


def _platform() -> Platform:
    try:
        return current_platform()
    except ImportError as exc:  # no platform layer for this OS yet
        raise Skip(str(exc)) from exc


class Skip(Exception):
    """A mode that cannot run here; the reason goes into the table."""


def run_supervised(jobs: list[Job]) -> float:
    """(c): the children as services of the real supervisor (`orchestrator run -c FILE`)."""
    if importlib.util.find_spec("orchestrator.cli.main") is None:
        raise Skip("orchestrator.cli.main is not importable yet")
    work = jobs[0].work
    config = work / "bench.yaml"
    config.write_text(_supervisor_yaml(jobs))
    t0 = time.perf_counter()
    flags = getattr(subprocess, "CREATE_NEW_PROCESS_GROUP", 0)  # Windows: lets us send CTRL_BREAK
    cmd = [sys.executable, "-m", "orchestrator", "run", "-c", str(config)]
    with (work / "supervisor.out").open("wb") as out:
        sup = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, creationflags=flags)
    try:
        deadline = time.monotonic() + 600
        while not all(_supervised_done(job) for job in jobs):
            if sup.poll() is not None or time.monotonic() > deadline:
                tail = (work / "supervisor.out").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"supervisor exited or timed out before the children were done:\n{tail}")
            time.sleep(0.01)
        return time.perf_counter() - t0
    finally:
        sup.send_signal(getattr(signal, "CTRL_BREAK_EVENT", signal.SIGTERM))
        try:
            sup.wait(timeout=30)
        except subprocess.TimeoutExpired:
            sup.kill()
            sup.wait()


def _supervised_done(job: Job) -> bool:
    # The child is done when its time file is there; the supervisor is done when every byte is logged.
    if not job.timefile.exists():
        return False
    try:
        logged = sum(p.stat().st_size for p in files_oldest_first(job.log))
    except FileNotFoundError:  # rotated while we looked
        return False
    return logged >= job.lines * LINE


def _supervisor_yaml(jobs: list[Job]) -> str:
    # docs/config.md; port 0 so a running orchestrator is not disturbed.
    work = jobs[0].work
    lines = [
        "api: {listen: '127.0.0.1:0'}",
        f"state_dir: {json.dumps(str(work / 'state'))}",
        f"logs: {{dir: {json.dumps(str(work))}, max_size: {ROTATE}, backups: {_backups(jobs[0].lines)}}}",
        "services:",
    ]
    for job in jobs:
        lines += [
            f"  c{job.index}:",
            f"    command: {json.dumps(job.command())}",
            "    restart: {policy: never}",
            "    start_period: 0.1s",
        ]
    return "\n".join(lines) + "\n"


# -- checking ---------------------------------------------------------------------------------------


def files_oldest_first(log: Path) -> list[Path]:
    backups = sorted(
        (int(p.name.rsplit(".", 1)[1]), p) for p in log.parent.glob(log.name + ".*") if p.suffix[1:].isdigit()
    )
    return [p for _, p in reversed(backups)] + ([log] if log.exists() else [])


def expected_blocks(tag: str, lines: int, per_block: int = 10_000) -> Iterator[bytes]:
    fmt = tag.encode() + b" %09d " + b"." * (LINE - 13) + b"\n"
    for start in range(0, lines, per_block):
        yield b"".join([fmt % i for i in range(start, min(lines, start + per_block))])


def check(job: Job) -> tuple[int, int, int]:
    """(lost, duplicated, split) for one child's output, over all its rotated files."""
    files = files_oldest_first(job.log)
    split = sum(1 for f in files[:-1] if not _ends_with_newline(f))
    if _equal_stream(files, expected_blocks(job.tag, job.lines)):
        return 0, 0, split
    lost, duplicated, malformed = _count_damage(files, job)
    return lost, duplicated, split + malformed


def _ends_with_newline(path: Path) -> bool:
    with path.open("rb") as f:
        if f.seek(0, 2) == 0:
            return True
        f.seek(-1, 2)
        return f.read(1) == b"\n"


def _equal_stream(files: list[Path], expected: Iterator[bytes]) -> bool:
    # Compare the concatenation with the expected bytes in blocks, never holding a whole file.
    handles = [f.open("rb") for f in files]
    try:
        pending = b""
        for block in expected:
            while len(pending) < len(block) and handles:
                got = handles[0].read(len(block) - len(pending))
                if not got:
                    handles.pop(0).close()
                pending += got
            if pending[: len(block)] != block:
                return False
            pending = pending[len(block) :]
        return not pending and all(not h.read(1) for h in handles)
    finally:
        for h in handles:
            h.close()


def _count_damage(files: list[Path], job: Job) -> tuple[int, int, int]:
    """The slow path, only when the fast comparison failed: count by line number."""
    seen = [0] * job.lines
    malformed = 0
    data = b"".join(f.read_bytes() for f in files)
    for line in data.split(b"\n")[:-1] if data.endswith(b"\n") else data.split(b"\n"):
        number = line[2:11]
        if len(line) != LINE - 1 or line[:2] != job.tag.encode() + b" " or not number.isdigit():
            malformed += 1
            continue
        seen[int(number)] += 1
    lost = sum(1 for c in seen if c == 0)
    duplicated = sum(c - 1 for c in seen if c > 1)
    return lost, duplicated, malformed


# -- driving ----------------------------------------------------------------------------------------


def measure(row: Row, runner: Runner, work: Path, lines: int) -> None:
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    jobs = [Job(work, i, row.kind, lines) for i in range(row.children)]
    cpu0 = _cpu_seconds()
    try:
        total = runner(jobs)
    except Skip as exc:
        row.note = str(exc)
        return
    cpu = _cpu_seconds() - cpu0
    damage = [check(job) for job in jobs]
    lost, dup, split = (sum(d[i] for d in damage) for i in range(3))
    row.outcomes.append(Outcome(max(j.child_seconds() for j in jobs), total, cpu, lost, dup, split))
    shutil.rmtree(work, ignore_errors=True)


def _cpu_seconds() -> float:
    # Ours (the in-process pump) plus every waited-for child and, through them, their children.
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def modes() -> dict[str, Runner]:
    return {
        "(a) file": run_file,
        "| cat > file": run_cat,
        "(b) pump, anyio pipe (64 KiB)": run_pump(spawner=False),
        "(b) pump, spawner's 1 MiB pipe": run_pump(spawner=True),
        "(b) spawner, coalesce 2 ms": run_pump(spawner=True, coalesce_s=0.002),
        "(b) spawner, buffered file": run_pump(spawner=True, buffered=True),
        "(c) supervisor": run_supervised,
    }


def print_table(rows: list[Row]) -> None:
    base = {(r.kind, r.children): _median(r, "child_s") for r in rows if r.mode == "(a) file"}
    head = f"{'child':6} {'n':>2}  {'mode':31} {'child s':>8} {'ratio':>6} {'e2e s':>7} {'cpu s':>6}"
    head += f" {'lost':>5} {'dup':>4} {'split':>5}"
    print(head)
    print("-" * len(head))
    for r in rows:
        if not r.outcomes:
            print(f"{r.kind:6} {r.children:>2}  {r.mode:31} skipped: {r.note}")
            continue
        child, ref = _median(r, "child_s"), base.get((r.kind, r.children))
        ratio = f"{child / ref:.2f}" if ref else "-"
        lost, dup, split = (sum(getattr(o, k) for o in r.outcomes) for k in ("lost", "duplicated", "split"))
        print(
            f"{r.kind:6} {r.children:>2}  {r.mode:31} {child:8.3f} {ratio:>6} "
            f"{_median(r, 'total_s'):7.3f} {_median(r, 'cpu_s'):6.2f} {lost:5} {dup:4} {split:5}"
        )


def _median(row: Row, attr: str) -> float:
    return statistics.median(float(getattr(o, attr)) for o in row.outcomes)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lines", type=int, default=2_000_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--kinds", default="blocks,lines", help="child kinds, comma-separated: blocks,lines")
    ap.add_argument("--modes", default="", help="only modes whose name contains one of these (comma-sep.)")
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "out" / "log_throughput")
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "child.py").write_text(CHILD)
    wanted = [m for m in args.modes.split(",") if m]
    runners = {k: v for k, v in modes().items() if not wanted or any(w in k for w in wanted)}
    rows = [Row(m, k, n) for k in args.kinds.split(",") for n in (1, 2) for m in runners]
    print(f"{args.lines} lines x {LINE} bytes per child, {args.runs} runs, output in {args.out}")
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    where = f"python {sys.version.split()[0]} on {sys.platform}, {os.cpu_count()} CPUs"
    print(f"{where}, load average {load:.2f}", flush=True)
    for run in range(args.runs):
        for row in rows:
            if not row.note:
                measure(row, runners[row.mode], args.out / "run", args.lines)
        print(f"run {run + 1}/{args.runs} done", flush=True)
    print_table(rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
