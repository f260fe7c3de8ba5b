"""Health verdicts on a fake clock: grace, consecutive failures, the busy allowance, probe cadence."""

from __future__ import annotations

from orchestrator.config.spec import HealthSpec
from orchestrator.health.verdict import STARTUP_PROBE_S, Health, HealthTracker, ProbeResult

H = Health


def spec(grace: float = 10.0, failures: int = 3, every: float = 5.0) -> HealthSpec:
    return HealthSpec(url="http://127.0.0.1:1/", every_s=every, timeout_s=1.0, grace_s=grace, failures=failures)


def ok(at: float) -> ProbeResult:
    return ProbeResult(ok=True, error=None, timed_out=False, status=200, duration_s=0.01, at=at, wall=at)


def refused(at: float) -> ProbeResult:
    return ProbeResult(ok=False, error="connection refused", timed_out=False, status=None, duration_s=0.0,
                       at=at, wall=at)


def timeout(at: float) -> ProbeResult:
    return ProbeResult(ok=False, error="timeout after 1s", timed_out=True, status=None, duration_s=1.0,
                       at=at, wall=at)


def test_failures_during_grace_do_not_count_and_health_stays_unknown() -> None:
    t = HealthTracker(spec(grace=10.0, failures=2), started_at=0.0)
    for now in (1.0, 2.0, 3.0, 9.9):
        assert t.observe(refused(now), now) is None
    assert t.health is H.UNKNOWN and t.failures == 0 and t.last_error == "connection refused"
    assert t.observe(refused(10.0), 10.0) is None  # grace over: this one counts
    assert t.observe(refused(11.0), 11.0) is H.UNHEALTHY
    assert t.failures == 2


def test_first_success_ends_grace_early() -> None:
    t = HealthTracker(spec(grace=60.0, failures=2), started_at=0.0)
    assert t.observe(ok(1.0), 1.0) is H.HEALTHY
    assert not t.in_grace(2.0)
    assert t.observe(refused(2.0), 2.0) is None
    assert t.observe(refused(3.0), 3.0) is H.UNHEALTHY


def test_only_consecutive_failures_count_and_only_edges_are_reported() -> None:
    t = HealthTracker(spec(grace=0.0, failures=3), started_at=0.0)
    assert t.observe(ok(1.0), 1.0) is H.HEALTHY
    assert t.observe(ok(2.0), 2.0) is None  # no edge, no report
    assert t.observe(refused(3.0), 3.0) is None
    assert t.observe(refused(4.0), 4.0) is None
    assert t.observe(ok(5.0), 5.0) is None  # still healthy: the count starts again
    assert t.failures == 0 and t.last_error is None
    for now in (6.0, 7.0):
        assert t.observe(refused(now), now) is None
    assert t.observe(refused(8.0), 8.0) is H.UNHEALTHY
    assert t.observe(refused(9.0), 9.0) is None  # already unhealthy: no second verdict
    assert t.observe(ok(10.0), 10.0) is H.HEALTHY


def test_busy_allowance_skips_timeouts_but_never_a_refused_connection() -> None:
    t = HealthTracker(spec(grace=0.0, failures=2), started_at=0.0)
    t.observe(ok(1.0), 1.0)
    for now in (2.0, 3.0, 4.0):
        assert t.observe(timeout(now), now, timeout_counts=False) is None
    assert t.failures == 0 and t.health is H.HEALTHY
    assert t.observe(refused(5.0), 5.0, timeout_counts=False) is None
    assert t.observe(timeout(6.0), 6.0, timeout_counts=True) is H.UNHEALTHY


def test_probe_cadence_is_fast_until_the_first_answer_within_grace_then_every() -> None:
    t = HealthTracker(spec(grace=30.0, every=15.0), started_at=0.0)
    assert t.next_probe_at(0.0, 0.0) == STARTUP_PROBE_S
    t.observe(refused(1.0), 1.0)
    assert t.next_probe_at(1.0, 1.0) == 1.0 + STARTUP_PROBE_S
    t.observe(ok(2.0), 2.0)
    assert t.next_probe_at(2.0, 2.0) == 17.0
    assert t.next_probe_at(2.0, 40.0) == 40.0  # a probe that overran is followed at once, not in the past


def test_without_an_answer_the_cadence_slows_to_every_when_grace_ends() -> None:
    t = HealthTracker(spec(grace=3.0, every=15.0), started_at=0.0)
    assert t.next_probe_at(2.0, 2.5) == 3.0
    assert t.next_probe_at(3.0, 3.5) == 18.0
