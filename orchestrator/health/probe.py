"""HTTP health probes: one loop per running child, all over one shared httpx client.

`Prober` owns the client (opened for the supervisor's lifetime) and gives every runner a
`ServiceProbe`, whose `start` is registered in `runner.extra_tasks`: the loop runs in the child's own
task group and ends with it. Each loop is its own task with its own deadline, so a hanging endpoint
costs its own timeout only. Verdicts come from the pure HealthTracker (health.py); health edges are
recorded as `health_changed` events, and an unhealthy verdict with `action: restart` goes to the
runner as `Unhealthy`, which the state machine answers with the restart policy.

httpx itself (with http.cookiejar, urllib.request and idna) is imported when the client is built, at
the first probe or ComfyUI request, never at import: a config with neither runs without it. Idle RSS
of `orchestrator run` with 2 children, no rich installed: 40.6 MiB before, 38.4 after (3 rounds
interleaved; the floor of the unavoidable imports with an idle loop is 33.5; issue 16).
"""

from __future__ import annotations

import sys
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

import anyio
import structlog
from anyio.abc import TaskGroup

from orchestrator.config.spec import HealthAction, HealthSpec
from orchestrator.core.events import EventLog
from orchestrator.core.machine import Unhealthy
from orchestrator.core.runner import ServiceRunner
from orchestrator.health.verdict import Health, HealthTracker, ProbeResult
from orchestrator.platform import Child

if TYPE_CHECKING:
    import httpx

__all__ = ["Prober", "ServiceProbe", "describe_http_error", "format_seconds", "probe_once"]

_log = structlog.get_logger("orchestrator.probe")


def _always(now: float) -> bool:
    return True


class Prober:
    """The shared HTTP client and the probes of every service."""

    def __init__(self, events: EventLog, client: httpx.AsyncClient | None = None) -> None:
        self.events = events
        self._given = client  # injected: the owner opens and closes it
        self._client: httpx.AsyncClient | None = client
        self._open = False

    @property
    def client(self) -> httpx.AsyncClient | None:
        """The shared client while `open` runs, made on first use: a config with no probe and no
        ComfyUI never builds it (its TLS context loads the CA store: 70 ms before the first spawn,
        more under load, and 1.5 MiB)."""
        if self._client is None and self._open:
            # trust_env=False: an HTTP_PROXY in the environment must not route loopback probes elsewhere.
            # No keep-alive: every probe is a fresh connect, as a client would see it, and no stale
            # pooled connection to a restarted child can fail a probe.
            import httpx  # here: a config with no probe and no ComfyUI never imports it (see the docstring)

            from orchestrator.health.nocookies import NoCookies

            limits = httpx.Limits(max_keepalive_connections=0)
            # No cookies: the client is shared by every probe and by the ComfyUI proxy, so a kept cookie
            # would go from one service's health endpoint to ComfyUI, or from one proxy client to all.
            self._client = httpx.AsyncClient(trust_env=False, follow_redirects=False, limits=limits,
                                             cookies=NoCookies.jar())
        return self._client

    @asynccontextmanager
    async def open(self) -> AsyncIterator[None]:
        """The client is available for the lifetime of the block (unless one was injected)."""
        if self._given is not None:
            yield
            return
        self._open = True
        try:
            yield
        finally:
            self._open = False
            client, self._client = self._client, None
            if client is not None:
                await client.aclose()

    def attach(self, runner: ServiceRunner) -> ServiceProbe:
        """Give a runner its probe: it runs with each child while the service has a `health`."""
        probe = ServiceProbe(runner, self)
        runner.probe = probe
        runner.extra_tasks.append(probe.start)
        return probe


