"""Supervisor: the set of service runners, their dependency order, and the commands on them."""

from __future__ import annotations

import os
from collections.abc import Callable, Coroutine, Iterable, Mapping
from typing import Any

import anyio
import httpx
import structlog
from anyio.abc import TaskGroup, TaskStatus

from orchestrator.comfy.model import ComfyUI
from orchestrator.config.spec import Config, DependencyCondition, ServiceSpec
from orchestrator.core.events import EventLog
from orchestrator.core.machine import ALIVE_STATES, IDLE_STATES, ProcessState, Restart, Start, Stop
from orchestrator.core.resources import NO_USAGE, ResourceMonitor
from orchestrator.core.runner import GROUP_POLL_S, KILL_WAIT_S, PIPE_DRAIN_S, ServiceRunner
from orchestrator.core.statefile import RUN_MARKER, ChildRegistry
from orchestrator.core.status import DRAINING, ServiceStatus
from orchestrator.errors import UnknownServiceError
from orchestrator.health.checks import SystemChecks
from orchestrator.health.probe import Prober
from orchestrator.platform import Platform, current
from orchestrator.reload.reloader import Reloader, ReloadResult

__all__ = ["Supervisor"]

_log = structlog.get_logger("orchestrator.supervisor")

COMMAND_ACK_S = 30.0  # a runner takes a queued command within this, or something is badly wrong


