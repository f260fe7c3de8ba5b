"""The psutil process collector: portable, so checked here against the real process and beside
prometheus_client's /proc collector, whose names it must match."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.process_collector import ProcessCollector

from orchestrator.platform.procmetrics import PsutilProcessCollector, process_collector

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="compares with POSIX figures")


def registry_with(collector: object) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=True)
    registry.register(collector)  # type: ignore[arg-type]
    return registry


def value(registry: CollectorRegistry, name: str) -> float:
    found = registry.get_sample_value(name)
    assert found is not None, f"no sample {name}"
    return found


def test_figures_are_this_process() -> None:
    registry = registry_with(PsutilProcessCollector("orchestrator"))
    me = psutil.Process()
    rss = value(registry, "orchestrator_process_resident_memory_bytes")
    assert 0.5 < rss / me.memory_info().rss < 2
    assert value(registry, "orchestrator_process_virtual_memory_bytes") >= rss
    assert value(registry, "orchestrator_process_start_time_seconds") == pytest.approx(me.create_time())
    import resource  # POSIX only: imported here, so that collecting this module works on Windows

    assert value(registry, "orchestrator_process_max_fds") == resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def test_cpu_and_open_fds_move_with_the_process(tmp_path: Path) -> None:
    registry = registry_with(PsutilProcessCollector("orchestrator"))
    cpu_before = value(registry, "orchestrator_process_cpu_seconds_total")
    fds_before = value(registry, "orchestrator_process_open_fds")
    deadline = time.process_time() + 0.2
    while time.process_time() < deadline:
        pass
    with open(tmp_path / "held", "w"):
        assert value(registry, "orchestrator_process_open_fds") == fds_before + 1
    assert value(registry, "orchestrator_process_cpu_seconds_total") >= cpu_before + 0.15


def test_same_names_as_prometheus_clients_collector_on_linux() -> None:
    if not Path("/proc/self/stat").is_file():
        pytest.skip("needs /proc")
    ours = {m.name for m in PsutilProcessCollector("orchestrator").collect()}
    theirs = {m.name for m in ProcessCollector(namespace="orchestrator", registry=None).collect()}
    assert ours == theirs
    assert isinstance(process_collector("orchestrator"), ProcessCollector)


def test_another_process_and_a_gone_one() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        collector = PsutilProcessCollector("x", psutil.Process(child.pid))
        names = {m.name for m in collector.collect()}
        assert "x_process_open_fds" in names and "x_process_max_fds" not in names  # our rlimit is not its
    finally:
        child.kill()
        child.wait()
    assert list(collector.collect()) == []


def test_without_namespace() -> None:
    names = {m.name for m in PsutilProcessCollector("").collect()}
    assert "process_cpu_seconds" in names  # the family name; the sample is process_cpu_seconds_total
    assert "process_resident_memory_bytes" in names
