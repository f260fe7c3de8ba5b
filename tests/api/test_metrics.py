"""GET /api/metrics from a real supervisor: parsed back with prometheus_client and checked by promtool;
the shipped scrape config and alert rules checked (and unit-tested) by promtool too."""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from orchestrator.config.spec import ChecksSpec, DiskCheckSpec, HealthSpec, MemoryCheckSpec
from tests.support.api import serving
from tests.support.helpers import child, config, free_port, service, wait_for

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parents[2]
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def probe_spec(port: int, *, every: float) -> HealthSpec:
    # grace ends at the first answer, so a long one costs nothing; 5 s was too short for a Windows python
    # to start listening under Wine on a loaded 2-core machine (measured: over 5 s at load 5)
    return HealthSpec(url=f"http://127.0.0.1:{port}/health", every_s=every, timeout_s=2.0, grace_s=30.0)


def promtool() -> str:
    if sys.platform == "win32":  # the Wine lane: Debian's promtool is a Linux program
        pytest.skip("promtool is Debian's Linux binary; the Linux lane runs these checks")
    path = shutil.which("promtool")
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("promtool is missing in CI: .ci/run installs the Debian package `prometheus`")
        pytest.skip("promtool not installed (apt-get install prometheus); CI runs these checks")
    return path


def parse(text: str) -> Samples:
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, frozenset(labels.items()))]


def names(samples: Samples) -> set[str]:
    return {name for name, _ in samples}


async def test_scrape_reports_services_logs_checks_probes_and_requests(tmp_path: Path) -> None:
    port = free_port()
    web = service("web", child("health_server.py", port), health=probe_spec(port, every=0.1))
    crash = service("crash", child("exit_with.py", 3), attempts=2, start_period_s=0.05)
    idle = service("idle", child("ready_then_sleep.py"), autostart=False)
    checks = ChecksSpec(disk=(DiskCheckSpec(str(tmp_path)),), memory=MemoryCheckSpec())
    cfg = dataclasses.replace(config(tmp_path, web, crash, idle), checks=checks, status_every_s=0.05)
    async with serving(cfg) as api:
        # 30 s: a bound for a loaded machine (under Wine the first spawns took up to 12 s), not a wait
        await wait_for(lambda: api.sup.status("web").health == "healthy", 30, what="web healthy")
        await wait_for(lambda: api.sup.status("web").state == "running", what="web running")
        await wait_for(lambda: api.sup.status("crash").state == "fatal", what="crash fatal")
        await wait_for(lambda: api.sup.system_status()["memory"]["value"] is not None, what="memory read")
        await wait_for(lambda: api.sup.system_status()["disk"][0]["value"] is not None, what="disk read")
        await api.client.get("/api/system/web/status")
        await api.client.get("/api/system/sneaky-name/status")
        await api.client.get("/api/no/such/path")
        await api.client.post("/api/system/web/stop")  # 401: counted under its route template
        r = await api.client.get("/api/metrics")
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain; version=0.0.4")
        text = r.text
    s = parse(text)
    assert value(s, "orchestrator_service_up", service="web") == 1
    assert value(s, "orchestrator_service_up", service="crash") == 0
    assert value(s, "orchestrator_service_state", service="crash", state="fatal") == 1
    assert value(s, "orchestrator_service_state", service="crash", state="running") == 0
    assert value(s, "orchestrator_service_state", service="idle", state="stopped") == 1
    assert sum(v for (n, labels), v in s.items() if n == "orchestrator_service_state"
               and ("service", "web") in labels) == 1
    assert value(s, "orchestrator_service_healthy", service="web") == 1
    assert value(s, "orchestrator_service_restarts_total", service="crash", reason="exit") == 2
    assert abs(value(s, "orchestrator_service_start_time_seconds", service="web") - time.time()) < 60
    assert ("orchestrator_service_start_time_seconds", frozenset({("service", "idle")})) not in s
    assert value(s, "orchestrator_service_memory_rss_bytes", service="web") > 1_000_000
    assert value(s, "orchestrator_service_processes", service="web") == 1
    assert value(s, "orchestrator_service_cpu_seconds_total", service="web") > 0
    assert 0 < value(s, "orchestrator_health_check_duration_seconds", service="web") < 5
    assert value(s, "orchestrator_log_bytes_total", service="crash", stream="stdout") > 0
    assert value(s, "orchestrator_log_dropped_bytes_total", service="web", stream="stderr") == 0
    assert value(s, "orchestrator_disk_free_bytes", path=str(tmp_path)) > 0
    assert 0 < value(s, "orchestrator_memory_used_percent") <= 100
    assert value(s, "orchestrator_process_resident_memory_bytes") > 0
    assert value(s, "orchestrator_process_cpu_seconds_total") > 0
    route = "/api/system/{name}/status"
    assert value(s, "orchestrator_http_requests_total", method="GET", route=route, status="200") == 1
    assert value(s, "orchestrator_http_requests_total", method="GET", route=route, status="404") == 1
    assert value(s, "orchestrator_http_requests_total", method="GET", route="unmatched", status="404") == 1
    assert value(s, "orchestrator_http_requests_total", method="POST", route="/api/system/{name}/stop",
                 status="401") == 1
    assert value(s, "orchestrator_http_request_duration_seconds_count", method="GET", route=route) == 2
    assert "sneaky-name" not in text and "/api/no/such/path" not in text  # route templates, never raw paths
    check = subprocess.run([promtool(), "check", "metrics"], input=text, capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr


async def test_every_metric_of_the_issue_is_exported(tmp_path: Path) -> None:
    port = free_port()
    web = service("web", child("health_server.py", port), health=probe_spec(port, every=0.1))
    checks = ChecksSpec(disk=(DiskCheckSpec(str(tmp_path)),), memory=MemoryCheckSpec())
    async with serving(dataclasses.replace(config(tmp_path, web), checks=checks)) as api:
        # 30 s: a bound for a loaded machine (under Wine the first spawns took up to 12 s), not a wait
        await wait_for(lambda: api.sup.status("web").health == "healthy", 30, what="web healthy")
        await wait_for(lambda: api.sup.system_status()["disk"][0]["value"] is not None, what="disk read")
        await api.client.get("/api/health")
        text = (await api.client.get("/api/metrics")).text
    exported = names(parse(text))
    wanted = {
        "orchestrator_http_requests_total", "orchestrator_http_request_duration_seconds_bucket",
        "orchestrator_service_up", "orchestrator_service_state", "orchestrator_service_healthy",
        "orchestrator_service_start_time_seconds", "orchestrator_service_memory_rss_bytes",
        "orchestrator_service_cpu_seconds_total", "orchestrator_service_processes", "orchestrator_log_bytes_total",
        "orchestrator_log_dropped_bytes_total", "orchestrator_health_check_duration_seconds",
        "orchestrator_disk_free_bytes", "orchestrator_memory_used_percent", "orchestrator_process_cpu_seconds_total",
    }
    assert wanted <= exported, wanted - exported
    assert "# TYPE orchestrator_service_restarts_total counter" in text  # no restart yet: a family, no samples
    assert all(name.startswith("orchestrator_") for name in exported)


def test_scrape_config_and_alert_rules_pass_promtool() -> None:
    tool = promtool()
    for args in (["check", "config", "docs/prometheus.yml"], ["check", "rules", "docs/alerts.yml"],
                 ["test", "rules", "tests/promtool/alerts_test.yml"]):
        out = subprocess.run([tool, *args], cwd=ROOT, capture_output=True, text=True)
        assert out.returncode == 0, f"promtool {' '.join(args)}:\n{out.stdout}{out.stderr}"
