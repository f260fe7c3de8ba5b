"""The Grafana dashboard (docs/grafana/orchestrator.json) and every rule of docs/alerts.yml, evaluated by a real
Prometheus (Debian's package) that scrapes a real supervisor through the file_sd job of docs/prometheus.yml.

The expressions are read out of the shipped files, never copied here: a renamed metric, a recording rule the
dashboard reads but alerts.yml lacks, or a query Prometheus rejects fails this test. The supervisor runs the
stand-in ComfyUI (queue, VRAM), a service with a health probe, one that keeps crashing (restarts) and one that
goes fatal, with disk and memory checks, so every series the dashboard shows exists.
"""

from __future__ import annotations

import dataclasses
import json
import re
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
import yaml

from orchestrator.config.spec import ChecksSpec, Config, DiskCheckSpec, HealthSpec, MemoryCheckSpec
from tests.support.api import Served, serving
from tests.support.comfy import comfy_service, control
from tests.support.helpers import child, config, free_port, service, system_of, wait_for
from tests.support.prometheus import prometheus_binary, query, running_prometheus

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "docs" / "grafana" / "orchestrator.json"
RULES = ROOT / "docs" / "alerts.yml"
SCRAPE_CONFIG = ROOT / "docs" / "prometheus.yml"
JOB = "orchestrator"
INSTANCE = "box-under-test"  # set by the targets file, as docs/targets/boxes.yml names boxes

# What Grafana puts in place of each variable (All is `.*`, the allValue); a new variable must be added here.
VARIABLES = {"instance": INSTANCE, "service": ".*", "__rate_interval": "1m"}
# Expressions allowed to return nothing in this setup, and why; the metrics they read must still exist.
QUIET = {
    "alert OrchestratorDiskLow": "fires only under 10 GiB free",
    "alert OrchestratorMemoryHigh": "fires only over 80% memory in use",
    "alert OrchestratorUnreachable": "the supervisor answers its scrapes",
}
# What the dashboard must show (directly or through a recording rule): the list of issue 14, part 3.
SHOWN = {
    "orchestrator_service_up", "orchestrator_service_state", "orchestrator_service_restarts_total",
    "orchestrator_service_cpu_seconds_total", "orchestrator_service_memory_rss_bytes", "orchestrator_log_bytes_total",
    "orchestrator_log_dropped_bytes_total", "orchestrator_health_check_duration_seconds",
    "orchestrator_disk_free_bytes", "orchestrator_memory_used_percent", "orchestrator_comfy_queue_running",
    "orchestrator_comfy_queue_pending", "orchestrator_comfy_vram_free_bytes", "orchestrator_comfy_vram_total_bytes",
    "orchestrator_http_requests_total", "orchestrator_http_request_duration_seconds_bucket",
}
SCRAPE_EVERY = "1s"
UP_TIMEOUT_S = 30.0
DATA_TIMEOUT_S = 60.0  # scrapes every second and rules evaluated every second: data within a few seconds


@dataclass(frozen=True, slots=True)
class Query:
    where: str  # `panel "CPU per service" A`, `variable instance`, `record instance:...`, `alert Orchestrator...`
    expr: str  # as written in the file


# ---- reading the expressions out of the files ----

def load_dashboard() -> dict[str, Any]:
    dashboard: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return dashboard


def load_rules() -> dict[str, Any]:
    rules: dict[str, Any] = yaml.safe_load(RULES.read_text())
    return rules


def all_panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    """Top-level panels and those inside collapsed rows."""
    out: list[dict[str, Any]] = []
    for panel in dashboard["panels"]:
        out.append(panel)
        out.extend(panel.get("panels", []))
    return out


def variable_query(variable: dict[str, Any]) -> str:
    q = variable["query"]
    return str(q["query"] if isinstance(q, dict) else q)


_LABEL_VALUES = re.compile(r"^label_values\((?P<expr>.+),\s*(?P<label>\w+)\)$", re.S)


def dashboard_queries(dashboard: dict[str, Any]) -> list[Query]:
    queries = [Query(f'panel "{p["title"]}" {t["refId"]}', t["expr"])
               for p in all_panels(dashboard) for t in p.get("targets", [])]
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            match = _LABEL_VALUES.match(variable_query(variable))
            assert match, f"variable {variable['name']}: only label_values(expr, label) is understood here"
            queries.append(Query(f"variable {variable['name']}", match["expr"]))
    return queries


