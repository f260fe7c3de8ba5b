"""The log pump's own CPU per logged byte, for each way of reading a pipe, side by side (issue 16).

Each run is a fresh process (the allocator's state must not carry over from one variant to the next)
that spawns N children through the supervisor's spawner (`orchestrator.platform`: 1 MiB pipes), pumps
their stdout into `LogSink`s rotating at 10 MB, and reports its own CPU (user and system, all its
threads; the children excluded), its minor page faults and the wall time, from just after the spawns
to the last byte written. The children are `bench/compare.py`'s: 2,000,000 numbered 100-byte lines,
1000 per write (200 MB). Every output is then checked line by line (lost / duplicated / split, all 0);
`reads` counts the reads that found data (the pump's wake-ups).
Variants, run interleaved, `--rounds` times each (medians, min-max):

- `read`: the pump before issue 16: `await source.read(1 MiB)` (a fresh bytes object per read),
  `anyio.wait_readable` when the pipe is empty, a checkpoint after each read.
- `readv`: the same coroutine, reading with `os.readv` into one reused buffer.
- `thread`: a thread per stream: blocking `os.readv` into a buffer of its own and the sink write in
  that thread (the GIL released while reading and writing). Not safe as is (listeners would run off
  the loop); measured to see what it would win.
- `callback`: today's pump: an event-loop reader callback, `os.readv` into one reused buffer, the sink
  write in the callback.
- `cat`: `child | cat > file`, cat's own CPU: the floor for a copy through user space.

    .venv/bin/python bench/pump_cpu.py [--children 1,2] [--rounds 5] [--variants read,callback,...]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import anyio

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from compare import check_lines  # noqa: E402

from orchestrator.config.spec import LogSpec  # noqa: E402
from orchestrator.logs.pump import CHUNK, pump  # noqa: E402
from orchestrator.logs.sink import Buffer, LogSink  # noqa: E402
from orchestrator.platform import current  # noqa: E402

CHILD = str(HERE / "compare_child.py")
VARIANTS = ("read", "readv", "thread", "callback", "cat")
ROTATE = 10 * 1024 * 1024


class CountingSink(LogSink):
    """Counts the sink writes: one per read that found data, the pump's wake-ups."""

    writes = 0

    def write_buffer(self, buf: Buffer, n: int) -> None:
        self.writes += 1
        super().write_buffer(buf, n)


class ReadOnly:
    """Hides the pipe's fd from the pump: it then awaits `read`, as before issue 16."""

    def __init__(self, source: object) -> None:
        self._source = source

    async def read(self, n: int) -> bytes:
        data: bytes = await self._source.read(n)  # type: ignore[attr-defined]
        return data


async def readv_coroutine(source: object, sink: LogSink) -> None:
    from mmap import mmap

    mm = mmap(-1, CHUNK)
    view = memoryview(mm)
    fd = source.fileno()  # type: ignore[attr-defined]
    while True:
        n = source.readinto(view)  # type: ignore[attr-defined]
        if n is None:
            await anyio.wait_readable(fd)
            continue
        if n == 0:
            source.close()  # type: ignore[attr-defined]
            return
        sink.write_buffer(mm, n)
        await anyio.lowlevel.checkpoint()


def thread_reader(fd: int, sink: LogSink) -> None:
    os.set_blocking(fd, True)
    buf = bytearray(CHUNK)
    while n := os.readv(fd, (buf,)):
        sink.write_buffer(buf, n)
    os.close(fd)


