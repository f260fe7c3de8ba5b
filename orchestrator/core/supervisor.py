"""Supervisor: the set of service runners, their dependency order, and the commands on them.

The core builds no health probe, machine check, ComfyUI model or reloader: the composition root
(app.py) plugs them in through `add_runner_hook`, `companions`, `drainer` and `system_report`, so
this package imports nothing above it.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Mapping
from typing import Any, Protocol

import anyio
import structlog
from anyio.abc import TaskGroup, TaskStatus

from orchestrator.config.spec import Config, DependencyCondition, ServiceSpec
from orchestrator.core.events import EventLog
from orchestrator.core.history import ComfyPoint, History, Sample, run_sampler
from orchestrator.core.machine import ALIVE_STATES, IDLE_STATES, NotStarted, ProcessState, Restart, Start, Stop
from orchestrator.core.resources import NO_USAGE, ResourceMonitor
from orchestrator.core.runner import GROUP_POLL_S, KILL_WAIT_S, PIPE_DRAIN_S, ServiceRunner
from orchestrator.core.statefile import ChildRegistry
from orchestrator.core.status import DRAINING, NO_PROBE, ServiceStatus
from orchestrator.core.strays import STRAY_KILL_WAIT_S, kill_earlier_runs, run_markers
from orchestrator.errors import OrchestratorError, UnknownServiceError
from orchestrator.platform import Platform, current
from orchestrator.platform.common import same_process_alive

__all__ = ["CannotSignal", "Drainer", "NotDrainable", "RunnerHook", "Supervisor", "SystemReport"]

_log = structlog.get_logger("orchestrator.supervisor")

COMMAND_ACK_S = 30.0  # a runner takes a queued command within this, or something is badly wrong
ADOPTED_REAP_S = 5.0  # as subreaper: how often ended orphans are reaped (a zombie holds only a pid)
# How often the allocator's free memory goes back to the OS: under bench/rss_soak.py's mix RSS stays at
# 46-47 MiB with it against 68 MiB at 10 minutes and still creeping without; a trim costs a few ms in a thread.
RELEASE_MEMORY_S = 60.0

RunnerHook = Callable[[ServiceRunner], None]  # called once for every runner, present and future
SystemReport = Callable[[], dict[str, Any]]  # the machine checks' readings, JSON-ready


class Drainer(Protocol):
    """Restarts that wait for a queue to empty first (ComfyUI's; comfy/model.py plugs in here)."""

    def drains(self, runner: ServiceRunner) -> bool:
        """Whether `runner`'s service is the one this drainer can drain."""
        ...

    async def drained(self, then: Callable[[str], Awaitable[object]]) -> None:
        """Wait for the queue to empty (bounded), then `then(why)`; not called if the service moved on."""
        ...


class NotDrainable(OrchestratorError):
    """`restart --drain` of a service without a queue to wait for (the API answers 409)."""


class CannotSignal(OrchestratorError):
    """A signal for a service with no child, or one this system lacks (the API answers 409)."""


def _no_checks() -> dict[str, Any]:
    return {"disk": [], "memory": None}


class Supervisor:
    def __init__(
        self,
        config: Config,
        *,
        platform: Platform | None = None,
        events: EventLog | None = None,
        environ: Mapping[str, str] | None = None,
        history: History | None = None,
    ) -> None:
        self.config = config
        self.platform = platform or current()
        self.events = events or EventLog(config.events_max)
        self.registry = ChildRegistry(config.state_dir)
        base = environ if environ is not None else os.environ
        self.environ = {**base, **run_markers(self.registry.run_id, config.state_dir)}
        # Set by the process that is the supervisor and nothing else (the CLI's `run`): become a child
        # subreaper (Linux) and treat every child we did not spawn as an orphan of our services.
        self.adopt_orphans = False
        self.runners: dict[str, ServiceRunner] = {}
        self.started_at = anyio.current_time()
        self._tg: TaskGroup | None = None
        self._done = anyio.Event()
        self._finished: dict[str, anyio.Event] = {}  # set when a runner's run() has returned
        self.shutting_down = False
        self.resources = ResourceMonitor(self.runners, config.status_every_s)  # sampled when status is read
        # What the composition root plugs in: hooks on every runner (health probes, ComfyUI), tasks
        # that live as long as the supervisor runs (machine checks, the config watcher), the drain
        # behind `restart --drain`, and the machine checks' readings for status.
        self._runner_hooks: list[RunnerHook] = []
        self.companions: list[Callable[[], Coroutine[Any, Any, None]]] = []
        self.drainer: Drainer | None = None
        self.system_report: SystemReport = _no_checks
        self.history = history or History()  # the dashboard's charts: a point every history.every_s
        self.history_comfy: Callable[[], ComfyPoint | None] = lambda: None  # ComfyUI's part (app.py plugs it)
        for spec in config.services.values():
            self.runners[spec.name] = self._make_runner(spec)

    def add_runner_hook(self, hook: RunnerHook) -> None:
        """Call `hook` on every runner now and on every runner a reload adds later."""
        self._runner_hooks.append(hook)
        for runner in self.runners.values():
            hook(runner)

    def _make_runner(self, spec: ServiceSpec) -> ServiceRunner:
        runner = ServiceRunner(
            spec,
            self.config.logs,
            platform=self.platform,
            events=self.events,
            registry=self.registry,
            environ=self.environ,
        )
        for hook in self._runner_hooks:
            hook(runner)
        return runner

    # -- lifetime ------------------------------------------------------------------------------------
    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Run every runner until shutdown(); autostart services start in dependency order."""
        await self._reap_leftovers()
        subreaper = self.adopt_orphans and self.platform.become_subreaper()
        async with anyio.create_task_group() as tg:
            self._tg = tg
            if subreaper:
                tg.start_soon(self._reap_adopted)
            tg.start_soon(self._release_memory)
            tg.start_soon(self.resources.run)
            for companion in self.companions:
                tg.start_soon(companion)
            tg.start_soon(run_sampler, self.history, self._history_sample)
            for runner in self.runners.values():
                tg.start_soon(self._run_runner, runner)
            for name, runner in self.runners.items():
                if runner.spec.autostart:
                    self._schedule_start(name)
            task_status.started()
            await self._done.wait()
            tg.cancel_scope.cancel()

    async def _run_runner(self, runner: ServiceRunner) -> None:
        self._finished[runner.name] = done = anyio.Event()
        try:
            await runner.run()
        finally:
            done.set()

    async def _reap_adopted(self) -> None:
        while True:
            await anyio.sleep(ADOPTED_REAP_S)
            await anyio.to_thread.run_sync(self.platform.reap_adopted)

    async def _release_memory(self) -> None:
        while True:
            await anyio.sleep(RELEASE_MEMORY_S)
            await anyio.to_thread.run_sync(self.platform.release_free_memory)

    async def _reap_leftovers(self) -> None:
        last = self.registry.load_leftovers()
        pid = last.supervisor_pid
        # The record's writer still runs (it shares our state directory without the lock: an embedding,
        # or an older version): its children are alive because it keeps them so. Never touch them.
        if pid is not None and pid != os.getpid() and same_process_alive(pid, last.supervisor_started):
            self.events.record("leftovers_kept", f"children.json belongs to a live supervisor (pid {pid}): "
                               "its children were left alone", level="warning")
        elif last.children:
            for line in self.platform.reap_leftovers(last.children, last.run_id):
                self.events.record("orphan_killed", f"killed leftover of a previous run: {line}",
                                   level="warning")
        # Whatever the record says (a clean shutdown cut short, a record lost with the disk): every
        # process of this state directory's earlier runs whose supervisor is gone.
        for line in await kill_earlier_runs(self.platform, self.registry.run_id, self.config.state_dir):
            self.events.record("orphan_killed", f"killed leftover of a previous run (by marker): {line}",
                               level="warning")
        self.registry.clear()

    async def shutdown(self) -> None:
        """Stop everything, dependants before what they depend on, then end run()."""
        self.shutting_down = True
        try:
            await self.stop_many(list(self.runners), "supervisor shutting down")
            # Orphans re-parented to us that no marker tied to a service (they cleared their environment).
            for line in await anyio.to_thread.run_sync(self.platform.kill_adopted, STRAY_KILL_WAIT_S):
                self.events.record("orphan_killed", f"killed an adopted orphan at shutdown: {line}",
                                   level="warning")
        finally:
            self._done.set()

    # -- runners added and removed at runtime (by a reload) ------------------------------------------
    def add_runner(self, spec: ServiceSpec) -> ServiceRunner:
        """A new service at runtime: its runner runs in our task group (not started yet)."""
        if self._tg is None:
            raise RuntimeError("Supervisor.add_runner() needs run() going")
        runner = self.runners[spec.name] = self._make_runner(spec)
        self._tg.start_soon(self._run_runner, runner)
        return runner

    async def remove_runner(self, name: str) -> None:
        """Stop a service, tree and all, end its runner (closing its logs) and forget it."""
        await self.stop(name, "removed from the config")
        runner = self.runners[name]
        runner.cancel_scope.cancel()
        finished = self._finished.get(name)
        if finished is not None:
            await finished.wait()
        del self.runners[name]
        self._finished.pop(name, None)

    def background(self, func: Callable[[], Coroutine[Any, Any, None]]) -> bool:
        """Run `func` in our task group (ended with us); False when we are not running."""
        if self._tg is None or self._done.is_set():
            return False
        self._tg.start_soon(func)
        return True

    # -- queries -----------------------------------------------------------------------------------
    def runner(self, name: str) -> ServiceRunner:
        try:
            return self.runners[name]
        except KeyError:
            raise UnknownServiceError(name, list(self.runners)) from None

    def status(self, name: str) -> ServiceStatus:
        """A service's status; its resource figures are at most `status.every` old (await
        `resources.refresh()` first to be sure of that; otherwise this asks for a refresh)."""
        runner = self.runner(name)
        self.resources.want()
        return self._status_of(runner)

    def statuses(self, *, sample: bool = True) -> list[ServiceStatus]:
        """`sample=False`: the figures as they are, without asking for a fresher sample (the live feed)."""
        if sample:
            self.resources.want()
        now = anyio.current_time()  # once: 100 services made it 7% of a status answer's time (py-spy)
        return [self._status_of(r, now) for r in self.runners.values()]

    def _status_of(self, runner: ServiceRunner, now: float | None = None) -> ServiceStatus:
        return _status_of(runner, self._waiting(runner), now)

    def _waiting(self, runner: ServiceRunner) -> str | None:
        """Why a start is held, naming only the conditions still unmet and where each one stands."""
        if runner.waiting_for is None:
            return None
        unmet = []
        for dep in runner.spec.depends_on:
            other = self.runners.get(dep.name)
            if other is None or _satisfied(other, dep.condition):
                continue
            now = f"health {other.health}" if other.state is ProcessState.RUNNING else other.state.value
            unmet.append(f"{dep.name} to be {dep.condition.value} (now {now})")
        return f"waiting for {', '.join(unmet)}" if unmet else "starting: its dependencies are met"

    async def _history_sample(self) -> Sample:
        await self.resources.refresh()  # shared with the status readers: at most one sample per status.every
        services = {s.name: (s.cpu_percent, s.rss_bytes) for s in map(_status_of, self.runners.values())}
        return Sample(time.time(), services, self.history_comfy())

    def system_status(self) -> dict[str, Any]:
        """The machine checks' last readings: {"disk": [...], "memory": {...} or None} (CheckStatus dicts)."""
        return self.system_report()

    # -- commands ----------------------------------------------------------------------------------
    async def start(self, name: str, reason: str = "started by hand") -> ServiceStatus:
        """Start a service (and what it depends on); returns once it is spawned or waiting. `reason`
        says who asked (by hand, by ignite, by reload): it becomes the event's and the status's."""
        runner = self.runner(name)
        if runner.state in ALIVE_STATES or runner.waiting_for is not None:
            return self._status_of(runner)
        # Nothing to wait for: start now, with no "waiting for" answer. Not for `completed`: a start
        # runs the job again and waits for that run (an earlier run's end does not count).
        if all(dep.name in self.runners and dep.condition is not DependencyCondition.COMPLETED
               and _satisfied(self.runners[dep.name], dep.condition) for dep in runner.spec.depends_on):
            await self._command(runner, Start(reason))
        else:
            self._schedule_start(name, reason)
        return self._status_of(runner)

    async def stop(self, name: str, reason: str = "stopped by hand") -> ServiceStatus:
        """Stop a service; returns once its whole process tree is gone."""
        runner = self.runner(name)
        if runner.waiting_for is not None:
            runner.waiting_for = None
            for dep in runner.spec.depends_on:  # wake its pending start so that it sees the stop
                if dep.name in self.runners:
                    self.runners[dep.name].notify()
        if runner.state not in IDLE_STATES:
            await self._command(runner, Stop(reason))
            await runner.wait_until(lambda r: r.state in IDLE_STATES, _stop_budget(runner))
        return self._status_of(runner)

    async def restart(self, name: str, *, drain: bool = False) -> ServiceStatus:
        """Restart a service. `drain` (the `comfy:` service only) first waits for ComfyUI's queue."""
        runner = self.runner(name)
        drainer = self.drainer
        if drain and drainer is not None and drainer.drains(runner) and runner.state in ALIVE_STATES:
            await drainer.drained(lambda why: self._restart(runner, f"restarted by hand after drain: {why}"))
            return self._status_of(runner)
        if drain and (drainer is None or not drainer.drains(runner)):
            raise NotDrainable(f"{name} has no queue to drain: --drain is for the service with `comfy:`;"
                               " restart it without --drain")
        return await self._restart(runner, "restarted by hand")

    async def _restart(self, runner: ServiceRunner, reason: str) -> ServiceStatus:
        if runner.state in IDLE_STATES and runner.spec.depends_on:
            return await self.start(runner.name, reason)
        spawns = runner.machine.spawns
        await self._command(runner, Restart(reason))
        await runner.wait_until(
            lambda r: r.machine.spawns > spawns or r.state in IDLE_STATES, _stop_budget(runner)
        )
        return self._status_of(runner)

    async def signal(self, name: str, signal_name: str) -> ServiceStatus:
        """Send a signal to the service's whole process group; its state follows what the child does
        (a SIGTERM that ends it is an exit like any other, judged by its restart policy)."""
        runner = self.runner(name)
        child = runner.child
        if child is None or runner.state not in ALIVE_STATES:
            raise CannotSignal(f"{name} is {runner.state.value}: no process to signal")
        if self.platform.name == "posix" and not hasattr(signal, signal_name):
            raise CannotSignal(f"{signal_name} does not exist on this system")  # SIGBREAK is Windows'

        if signal_name == "SIGKILL":
            self.platform.kill_tree(child)
        else:
            self.platform.signal_tree(child, signal_name)
        self.events.record("signal_sent", f"{signal_name} sent by hand to pid {child.pid}", service=name,
                           signal=signal_name, pid=child.pid)
        return self._status_of(runner)

    async def ignite(self) -> list[ServiceStatus]:
        """Start every service that is not running (the old panel's `ignite`)."""
        for name, runner in self.runners.items():
            if runner.state not in ALIVE_STATES:
                await self.start(name, "started by ignite")
        return self.statuses()

    async def stop_many(self, names: Iterable[str], reason: str = "stopped by hand") -> None:
        """Stop these services concurrently, each only after its dependants among them are stopped."""
        names = [n for n in names if n in self.runners]
        done = {n: anyio.Event() for n in names}

        async def stop_one(name: str) -> None:
            for other in names:
                if any(d.name == name for d in self.runners[other].spec.depends_on):
                    await done[other].wait()
            try:
                await self.stop(name, reason)
            finally:
                done[name].set()

        async with anyio.create_task_group() as tg:
            for name in names:
                tg.start_soon(stop_one, name)

    async def _command(self, runner: ServiceRunner, event: Start | Stop | Restart) -> None:
        seq = runner.send(event)
        await runner.wait_until(lambda r: r.handled >= seq, COMMAND_ACK_S)

    # -- dependencies ------------------------------------------------------------------------------
    def _schedule_start(self, name: str, reason: str = "started") -> None:
        runner = self.runners[name]
        if self._tg is None or runner.waiting_for is not None:
            return
        runner.waiting_for = ", ".join(f"{d.name} ({d.condition.value})" for d in runner.spec.depends_on)
        self._tg.start_soon(self._start_after_dependencies, runner, reason)

    async def _start_after_dependencies(self, runner: ServiceRunner, reason: str) -> None:
        for dep in runner.spec.depends_on:
            other = self.runners.get(dep.name)
            if other is None:
                continue
            since = -1  # `completed`: the run to wait for is the one after this many spawns
            if other.state in IDLE_STATES and other.waiting_for is None:
                since = other.machine.spawns  # we start it now: an earlier run's end does not count
                self._schedule_start(dep.name, f"{reason} (needed by {runner.name})")

            def settled(r: ServiceRunner, condition: DependencyCondition = dep.condition, since: int = since) -> bool:
                if runner.waiting_for is None:  # cancelled by a stop meanwhile
                    return True
                if condition is DependencyCondition.COMPLETED:
                    return r.machine.spawns > since and r.state in IDLE_STATES and r.waiting_for is None
                return r.state is ProcessState.FATAL or _satisfied(r, condition)

            await other.wait_until(settled, float("inf"))
            if runner.waiting_for is None:
                return
            if not _satisfied(other, dep.condition):
                runner.waiting_for = None
                why = f"not started: {dep.name} is {other.state.value} ({other.machine.reason})"
                self.events.record("dependency_failed", why, service=runner.name, level="warning")
                runner.send(NotStarted(why))  # its status says why until it is started again
                runner.notify()
                return
        runner.waiting_for = None
        await self._command(runner, Start(reason))


