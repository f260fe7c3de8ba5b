"""`{namespace}_process_*` metrics for the supervisor's own process, on every OS.

prometheus_client's ProcessCollector reads /proc, so it exports nothing on Windows (or macOS). The
psutil collector here exports the same names and help texts from psutil; on Windows the count of open
handles stands in for open file descriptors, under its own name (`_open_handles`), since it counts
different things. Reading one's own process with psutil is a few cheap system calls, fine at scrape time.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from pathlib import Path

import psutil
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector

__all__ = ["PsutilProcessCollector", "process_collector"]


def process_collector(namespace: str = "orchestrator") -> Collector:
    """The right collector for this OS, not registered anywhere (register it in your own registry)."""
    if Path("/proc/self/stat").is_file():
        return ProcessCollector(namespace=namespace, registry=None)
    return PsutilProcessCollector(namespace)


class PsutilProcessCollector:
    def __init__(self, namespace: str = "orchestrator", process: psutil.Process | None = None) -> None:
        self._prefix = f"{namespace}_process_" if namespace else "process_"
        self._process = process or psutil.Process()

    def collect(self) -> Iterable[Metric]:
        p, prefix = self._process, self._prefix
        try:
            with p.oneshot():
                cpu = p.cpu_times()
                memory = p.memory_info()
                started = p.create_time()
                extra = list(self._descriptors(p))
        except psutil.Error:
            return []  # the process is gone (a collector for another pid): no figures rather than an error
        return [
            GaugeMetricFamily(prefix + "virtual_memory_bytes", "Virtual memory size in bytes.",
                              value=float(memory.vms)),
            GaugeMetricFamily(prefix + "resident_memory_bytes", "Resident memory size in bytes.",
                              value=float(memory.rss)),
            GaugeMetricFamily(prefix + "start_time_seconds",
                              "Start time of the process since unix epoch in seconds.", value=started),
            CounterMetricFamily(prefix + "cpu_seconds_total", "Total user and system CPU time spent in seconds.",
                                value=cpu.user + cpu.system),
            *extra,
        ]

    def _descriptors(self, p: psutil.Process) -> Iterable[Metric]:
        if sys.platform == "win32":
            yield GaugeMetricFamily(self._prefix + "open_handles", "Number of open handles.",
                                    value=float(p.num_handles()))
            return
        yield GaugeMetricFamily(self._prefix + "open_fds", "Number of open file descriptors.",
                                value=float(p.num_fds()))
        if p.pid == psutil.Process().pid:
            import resource

            soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
            if soft != resource.RLIM_INFINITY:
                yield GaugeMetricFamily(self._prefix + "max_fds", "Maximum number of open file descriptors.",
                                        value=float(soft))
