"""Health probes against real HTTP children: unhealthy restarts, grace, action none, independence."""

from __future__ import annotations

import itertools
import time
from pathlib import Path

import pytest

from orchestrator.config.spec import Dependency, DependencyCondition, HealthAction, HealthSpec
from orchestrator.core.supervisor import Supervisor
from orchestrator.health.verdict import ProbeResult
from tests.support.helpers import child, config, free_port, read_file, service, supervising, wait_for

pytestmark = pytest.mark.anyio


def probe_spec(port: int, *, every: float = 0.1, timeout: float = 0.5, grace: float = 5.0, failures: int = 3,
               action: HealthAction = HealthAction.RESTART) -> HealthSpec:
    return HealthSpec(url=f"http://127.0.0.1:{port}/health", every_s=every, timeout_s=timeout, grace_s=grace,
                      failures=failures, action=action)


def requests(tmp_path: Path, name: str) -> list[tuple[str, float]]:
    """(mode, epoch seconds) of every request the service's health server received, in order."""
    lines = read_file(tmp_path / "logs" / f"{name}-stdout.log").splitlines()
    return [(p[1], float(p[2])) for p in (line.split() for line in lines) if p and p[0] == "request"]


def events(sup: Supervisor, kind: str, service: str) -> list[str]:
    return [e.message for e in sup.events.since() if e.kind == kind and e.service == service]


async def test_hanging_endpoint_is_unhealthy_after_failures_probes_and_restarted(tmp_path: Path) -> None:
    port, mode = free_port(), tmp_path / "mode"
    svc = service("web", child("health_server.py", port, "--mode-file", mode), start_period_s=0.1,
                  health=probe_spec(port, every=0.4, timeout=0.3, failures=3))
    async with supervising(config(tmp_path, svc)) as sup:
        probe = sup.runner("web").probe
        assert probe is not None
        results: list[ProbeResult] = []
        probe.listeners.append(results.append)
        await wait_for(lambda: sup.status("web").health == "healthy", what="healthy")
        first = sup.status("web").pid
        answered = len(results)
        await wait_for(lambda: len(results) > answered, what="a probe")  # switch between two probes
        mode.write_text("hang")
        hang_began = time.time()
        await wait_for(lambda: sup.status("web").restarts_by_reason.get("unhealthy") == 1, what="restart")
        mode.write_text("ok")
        await wait_for(lambda: sup.status("web").health == "healthy", what="healthy again")
        st = sup.status("web")
        assert st.pid != first and st.state == "running" and st.attempts == 1
        verdict = [e for e in sup.events.since() if e.kind == "health_changed"][1]
        assert verdict.message == "unhealthy: timeout after 0.3s (3 failed probes in a row)"
        # Exactly `failures` probes were started between the switch and the verdict, and all timed out.
        between = [r for r in results if hang_began <= r.wall <= verdict.at]
        assert len(between) == 3 and all(r.timed_out for r in between), between
        assert "hang" in [m for m, _ in requests(tmp_path, "web")]
        assert events(sup, "restart", "web") == ["unhealthy: timeout after 0.3s (attempt 1 of 3)"]
        reasons = [t.reason for t in sup.runner("web").machine.history if t.to.value == "stopping"]
        assert reasons == ["unhealthy: timeout after 0.3s"]


async def test_slow_start_is_not_restarted_during_grace(tmp_path: Path) -> None:
    port = free_port()
    svc = service("slow", child("health_server.py", port, "--listen-after", 1.0), start_period_s=0.1,
                  health=probe_spec(port, every=0.1, grace=5.0, failures=2))
    async with supervising(config(tmp_path, svc)) as sup:
        probe = sup.runner("slow").probe
        assert probe is not None
        await wait_for(lambda: probe.failed_total >= 3, what="refused probes")
        assert sup.status("slow").health == "unknown"
        assert sup.status("slow").health_detail == "connection refused"
        first = sup.status("slow").pid
        await wait_for(lambda: sup.status("slow").health == "healthy", what="healthy")
        st = sup.status("slow")
        assert st.pid == first and st.restarts == 0 and st.health_detail is None
        assert probe.failed_total >= 3  # more than `failures`, none of them counted
        assert events(sup, "health_changed", "slow") == ["healthy"]