class ServiceProbe:
    """One service's probes across its children: the current child's tracker plus the figures."""

    def __init__(self, runner: ServiceRunner, prober: Prober) -> None:
        self.runner = runner
        self.prober = prober
        self.tracker: HealthTracker | None = None  # the current child's; None when nothing runs
        self.last: ProbeResult | None = None  # the last probe of any child (metrics: its duration)
        self.probes_total = 0
        self.failed_total = 0
        # The busy allowance hook (ComfyUI): does a timeout at `now` count as a failure? Default: yes.
        self.timeout_counts: Callable[[float], bool] = _always
        self.listeners: list[Callable[[ProbeResult], None]] = []  # called after every probe

    @property
    def detail(self) -> str | None:
        """The last failed probe's error while the current child has not answered since; else None."""
        return self.tracker.last_error if self.tracker is not None else None

    @property
    def last_duration_s(self) -> float | None:
        return round(self.last.duration_s, 6) if self.last is not None else None

    def start(self, child: Child, tg: TaskGroup) -> None:
        if self.runner.spec.health is not None:
            tg.start_soon(self.run)

    async def run(self) -> None:
        """Probe the current child until cancelled (the child ended) or health is configured away."""
        spec = self.runner.spec.health
        if spec is None:
            return
        last_at = anyio.current_time()
        tracker = self.tracker = HealthTracker(spec, last_at)
        try:
            while (spec := self.runner.spec.health) is not None:
                tracker.spec = spec  # a reload may have changed every/timeout/failures
                await anyio.sleep_until(tracker.next_probe_at(last_at, anyio.current_time()))
                last_at = anyio.current_time()
                self._take(await probe_once(self._client(), spec), tracker)
        finally:
            if self.tracker is tracker:
                self.tracker = None
            self._set_health(Health.UNKNOWN)  # the child is gone: nothing is known about the next one

    def _client(self) -> httpx.AsyncClient:
        if self.prober.client is None:
            raise RuntimeError("health probe running outside Prober.open()")
        return self.prober.client

    def _take(self, result: ProbeResult, tracker: HealthTracker) -> None:
        now = anyio.current_time()
        self.last = result
        self.probes_total += 1
        self.failed_total += not result.ok
        counts = self.timeout_counts(now) if result.timed_out else True
        change = tracker.observe(result, now, timeout_counts=counts)
        for listener in self.listeners:
            try:
                listener(result)
            except Exception:  # a broken listener must not end the probing
                _log.exception("probe_listener_failed", service=self.runner.name)
        if change is None:
            return
        before = self.runner.health
        self._set_health(change)
        self._record(before, change, tracker)
        if change is Health.UNHEALTHY and tracker.spec.action is HealthAction.RESTART:
            self.runner.send(Unhealthy(f"unhealthy: {tracker.last_error}"))

    def _set_health(self, health: Health) -> None:
        if self.runner.health != health:
            self.runner.health = health
            self.runner.notify()  # health-gated depends_on waiters look again

    def _record(self, before: str, after: Health, tracker: HealthTracker) -> None:
        if after is Health.UNHEALTHY:
            message = f"unhealthy: {tracker.last_error} ({tracker.failures} failed probes in a row)"
            if tracker.spec.action is HealthAction.NONE:
                message += "; action none: not restarted"
            level = "warning"
        else:
            message, level = after.value, "info"
        self.runner.events.record("health_changed", message, service=self.runner.name, level=level,
                                  from_health=str(before), to_health=after.value, error=tracker.last_error)


async def probe_once(client: httpx.AsyncClient, spec: HealthSpec) -> ProbeResult:
    """One GET with a hard deadline of `spec.timeout_s`; the body is not read."""
    import httpx  # loaded already: the client passed in is one

    started, wall = anyio.current_time(), time.time()
    status: int | None = None
    error: str | None = None
    timed_out = True  # unless the block below finishes within the deadline
    with anyio.move_on_after(spec.timeout_s):
        try:
            async with client.stream("GET", spec.url, timeout=spec.timeout_s) as response:
                status = response.status_code
            timed_out = False
        except httpx.TimeoutException:
            pass  # httpx's own timeout: the same verdict as our deadline
        except Exception as exc:  # any failure to get an answer is a failed probe, never a crash
            timed_out = False
            error = describe_http_error(exc)
    duration = anyio.current_time() - started
    if timed_out:
        error = f"timeout after {format_seconds(spec.timeout_s)}"
    elif status is not None and not _accepted(status, spec.expect_status):
        error = f"status {status}"
    return ProbeResult(ok=error is None, error=error, timed_out=timed_out, status=status,
                       duration_s=duration, at=started, wall=wall)


def _accepted(status: int, expect: tuple[int, ...]) -> bool:
    return status in expect if expect else 200 <= status < 300


def describe_http_error(exc: BaseException) -> str:
    """A short reason: "connection refused", "cannot connect: <why>", or the error's own words."""
    leaves = list(_leaf_causes(exc))
    if leaves and all(isinstance(e, ConnectionRefusedError) for e in leaves):
        return "connection refused"
    httpx = sys.modules.get("httpx")  # an httpx error implies httpx is loaded; nothing to import here
    if httpx is not None and isinstance(exc, httpx.ConnectError):
        return f"cannot connect: {_short(leaves[-1] if leaves else exc)}"
    return f"{type(exc).__name__}: {_short(exc)}"


def _leaf_causes(exc: BaseException, depth: int = 0) -> list[BaseException]:
    """The innermost errors behind an exception: down the cause chain, into exception groups."""
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for inner in exc.exceptions for leaf in _leaf_causes(inner, depth + 1)]
    inner = exc.__cause__ or exc.__context__
    if inner is None or depth > 10:
        return [exc]
    return _leaf_causes(inner, depth + 1)


def _short(exc: BaseException, limit: int = 120) -> str:
    text = str(exc) or type(exc).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


def format_seconds(seconds: float) -> str:
    """5.0 -> "5s", 0.25 -> "0.25s", 90 -> "90s": how a timeout reads in a reason."""
    return f"{seconds:g}s"
