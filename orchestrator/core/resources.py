"""What each service's whole process tree uses: processes, memory, CPU, listening ports.

Sampling walks every process on the machine once (psutil), so it is done on demand and at most once
per `status.every` (default 5 s), in a worker thread, shared by every reader: a status read marks
the figures wanted when they are older than that, `refresh()` brings them up to date for a reader
that can wait (the API, a metrics scrape), and an idle supervisor samples only for the dashboard's
history (core/history.py: once every 20 s).
The figures are stored on each runner (`runner.usage`) with the pid they were taken for.

A child spawned since the last sample gets figures on the next read all the same (`status` shows a
new child's CPU and memory at once), but only its own process's: the walk over the machine that finds
each tree's descendants is the dear part, about 40 ms of CPU with 460 processes on the 2-core dev box
against 0.2 ms for one process, and during a start of 100 services every status read found a new child
and walked the machine again. So a read walks the machine only when the figures are `status.every`
old; in between, the children spawned since get their root process sampled alone (`sample_roots`;
up to INLINE_ROOTS of them on the loop itself, where a worker thread's GIL hand-offs cost more than
the work), and their descendants join at the next walk. Measured (bench/compare.py's ignite of 100
`sleep` services with a client reading `GET /api/status` every 10 ms; two runs of 4 rounds, each
version against the one before it side by side, load average 10 to 25): the reader's median answer
391 ms (walking at every read) -> 81 ms (roots alone, in a worker thread); in the second run 45 ms
(worker thread) -> 21 ms (inline), with twice the answers (108 against 59). What is left of the slowdown is
the answers themselves (about 2 ms of loop time each for 100 services on a quiet box, 4.5 ms loaded).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

import anyio
import psutil

from orchestrator.platform import Child

__all__ = ["NO_USAGE", "ResourceMonitor", "ResourceUsage", "Sampled", "sample_roots", "sample_trees"]


@dataclass(frozen=True, slots=True)
class ResourceUsage:
    pid: int | None = None  # the tree's root (the service's child) these figures were taken for
    processes: int = 0  # live members of the tree
    rss_bytes: int = 0  # summed resident memory (shared pages count once per process)
    cpu_percent: float = 0.0  # summed, since the previous sample; 100 = one core
    cpu_seconds: float = 0.0  # user + system of the live tree and of the children it has reaped
    ports: tuple[int, ...] = ()  # TCP ports the tree listens on


NO_USAGE = ResourceUsage()
INLINE_ROOTS = 4  # new children sampled on the event loop itself; more go to a worker thread


class Sampled(Protocol):
    """What the monitor reads and writes on a service (a ServiceRunner): its child, its figures."""

    @property
    def child(self) -> Child | None: ...

    usage: ResourceUsage


def sample_trees(roots: Mapping[str, int]) -> dict[str, ResourceUsage]:
    """Blocking: one pass over the machine's processes, then each service's tree from its root pid."""
    children: dict[int, list[int]] = defaultdict(list)
    procs: dict[int, psutil.Process] = {}
    # process_iter keeps its Process objects between calls, so cpu_percent() measures since the last sample.
    for proc in psutil.process_iter(["ppid"]):
        procs[proc.pid] = proc
        children[proc.info["ppid"]].append(proc.pid)
    return {name: _tree_usage(root, procs, children) for name, root in roots.items()}


def sample_roots(roots: Mapping[str, int]) -> dict[str, ResourceUsage]:
    """Blocking: each root process alone, without walking the machine for its descendants."""
    out: dict[str, ResourceUsage] = {}
    for name, root in roots.items():
        try:
            alone = {root: psutil.Process(root)}
        except psutil.Error:
            alone = {}
        out[name] = _tree_usage(root, alone, {})  # a tree of one: no children listed
    return out


def _tree_usage(root: int, procs: Mapping[int, psutil.Process], children: Mapping[int, list[int]]) -> ResourceUsage:
    figures: list[tuple[int, float, float, set[int]]] = []
    todo, seen = [root], set()
    while todo:
        pid = todo.pop()
        if pid in seen or pid not in procs:
            continue
        seen.add(pid)
        todo.extend(children.get(pid, ()))
        one = _process_usage(procs[pid])
        if one is not None:
            figures.append(one)
    ports = set().union(*(f[3] for f in figures))
    return ResourceUsage(root, len(figures), sum(f[0] for f in figures), round(sum(f[1] for f in figures), 1),
                         round(sum(f[2] for f in figures), 2), tuple(sorted(ports)))


def _process_usage(proc: psutil.Process) -> tuple[int, float, float, set[int]] | None:
    """(rss, cpu percent, cpu seconds, listening ports) of one live process; None if gone or a zombie."""
    try:
        with proc.oneshot():
            if proc.status() == psutil.STATUS_ZOMBIE:
                return None
            times = proc.cpu_times()
            cpu_s = times.user + times.system
            cpu_s += getattr(times, "children_user", 0.0) + getattr(times, "children_system", 0.0)
            ports = {c.laddr.port for c in proc.net_connections(kind="tcp")
                     if c.status == psutil.CONN_LISTEN and c.laddr}
            return proc.memory_info().rss, proc.cpu_percent(None), cpu_s, ports
    except psutil.Error:
        return None


class ResourceMonitor:
    """The sampler shared by every status reader: on demand, at most once per `every_s`."""

    def __init__(self, runners: Mapping[str, Sampled], every_s: float) -> None:
        self.runners = runners  # the supervisor's own dict: services added by a reload are seen
        self.every_s = every_s
        self.sampled_at: float | None = None  # monotonic time of the last walk over the machine
        self.samples = 0  # walks over the machine
        self.root_samples = 0  # samples of new children's root processes alone, between walks
        self._wanted = anyio.Event()
        self._inflight: anyio.Event | None = None

    def fresh(self) -> bool:
        """Recent enough, and taken for every child running now: a child spawned since the last sample
        (a start, a restart) makes the next reader sample it, so `status` shows its figures at once."""
        return self._recent() and not self._unsampled()

    def _recent(self) -> bool:
        return self.sampled_at is not None and anyio.current_time() - self.sampled_at < self.every_s

    def _unsampled(self) -> dict[str, int]:
        return {name: r.child.pid for name, r in self.runners.items()
                if r.child is not None and r.usage.pid != r.child.pid}

    def want(self) -> None:
        """A reader saw the figures: have them refreshed in the background if they are old."""
        if not self.fresh():
            self._wanted.set()

    async def run(self) -> None:
        """The background refresher (in the supervisor's task group)."""
        while True:
            await self._wanted.wait()
            self._wanted = anyio.Event()
            await self.refresh()

    async def refresh(self) -> None:
        """Bring every running service's figures up to date unless they are fresh; one sample at a time."""
        if self.fresh():
            return
        if self._inflight is not None:
            await self._inflight.wait()
            return
        self._inflight = done = anyio.Event()
        try:
            if self._recent():  # only children spawned since the last walk: their root processes alone
                roots = self._unsampled()
                # A few inline (0.2 ms each): a worker thread's GIL hand-offs cost the loop more than that.
                usage = sample_roots(roots) if len(roots) <= INLINE_ROOTS else \
                    await anyio.to_thread.run_sync(sample_roots, roots)
                for name, one in usage.items():
                    if (runner := self.runners.get(name)) is not None:  # not removed by a reload meanwhile
                        runner.usage = one
                self.root_samples += 1
                return
            roots = {name: r.child.pid for name, r in self.runners.items() if r.child is not None}
            usage = await anyio.to_thread.run_sync(sample_trees, roots)
            self.sampled_at = anyio.current_time()
            self.samples += 1
            for name, runner in self.runners.items():
                runner.usage = usage.get(name, NO_USAGE)
        finally:
            self._inflight = None
            done.set()