class Supervisor:
    def __init__(
        self,
        config: Config,
        *,
        platform: Platform | None = None,
        events: EventLog | None = None,
        environ: Mapping[str, str] | None = None,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        self.config = config
        self.platform = platform or current()
        self.events = events or EventLog(config.events_max)
        self.registry = ChildRegistry(config.state_dir)
        self.environ = {**(environ if environ is not None else os.environ), RUN_MARKER: self.registry.run_id}
        self.prober = Prober(self.events, http)  # health probes; their shared client lives in run()
        self.checks = SystemChecks(config.checks, self.events)  # disk and memory, looping in run()
        self.runners: dict[str, ServiceRunner] = {}
        self.started_at = anyio.current_time()
        self._tg: TaskGroup | None = None
        self._done = anyio.Event()
        self._finished: dict[str, anyio.Event] = {}  # set when a runner's run() has returned
        self.shutting_down = False
        self.comfy = ComfyUI(self.runners, config.state_dir, self.prober)  # acts on the `comfy:` service
        self.resources = ResourceMonitor(self.runners, config.status_every_s)  # sampled when status is read
        for spec in config.services.values():
            self.runners[spec.name] = self._make_runner(spec)
        self.reloader = Reloader(self)
        self.reloader.before_stop.append(self.comfy.drain_before_stop)
        self.reloader.on_applied.append(self._follow_reload)

    def _make_runner(self, spec: ServiceSpec) -> ServiceRunner:
        runner = ServiceRunner(
            spec,
            self.config.logs,
            platform=self.platform,
            events=self.events,
            registry=self.registry,
            environ=self.environ,
        )
        self.prober.attach(runner)
        self.comfy.attach(runner)
        return runner

    # -- lifetime ------------------------------------------------------------------------------------
    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Run every runner until shutdown(); autostart services start in dependency order."""
        self._reap_leftovers()
        self.comfy.prepare()
        async with self.prober.open(), anyio.create_task_group() as tg:
            self._tg = tg
            tg.start_soon(self.checks.run)
            tg.start_soon(self.resources.run)
            for runner in self.runners.values():
                tg.start_soon(self._run_runner, runner)
            tg.start_soon(self.reloader.watch)
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

    def _reap_leftovers(self) -> None:
        run_id, leftovers = self.registry.load_leftovers()
        if leftovers:
            for line in self.platform.reap_leftovers(leftovers, run_id):
                self.events.record("orphan_killed", f"killed leftover of a previous run: {line}",
                                   level="warning")
        self.registry.clear()

    async def shutdown(self) -> None:
        """Stop everything, dependants before what they depend on, then end run()."""
        self.shutting_down = True
        try:
            await self.stop_many(list(self.runners), "supervisor shutting down")
        finally:
            self._done.set()

    # -- reload (the work is in reloader.py) --------------------------------------------------------------
    async def reload(self, new_config: Config | None = None, *, trigger: str = "api",
                     dry_run: bool = False) -> ReloadResult:
        """Apply a new config (None: re-read the config file). Never raises; see ReloadResult."""
        if new_config is None:
            return await self.reloader.reload_from_disk(trigger=trigger, dry_run=dry_run)
        return await self.reloader.apply(new_config, trigger=trigger, dry_run=dry_run)

    def _follow_reload(self, old: Config, new: Config, plan: object) -> None:
        self.resources.every_s = new.status_every_s
        if new.checks != old.checks:
            self.checks.configure(new.checks)  # a check kept across the reload keeps its state

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
        return _status_of(runner)

    def statuses(self) -> list[ServiceStatus]:
        self.resources.want()
        return [_status_of(r) for r in self.runners.values()]

    def system_status(self) -> dict[str, Any]:
        """The machine checks' last readings: {"disk": [...], "memory": {...} or None} (CheckStatus dicts)."""
        checks = self.checks.statuses()
        memory = [c.to_dict() for c in checks if c.kind == "memory"]
        return {"disk": [c.to_dict() for c in checks if c.kind == "disk"], "memory": memory[0] if memory else None}

    # -- commands ----------------------------------------------------------------------------------
    async def start(self, name: str) -> ServiceStatus:
        """Start a service (and what it depends on); returns once it is spawned or waiting."""
        runner = self.runner(name)
        if runner.state in ALIVE_STATES or runner.waiting_for is not None:
            return _status_of(runner)
        if not runner.spec.depends_on:
            await self._command(runner, Start("started by hand"))
        else:
            self._schedule_start(name)
        return _status_of(runner)

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
        return _status_of(runner)

    async def restart(self, name: str, *, drain: bool = False) -> ServiceStatus:
        """Restart a service. `drain` (the `comfy:` service only) first waits for ComfyUI's queue."""
        runner = self.runner(name)
        if drain and self.comfy.runner is runner and runner.state in ALIVE_STATES:
            await self.comfy.drained(lambda why: self._restart(runner, f"restarted by hand after drain: {why}"))
            return _status_of(runner)
        return await self._restart(runner, "restarted by hand")

    async def _restart(self, runner: ServiceRunner, reason: str) -> ServiceStatus:
        if runner.state in IDLE_STATES and runner.spec.depends_on:
            return await self.start(runner.name)
        spawns = runner.machine.spawns
        await self._command(runner, Restart(reason))
        await runner.wait_until(
            lambda r: r.machine.spawns > spawns or r.state in IDLE_STATES, _stop_budget(runner)
        )
        return _status_of(runner)

    async def ignite(self) -> list[ServiceStatus]:
        """Start every service that is not running (the old panel's `ignite`)."""
        for name, runner in self.runners.items():
            if runner.state not in ALIVE_STATES:
                await self.start(name)
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
    def _schedule_start(self, name: str) -> None:
        runner = self.runners[name]
        if self._tg is None or runner.waiting_for is not None:
            return
        runner.waiting_for = ", ".join(f"{d.name} ({d.condition.value})" for d in runner.spec.depends_on)
        self._tg.start_soon(self._start_after_dependencies, runner)

    async def _start_after_dependencies(self, runner: ServiceRunner) -> None:
        for dep in runner.spec.depends_on:
            other = self.runners.get(dep.name)
            if other is None:
                continue
            if other.state in IDLE_STATES and other.waiting_for is None:
                self._schedule_start(dep.name)
            def settled(r: ServiceRunner, condition: DependencyCondition = dep.condition) -> bool:
                gave_up = r.state is ProcessState.FATAL or runner.waiting_for is None
                return gave_up or _satisfied(r, condition)

            await other.wait_until(settled, float("inf"))
            if runner.waiting_for is None:  # cancelled by a stop meanwhile
                return
            if not _satisfied(other, dep.condition):
                runner.waiting_for = None
                self.events.record("dependency_failed", f"not started: {dep.name} is {other.state.value}",
                                   service=runner.name, level="warning")
                runner.notify()
                return
        runner.waiting_for = None
        await self._command(runner, Start("started"))


def _satisfied(runner: ServiceRunner, condition: DependencyCondition) -> bool:
    if runner.state is not ProcessState.RUNNING:
        return False
    return condition is DependencyCondition.RUNNING or runner.health == "healthy"


def _stop_budget(runner: ServiceRunner) -> float:
    return runner.spec.stop.timeout_s + KILL_WAIT_S + PIPE_DRAIN_S + GROUP_POLL_S * 10 + 5.0


def _status_of(runner: ServiceRunner) -> ServiceStatus:
    m = runner.machine
    now = anyio.current_time()
    alive = m.state in ALIVE_STATES and m.spawned_at is not None
    # Draining is not a machine state: the child runs on while the supervisor waits for its queue.
    draining = runner.draining if m.state is ProcessState.RUNNING else None
    usage = runner.usage if alive and runner.usage.pid == m.pid else NO_USAGE  # never a former child's
    return ServiceStatus(
        name=runner.name,
        state=DRAINING if draining is not None else m.state.value,
        health=runner.health,
        pid=m.pid,
        started_at=runner.started_at if alive else None,
        uptime_s=round(now - m.spawned_at, 3) if alive and m.spawned_at is not None else None,
        restarts=sum(m.restarts.values()),
        restarts_by_reason=dict(m.restarts),
        attempts=m.attempts,
        exit_code=m.last_exit,
        reason=f"waiting for {runner.waiting_for}" if runner.waiting_for else draining or m.reason,
        waiting_for=runner.waiting_for,
        health_detail=runner.probe.detail if runner.probe is not None else None,
        processes=usage.processes,
        rss_bytes=usage.rss_bytes,
        cpu_percent=usage.cpu_percent,
        cpu_seconds=usage.cpu_seconds,
        ports=list(usage.ports),
        health_check_duration_s=_last_probe_s(runner),
    )


def _last_probe_s(runner: ServiceRunner) -> float | None:
    last = runner.probe.last if runner.probe is not None else None
    return round(last.duration_s, 6) if last is not None else None