def _satisfied(runner: ServiceRunner, condition: DependencyCondition) -> bool:
    if condition is DependencyCondition.COMPLETED:
        return runner.state is ProcessState.EXITED and runner.machine.last_exit == 0
    if runner.state is not ProcessState.RUNNING:
        return False
    return condition is DependencyCondition.RUNNING or runner.health == "healthy"


def _stop_budget(runner: ServiceRunner) -> float:
    strays = STRAY_KILL_WAIT_S + 5.0  # the environment scan, then the kill's own wait
    return runner.spec.stop.timeout_s + KILL_WAIT_S + strays + PIPE_DRAIN_S + GROUP_POLL_S * 10 + 5.0


def _status_of(runner: ServiceRunner, waiting: str | None = None, now: float | None = None) -> ServiceStatus:
    """`now`: anyio.current_time(), passed in by a caller that builds many (it is not free)."""
    m = runner.machine
    if now is None:
        now = anyio.current_time()
    alive = m.state in ALIVE_STATES and m.spawned_at is not None
    # Draining is not a machine state: the child runs on while the supervisor waits for its queue.
    draining = runner.draining if m.state is ProcessState.RUNNING else None
    usage = runner.usage if alive and runner.usage.pid == m.pid else NO_USAGE  # never a former child's
    return ServiceStatus(
        name=runner.name,
        state=DRAINING if draining is not None else m.state.value,
        health=runner.health if runner.spec.health is not None else NO_PROBE,
        pid=m.pid,
        started_at=runner.started_at if alive else None,
        uptime_s=round(now - m.spawned_at, 3) if alive and m.spawned_at is not None else None,
        restarts=sum(m.restarts.values()),
        restarts_by_reason=dict(m.restarts),
        attempts=m.attempts,
        exit_code=m.last_exit,
        reason=waiting or draining or m.reason,
        waiting_for=runner.waiting_for,
        health_detail=runner.probe.detail if runner.probe is not None else None,
        processes=usage.processes,
        rss_bytes=usage.rss_bytes,
        cpu_percent=usage.cpu_percent,
        cpu_seconds=usage.cpu_seconds,
        ports=list(usage.ports),
        health_check_duration_s=runner.probe.last_duration_s if runner.probe is not None else None,
    )