def one(variant: str, children: int, lines: int, work: Path) -> dict[str, object]:
    """One run in this process; returns its figures."""
    spec = LogSpec(dir=work, max_size=ROTATE, backups=lines * 100 // ROTATE + 2)
    sinks = [CountingSink(work / f"c{i}.log", spec) for i in range(children)]
    argv = [sys.executable, "-S", CHILD, "writer", str(lines), str(work / "stamp")]
    if variant == "cat":
        t0 = time.perf_counter()
        cat = shutil.which("cat") or "cat"
        procs, cats = [], []
        for sink in sinks:
            child = subprocess.Popen(argv, stdout=subprocess.PIPE)
            with sink.path.open("wb") as out:
                cats.append(subprocess.Popen([cat], stdin=child.stdout, stdout=out))
            assert child.stdout is not None
            child.stdout.close()
            procs.append(child)
        user = sys_ = 0.0
        for c in cats:
            _, _, ru = os.wait4(c.pid, 0)
            user, sys_ = user + ru.ru_utime, sys_ + ru.ru_stime
        for p in procs:
            p.wait()
        wall = time.perf_counter() - t0
        faults = 0
    else:
        platform = current()
        ru0 = resource.getrusage(resource.RUSAGE_SELF)  # from the spawns on: the pumps' work
        t0 = time.perf_counter()

        async def main() -> None:
            nonlocal ru0, t0
            async with anyio.create_task_group() as tg:
                kids = [await platform.spawn(argv, cwd=None, env=dict(os.environ)) for _ in sinks]
                ru0, t0 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
                for child, sink in zip(kids, sinks, strict=True):
                    if variant == "read":
                        tg.start_soon(pump, ReadOnly(child.stdout), sink)
                    elif variant == "readv":
                        tg.start_soon(readv_coroutine, child.stdout, sink)
                    elif variant == "thread":
                        fd = os.dup(child.stdout.fileno())  # type: ignore[attr-defined]
                        child.stdout.close()  # type: ignore[attr-defined]
                        tg.start_soon(anyio.to_thread.run_sync, thread_reader, fd, sink)
                    else:
                        tg.start_soon(pump, child.stdout, sink)
                for child in kids:
                    await child.wait()

        anyio.run(main)
        wall = time.perf_counter() - t0
        ru1 = resource.getrusage(resource.RUSAGE_SELF)
        user, sys_ = ru1.ru_utime - ru0.ru_utime, ru1.ru_stime - ru0.ru_stime
        faults = ru1.ru_minflt - ru0.ru_minflt
    for s in sinks:
        s.close()
    damage = [check_lines(list(reversed(s.rotated_paths())), lines) for s in sinks]
    return {"user": user, "sys": sys_, "cpu": user + sys_, "faults": faults, "wall": wall,
            "reads": sum(s.writes for s in sinks),
            "damage": "/".join(str(sum(d[k] for d in damage)) for k in range(3))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--children", default="1,2")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--lines", type=int, default=2_000_000)
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--one", help=argparse.SUPPRESS)  # variant,children,dir: a single run, JSON out
    args = parser.parse_args()
    if args.one:
        variant, n, work = args.one.split(",", 2)
        print(json.dumps(one(variant, int(n), args.lines, Path(work))))
        return
    variants = args.variants.split(",")
    print(f"load average {os.getloadavg()[0]:.1f}", flush=True)
    for n in (int(c) for c in args.children.split(",")):
        results: dict[str, list[dict[str, object]]] = {v: [] for v in variants}
        for _ in range(args.rounds):
            for v in variants:
                with tempfile.TemporaryDirectory() as work:
                    out = subprocess.run([sys.executable, __file__, "--lines", str(args.lines),
                                          "--one", f"{v},{n},{work}"], capture_output=True, text=True, check=True)
                    results[v].append(json.loads(out.stdout))
        print(f"\n{n} child(ren), {args.rounds} rounds, medians (min-max); load average {os.getloadavg()[0]:.1f}")
        print(f"{'variant':10s} {'cpu s':>18s} {'user s':>7s} {'sys s':>7s} {'faults':>8s} {'reads':>6s} {'wall s':>7s}"
              "  lost/dup/split")
        for v, runs in results.items():
            def med(k: str, runs: list[dict[str, object]] = runs) -> float:
                return statistics.median(float(r[k]) for r in runs)  # type: ignore[arg-type]
            cpus = [float(r["cpu"]) for r in runs]  # type: ignore[arg-type]
            print(f"{v:10s} {med('cpu'):6.3f} ({min(cpus):.3f}-{max(cpus):.3f}) {med('user'):7.3f} {med('sys'):7.3f}"
                  f" {med('faults'):8.0f} {med('reads'):6.0f} {med('wall'):7.3f}"
                  f"  {' '.join(str(r['damage']) for r in runs)}")


if __name__ == "__main__":
    main()