def rule_queries(rules: dict[str, Any]) -> list[Query]:
    return [Query(f"record {r['record']}" if "record" in r else f"alert {r['alert']}", r["expr"])
            for group in rules["groups"] for r in group["rules"]]


def substitute(expr: str) -> str:
    def value(match: re.Match[str]) -> str:
        name = match["braced"] or match["plain"]
        if name not in VARIABLES:
            raise AssertionError(f"${name} in {expr!r}: add what Grafana puts there to VARIABLES")
        return VARIABLES[name]
    return re.sub(r"\$(?:\{(?P<braced>\w+)(?::\w+)?\}|(?P<plain>\w+))", value, expr)


_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'')
_NAME = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*")


def metric_names(expr: str) -> set[str]:
    """The series names an expression reads: ours, recording rules (level:metric:op) and `up`."""
    tokens = _NAME.findall(_STRING.sub('""', expr))
    return {t for t in tokens if t.startswith("orchestrator_") or t.count(":") == 2 or t == "up"}


# ---- the dashboard's shape: importable into Grafana, one dashboard for N boxes ----

def test_dashboard_is_importable_and_serves_many_boxes() -> None:
    dashboard = load_dashboard()
    assert dashboard["schemaVersion"] >= 39 and dashboard["uid"] and dashboard["id"] is None
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
    instance = variables["instance"]
    assert instance["type"] == "query" and instance["multi"] and instance["includeAll"]
    assert "instance" in variable_query(instance)
    assert set(variables) - {"datasource"} <= set(VARIABLES)
    panels = all_panels(dashboard)
    assert len({p["id"] for p in panels}) == len(panels), "panel ids must be unique"
    cells: set[tuple[int, int]] = set()
    for p in panels:
        g = p["gridPos"]
        assert g["x"] >= 0 and g["x"] + g["w"] <= 24, p["title"]
        mine = {(x, y) for x in range(g["x"], g["x"] + g["w"]) for y in range(g["y"], g["y"] + g["h"])}
        assert not mine & cells, f'panel "{p["title"]}" overlaps another'
        cells |= mine
        if p["type"] == "row":
            continue
        assert p["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, p["title"]
        refs = [t["refId"] for t in p["targets"]]
        assert refs and len(set(refs)) == len(refs), p["title"]
        for t in p["targets"]:
            assert t["datasource"] == p["datasource"]
            assert 'instance=~"$instance"' in t["expr"], f'{p["title"]}: every query filters on $instance'
    queries = dashboard_queries(dashboard)
    read = set().union(*(metric_names(q.expr) for q in queries))
    recorded = {r["record"]: r["expr"] for g in load_rules()["groups"] for r in g["rules"] if "record" in r}
    assert set(recorded) <= read, f"recording rules the dashboard does not use: {set(recorded) - read}"
    shown = read | set().union(*(metric_names(recorded[n]) for n in read & set(recorded)))
    assert shown >= SHOWN, f"not on the dashboard: {SHOWN - shown}"


def test_recording_rules_compute_what_their_names_say() -> None:
    args = ["test", "rules", "tests/promtool/recording_test.yml"]
    out = subprocess.run([prometheus_binary("promtool"), *args], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, f"promtool {' '.join(args)}:\n{out.stdout}{out.stderr}"


# ---- a real Prometheus over a real supervisor ----

def box(tmp: Path) -> tuple[Config, int]:
    comfy_port, web_port = free_port(), free_port()
    web = service("web", child("health_server.py", web_port),
                  health=HealthSpec(url=f"http://127.0.0.1:{web_port}/health", every_s=0.5, timeout_s=2.0, grace_s=5.0))
    flaky = service("flaky", child("exit_with.py", 3, 0.5), attempts=10_000, start_period_s=0.1)
    broken = service("broken", child("exit_with.py", 3), attempts=1, start_period_s=1.0)
    checks = ChecksSpec(disk=(DiskCheckSpec(str(tmp)),), memory=MemoryCheckSpec())
    cfg = config(tmp, comfy_service(tmp, comfy_port), web, flaky, broken)
    return dataclasses.replace(cfg, checks=checks, status_every_s=0.5), comfy_port


def scrape_config(tmp: Path, api_port: int) -> Path:
    """docs/prometheus.yml as shipped, but every second, with the rules by absolute path, and its file_sd
    job pointed at a targets file naming this box (its static target, 127.0.0.1:8765, is not ours)."""
    cfg = yaml.safe_load(SCRAPE_CONFIG.read_text())
    cfg["global"] = {"scrape_interval": SCRAPE_EVERY, "scrape_timeout": SCRAPE_EVERY,
                     "evaluation_interval": SCRAPE_EVERY}
    cfg["rule_files"] = [str(RULES)]
    [job] = [j for j in cfg["scrape_configs"] if j["job_name"] == JOB]
    assert job["file_sd_configs"], "docs/prometheus.yml: the fleet example (file_sd_configs) is gone"
    del job["static_configs"]
    (tmp / "targets").mkdir()
    (tmp / "targets" / "box.yml").write_text(yaml.safe_dump(
        [{"targets": [f"127.0.0.1:{api_port}"], "labels": {"instance": INSTANCE}}]))
    job["file_sd_configs"] = [{"files": [str(tmp / "targets" / "*.yml")]}]
    path = tmp / "prometheus.yml"
    path.write_text(yaml.safe_dump(cfg))
    return path


async def make_traffic(api: Served, comfy_port: int) -> None:
    """Series that only exist after use: a proxied ComfyUI call, refused and unknown requests, a queue."""
    await control(comfy_port, queue={"running": 1, "pending": 2})
    assert (await api.client.get("/api/comfy/api/queue")).status_code == 200
    assert (await api.client.post("/api/system/web/stop")).status_code == 401  # no token
    assert (await api.client.get("/api/no/such/path")).status_code == 404


async def evaluate_until_data(prom: httpx.AsyncClient, queries: list[Query]) -> dict[Query, int]:
    """Every query succeeds at once (else PromQLError); wait (bounded) until each that should has data."""
    names = sorted(set().union(*(metric_names(q.expr) for q in queries)))
    deadline = time.monotonic() + DATA_TIMEOUT_S
    while True:
        counts = {q: len(await query(prom, substitute(q.expr))) for q in queries}
        empty = [q for q in queries if counts[q] == 0 and q.where not in QUIET]
        absent = [n for n in names if not await query(prom, f"count({n})")]
        if not empty and not absent:
            return counts
        if time.monotonic() > deadline:
            lines = [f"  {q.where}: {q.expr}" for q in empty] + [f"  series {n}" for n in absent]
            raise AssertionError(f"no data after {DATA_TIMEOUT_S}s for:\n" + "\n".join(lines))
        await anyio.sleep(0.5)


@pytest.mark.timeout(120)
async def test_every_dashboard_and_rule_expression_on_a_real_prometheus(tmp_path: Path) -> None:
    prometheus_binary()  # skip (or, in CI, fail) before starting anything
    started = time.monotonic()
    queries = dashboard_queries(load_dashboard()) + rule_queries(load_rules())
    cfg, comfy_port = box(tmp_path)
    async with serving(cfg) as api:
        sup = api.sup
        comfy = system_of(sup).comfy
        await wait_for(lambda: comfy.sample.reachable, 10, "ComfyUI reachable")
        await wait_for(lambda: sup.status("web").health == "healthy", 10, "web healthy")
        await wait_for(lambda: sup.status("broken").state == "fatal", 10, "broken fatal")
        await make_traffic(api, comfy_port)
        async with (running_prometheus(scrape_config(tmp_path, api.port), tmp_path) as url,
                    httpx.AsyncClient(base_url=url, trust_env=False, timeout=10) as prom):
            up = f'up{{job="{JOB}", instance="{INSTANCE}"}} == 1'
            deadline = time.monotonic() + UP_TIMEOUT_S
            while not await query(prom, up):
                assert time.monotonic() < deadline, f"{url}: target not up after {UP_TIMEOUT_S}s"
                await anyio.sleep(0.2)
            counts = await evaluate_until_data(prom, queries)
    with_data = sum(1 for n in counts.values() if n)
    print(f"\n{len(counts)} PromQL expressions evaluated, {with_data} returned data, "
          f"{time.monotonic() - started:.1f} s")
    assert len(counts) == len(queries) and with_data >= len(queries) - len(QUIET)
