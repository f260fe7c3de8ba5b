"""Each service's CPU and memory over the last 30 minutes, and ComfyUI's queue and VRAM: the dashboard's charts.

Rule: one point every `EVERY_S`, taken from the status data (the ResourceMonitor's shared sample, so a
status read and the history never sample the machine twice), kept in a ring of `SPAN_S / EVERY_S + 1`
points per series. Memory is bounded: 91 points of (time, CPU %, RSS) per service, about 10 KB each.
A service removed by a reload loses its series at the next point; a stopped one records zeros.

Why 20 s: one sample walks every process on the machine (psutil.process_iter) and costs about 6 ms of
CPU on the CI VM (2 services, 91 processes). Every 20 s that is ~18 ms a minute, within the idle
budget of 50 ms a minute beside the 20 ms the rest of an idle supervisor costs; every 5 s
(`status.every`) would be 72 ms a minute on its own. 91 points still draw a 120-pixel chart.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import anyio

__all__ = ["EVERY_S", "SPAN_S", "ComfyPoint", "History", "Sample", "run_sampler"]

SPAN_S = 1800.0  # what the charts show: the last 30 minutes
EVERY_S = 20.0  # one point per service this often (see the module docstring for the cost)


@dataclass(frozen=True, slots=True)
class ComfyPoint:
    queue_running: int | None  # None: ComfyUI did not tell (not running, not reachable yet)
    queue_pending: int | None
    vram_used_bytes: int | None
    vram_total_bytes: int | None


@dataclass(frozen=True, slots=True)
class Sample:
    """One point in time: every configured service's (CPU %, RSS bytes), and ComfyUI's if configured."""

    t: float  # wall clock, epoch seconds (the page draws against its own clock)
    services: Mapping[str, tuple[float, int]]
    comfy: ComfyPoint | None = None

    def to_dict(self) -> dict[str, Any]:
        services = {name: {"cpu_percent": cpu, "rss_bytes": rss} for name, (cpu, rss) in self.services.items()}
        comfy = None if self.comfy is None else {
            "queue_running": self.comfy.queue_running, "queue_pending": self.comfy.queue_pending,
            "vram_used_bytes": self.comfy.vram_used_bytes, "vram_total_bytes": self.comfy.vram_total_bytes}
        return {"t": self.t, "services": services, "comfy": comfy}


SampleListener = Callable[[Sample], None]


class History:
    """The bounded rings; `record` adds a point and tells the listeners (the live streams)."""

    def __init__(self, span_s: float = SPAN_S, every_s: float = EVERY_S) -> None:
        if span_s <= 0 or every_s <= 0:
            raise ValueError("span_s and every_s must be positive")
        self.span_s = span_s
        self.every_s = every_s
        self.maxlen = int(span_s // every_s) + 1
        self._services: dict[str, deque[tuple[float, float, int]]] = {}
        self._comfy: deque[tuple[float, ComfyPoint]] = deque(maxlen=self.maxlen)
        self._listeners: list[SampleListener] = []

    def record(self, sample: Sample) -> None:
        for name in [n for n in self._services if n not in sample.services]:
            del self._services[name]
        for name, (cpu, rss) in sample.services.items():
            ring = self._services.get(name)
            if ring is None:
                ring = self._services[name] = deque(maxlen=self.maxlen)
            ring.append((sample.t, cpu, rss))
        if sample.comfy is not None:
            self._comfy.append((sample.t, sample.comfy))
        for fn in list(self._listeners):
            fn(sample)

    def points(self, name: str) -> int:
        ring = self._services.get(name)
        return 0 if ring is None else len(ring)

    def add_listener(self, fn: SampleListener) -> None:
        self._listeners.append(fn)

    def remove_listener(self, fn: SampleListener) -> None:
        if fn in self._listeners:
            self._listeners.remove(fn)

    def to_dict(self) -> dict[str, Any]:
        """Columns per series (times, then values), the shape GET /api/history answers."""
        services = {
            name: {"t": [p[0] for p in ring], "cpu_percent": [p[1] for p in ring], "rss_bytes": [p[2] for p in ring]}
            for name, ring in self._services.items()
        }
        comfy = None if not self._comfy else {
            "t": [t for t, _ in self._comfy],
            "queue_running": [p.queue_running for _, p in self._comfy],
            "queue_pending": [p.queue_pending for _, p in self._comfy],
            "vram_used_bytes": [p.vram_used_bytes for _, p in self._comfy],
            "vram_total_bytes": [p.vram_total_bytes for _, p in self._comfy],
        }
        return {"span_s": self.span_s, "every_s": self.every_s, "services": services, "comfy": comfy}


async def run_sampler(history: History, take: Callable[[], Awaitable[Sample]]) -> None:
    """Forever: a point every `history.every_s` on a fixed schedule (no drift), the first one interval after
    the start (the children have spawned by then, and a supervisor that runs for less samples nothing)."""
    next_at = anyio.current_time() + history.every_s
    while True:
        await anyio.sleep(max(0.0, next_at - anyio.current_time()))
        history.record(await take())
        next_at += history.every_s
        now = anyio.current_time()
        if next_at < now:  # a slow sample (a loaded machine): skip the missed points, do not catch up
            next_at = now + history.every_s
