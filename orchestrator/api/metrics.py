"""Prometheus metrics: a collector that reads the supervisor at scrape time, on a per-app registry.

Nothing is pushed on a timer and nothing registers at import: `build_registry(sup)` makes a fresh
CollectorRegistry with the supervisor collector and the process collector; the HTTP middleware
(httpmetrics.py) and later collectors (ComfyUI's) register on the same registry. `collect()` only
reads values the supervisor already holds (statuses, sink counters, the checks' last samples), so a
scrape costs no I/O beyond our own process's figures.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from orchestrator.api.protocols import SupervisorAPI
from orchestrator.core.machine import ProcessState
from orchestrator.core.status import DRAINING, ServiceStatus
from orchestrator.platform.procmetrics import process_collector

__all__ = ["CONTENT_TYPE", "SupervisorCollector", "build_registry", "render"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_STATES = (*(s.value for s in ProcessState), DRAINING)
_UP = frozenset({ProcessState.RUNNING.value, DRAINING})  # draining: still running, about to restart


def build_registry(sup: SupervisorAPI, *, extra: Iterable[Collector] = ()) -> CollectorRegistry:
    """A registry for one app: the supervisor's metrics, our own process's, and any `extra` collectors."""
    registry = CollectorRegistry(auto_describe=True)
    registry.register(SupervisorCollector(sup))
    registry.register(process_collector("orchestrator"))  # /proc where there is one, else psutil (Windows)
    for collector in extra:
        registry.register(collector)
    return registry


def render(registry: CollectorRegistry) -> bytes:
    return bytes(generate_latest(registry))


class SupervisorCollector(Collector):
    """orchestrator_service_*, orchestrator_log_*, health check, disk and memory gauges."""

    def __init__(self, sup: SupervisorAPI) -> None:
        self._sup = sup

    def collect(self) -> Iterator[Metric]:
        statuses = self._sup.statuses()
        yield from _service_families(statuses)
        yield from self._log_families()
        yield from _system_families(self._sup.system_status())

    def _log_families(self) -> Iterator[Metric]:
        written = CounterMetricFamily("orchestrator_log_bytes", "Bytes of child output written to the log files",
                                      labels=["service", "stream"])
        dropped = CounterMetricFamily("orchestrator_log_dropped_bytes",
                                      "Bytes of child output lost because the log file could not be written",
                                      labels=["service", "stream"])
        for name, view in self._sup.runners.items():
            for stream, source in (("stdout", view.stdout), ("stderr", view.stderr)):
                written.add_metric([name, stream], source.bytes_written)
                dropped.add_metric([name, stream], source.bytes_dropped)
        yield written
        yield dropped


def _service_families(statuses: list[ServiceStatus]) -> Iterator[Metric]:
    def gauge(name: str, doc: str, *extra: str) -> GaugeMetricFamily:
        return GaugeMetricFamily(f"orchestrator_service_{name}", doc, labels=["service", *extra])

    up = gauge("up", "1 if the service is running (past its start period), else 0")
    state = gauge("state", "1 for the service's current state, 0 for the others", "state")
    healthy = gauge("healthy", "1 if the last health verdict is healthy, else 0 (unknown or unhealthy)")
    restarts = CounterMetricFamily("orchestrator_service_restarts", "Restarts since the supervisor started",
                                   labels=["service", "reason"])
    started = gauge("start_time_seconds", "Unix time the current process was spawned")
    rss = gauge("memory_rss_bytes", "Resident memory of the service's whole process tree")
    cpu = CounterMetricFamily("orchestrator_service_cpu_seconds", "CPU time of the service's process tree",
                              labels=["service"])
    procs = gauge("processes", "Processes in the service's tree")
    probe = GaugeMetricFamily("orchestrator_health_check_duration_seconds", "Duration of the last health probe",
                              labels=["service"])
    for st in statuses:
        up.add_metric([st.name], 1.0 if st.state in _UP else 0.0)
        for value in (_STATES if st.state in _STATES else (*_STATES, st.state)):
            state.add_metric([st.name, value], 1.0 if st.state == value else 0.0)
        healthy.add_metric([st.name], 1.0 if st.health == "healthy" else 0.0)
        for reason, count in sorted(st.restarts_by_reason.items()):
            restarts.add_metric([st.name, reason], count)
        if st.started_at is not None:
            started.add_metric([st.name], st.started_at)
        rss.add_metric([st.name], st.rss_bytes)
        cpu.add_metric([st.name], st.cpu_seconds)
        procs.add_metric([st.name], st.processes)
        if st.health_check_duration_s is not None:
            probe.add_metric([st.name], st.health_check_duration_s)
    yield from (up, state, healthy, restarts, started, rss, cpu, procs, probe)


def _system_families(system: Mapping[str, Any]) -> Iterator[Metric]:
    """From Supervisor.system_status(): `disk: [{path, free_bytes}]`, `memory: {used_percent}`."""
    disk = GaugeMetricFamily("orchestrator_disk_free_bytes", "Free bytes on the watched disk", labels=["path"])
    for check in system.get("disk") or ():
        free = _number(check.get("free_bytes"))  # None: not read yet, or unreadable
        if free is not None:
            disk.add_metric([str(check.get("path"))], free)
    yield disk
    memory = GaugeMetricFamily("orchestrator_memory_used_percent", "System memory in use, percent")
    used = _number((system.get("memory") or {}).get("used_percent"))
    if used is not None:
        memory.add_metric([], used)
    yield memory


def _number(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None