async def test_no_answer_by_the_end_of_grace_restarts_then_gives_up(tmp_path: Path) -> None:
    port = free_port()
    svc = service("dead", child("health_server.py", port, "--listen-after", 60), start_period_s=0.1,
                  attempts=1, health=probe_spec(port, every=0.1, grace=0.4, failures=2))
    async with supervising(config(tmp_path, svc)) as sup:
        await wait_for(lambda: sup.status("dead").state == "fatal", what="fatal")
        st = sup.status("dead")
        assert st.reason == "unhealthy: connection refused; gave up after 1 restart(s)"
        assert st.restarts_by_reason == {"unhealthy": 1} and st.health == "unknown"


async def test_action_none_only_reports_and_recovers(tmp_path: Path) -> None:
    port, mode = free_port(), tmp_path / "mode"
    svc = service("api", child("health_server.py", port, "--mode-file", mode), start_period_s=0.1,
                  health=probe_spec(port, failures=2, action=HealthAction.NONE))
    async with supervising(config(tmp_path, svc)) as sup:
        await wait_for(lambda: sup.status("api").health == "healthy", what="healthy")
        pid = sup.status("api").pid
        mode.write_text("fail")
        await wait_for(lambda: sup.status("api").health == "unhealthy", what="unhealthy")
        await wait_for(lambda: [m for m, _ in requests(tmp_path, "api")].count("fail") >= 5, what="more probes")
        st = sup.status("api")
        assert st.state == "running" and st.pid == pid and st.restarts == 0
        assert st.health == "unhealthy" and st.health_detail == "status 500"
        mode.write_text("ok")
        await wait_for(lambda: sup.status("api").health == "healthy", what="healthy again")
        assert events(sup, "health_changed", "api") == [  # edges only, never one per probe
            "healthy",
            "unhealthy: status 500 (2 failed probes in a row); action none: not restarted",
            "healthy",
        ]
        assert events(sup, "restart", "api") == []
        st = await sup.stop("api")
        assert st.health == "unknown" and st.health_detail is None  # nothing is known about a stopped one


async def test_a_hanging_probe_does_not_delay_another_services_probes(tmp_path: Path) -> None:
    stuck_port, fine_port, mode = free_port(), free_port(), tmp_path / "mode"
    mode.write_text("hang")
    stuck = service("stuck", child("health_server.py", stuck_port, "--mode-file", mode), start_period_s=0.1,
                    health=probe_spec(stuck_port, every=0.2, timeout=1.5, grace=0, action=HealthAction.NONE))
    fine = service("fine", child("health_server.py", fine_port), start_period_s=0.1,
                   health=probe_spec(fine_port, every=0.2, timeout=1.5))
    async with supervising(config(tmp_path, stuck, fine)) as sup:
        await wait_for(lambda: len(requests(tmp_path, "stuck")) >= 1, what="a hanging probe")
        hang_began = requests(tmp_path, "stuck")[0][1]
        await wait_for(lambda: sum(t > hang_began for _, t in requests(tmp_path, "fine")) >= 8, what="probes")
        times = [t for _, t in requests(tmp_path, "fine") if t > hang_began]
        gaps = [b - a for a, b in itertools.pairwise(times)]
        # Probes of `fine` keep their 0.2 s pace while every probe of `stuck` waits out its 1.5 s timeout.
        assert max(gaps) < 0.75, gaps
        assert sup.status("fine").health == "healthy"


async def test_health_gated_dependency_holds_the_dependant_until_it_answers(tmp_path: Path) -> None:
    port = free_port()
    db = service("db", child("health_server.py", port, "--listen-after", 1.0), start_period_s=0.1,
                 health=probe_spec(port, every=0.1))
    web = service("web", child("ready_then_sleep.py"), depends_on=(Dependency("db", DependencyCondition.HEALTHY),))
    async with supervising(config(tmp_path, web, db)) as sup:
        await wait_for(lambda: sup.status("db").state == "running", what="db running")
        st = sup.status("web")
        assert st.state == "stopped" and st.waiting_for == "db (healthy)"
        assert sup.status("db").health == "unknown"
        await wait_for(lambda: sup.status("web").state == "running", what="web running")
        healthy_at = next(e.at for e in sup.events.since() if e.kind == "health_changed" and e.service == "db")
        web_spawned_at = next(e.at for e in sup.events.since()
                              if e.kind == "state_changed" and e.service == "web")
        assert web_spawned_at >= healthy_at
