"""Health verdicts from probe results: grace, consecutive failures, the busy allowance. Pure, no I/O.

The probe loop (probe.py) feeds each result with the current monotonic time; the tracker answers
with the new health when it changed. Tests drive it with plain floats as the clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from orchestrator.config.spec import HealthSpec

__all__ = ["STARTUP_PROBE_S", "Health", "HealthTracker", "ProbeResult"]

# Until the first answer, within grace, probe at least this often: a service that is up in two
# seconds should not wait a whole `every` (15 s) before its health-gated dependants start.
STARTUP_PROBE_S = 1.0


class Health(StrEnum):
    UNKNOWN = "unknown"  # no verdict yet, or still in grace
    HEALTHY = "healthy"
    UNHEALTHY = "unhealthy"


@dataclass(frozen=True, slots=True)
class ProbeResult:
    ok: bool
    error: str | None  # short and human: "timeout after 5s", "connection refused", "status 500"
    timed_out: bool  # the probe ran out of time (the busy allowance applies to these only)
    status: int | None  # the HTTP status, when one came back
    duration_s: float
    at: float  # monotonic time the probe started
    wall: float  # the same moment as epoch seconds, for humans


class HealthTracker:
    """One child's health. `observe()` returns the new health when a result changes it, else None."""

    def __init__(self, spec: HealthSpec, started_at: float) -> None:
        self.spec = spec
        self.started_at = started_at
        self.health = Health.UNKNOWN
        self.answered = False  # a probe has succeeded since this child started: grace is over
        self.failures = 0  # consecutive failures that counted
        self.last_error: str | None = None

    def in_grace(self, now: float) -> bool:
        return not self.answered and now < self.started_at + self.spec.grace_s

    def next_probe_at(self, last_probe_at: float, now: float) -> float:
        """When the next probe is due: `every` after the last one started (never in the past)."""
        every = self.spec.every_s
        if self.in_grace(now):
            every = min(every, STARTUP_PROBE_S)
        return max(now, last_probe_at + every)

    def observe(self, result: ProbeResult, now: float, *, timeout_counts: bool = True) -> Health | None:
        """Take one probe result. `timeout_counts=False` (busy allowance): a timeout does not count."""
        before = self.health
        if result.ok:
            self.answered = True
            self.failures = 0
            self.last_error = None
            self.health = Health.HEALTHY
        else:
            self.last_error = result.error
            if self._counts(result, now, timeout_counts):
                self.failures += 1
                if self.failures >= self.spec.failures:
                    self.health = Health.UNHEALTHY
        return self.health if self.health is not before else None

    def _counts(self, result: ProbeResult, now: float, timeout_counts: bool) -> bool:
        if self.in_grace(now):
            return False
        return timeout_counts or not result.timed_out
