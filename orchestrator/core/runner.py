"""ServiceRunner: the async driver around one ProcessMachine. It owns the child, its pumps and logs.

Everything that happens to a service arrives as an event in the runner's inbox (commands from the
supervisor, the child's exit, health verdicts); the loop feeds each to the machine with the current
time and carries out the actions it returns. Timers are the machine's `next_deadline()`.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping
from contextlib import suppress
from functools import partial
from typing import Any, Protocol

import anyio
import structlog
from anyio.abc import TaskGroup

from orchestrator.config.envfile import env_fingerprint, read_env_file
from orchestrator.config.spec import LogSpec, ServiceSpec
from orchestrator.core.events import EventLog
from orchestrator.core.machine import (
    ALIVE_STATES,
    Action,
    Event,
    Exited,
    Kill,
    ProcessMachine,
    ProcessState,
    SendSignal,
    Spawn,
    Spawned,
    SpawnFailed,
    Timer,
)
from orchestrator.core.ports import port_conflict
from orchestrator.core.resources import NO_USAGE
from orchestrator.core.statefile import ChildRegistry
from orchestrator.core.strays import kill_service_strays
from orchestrator.errors import InvalidTransition, SpawnError
from orchestrator.logs.files import log_path
from orchestrator.logs.sink import LogSink, pump
from orchestrator.platform import Child, Platform
from orchestrator.platform.common import RUN_MARKER, SERVICE_MARKER

__all__ = ["ProbeView", "ServiceRunner", "build_env"]

_log = structlog.get_logger("orchestrator.runner")

GROUP_POLL_S = 0.02  # how often a stop looks for the last member of a process group
KILL_WAIT_S = 5.0  # how long after SIGKILL we wait for the group to vanish
PIPE_DRAIN_S = 2.0  # after the group is gone, how long the pumps may take to reach end of output


def build_env(
    spec: ServiceSpec, base: Mapping[str, str], file_values: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The child's environment: ours, then the env_file, then `env` (each wins over the one before).

    `file_values`: the env_file already read (None: read it here).
    """
    env = dict(base)
    if spec.env_file is not None:
        env.update(read_env_file(spec.env_file) if file_values is None else file_values)
    env.update(spec.env)
    return env


class ProbeView(Protocol):
    """What the core needs of a service's health probe (health/probe.py's ServiceProbe plugs in here)."""

    @property
    def detail(self) -> str | None:
        """The last failed probe's error while the current child has not answered since; else None."""
        ...

    @property
    def last_duration_s(self) -> float | None: ...

    def start(self, child: Child, tg: TaskGroup) -> None:
        """Begin probing `child` in its helper task group (ended with the child)."""
        ...


class ServiceRunner:
    def __init__(
        self,
        spec: ServiceSpec,
        logs: LogSpec,
        *,
        platform: Platform,
        events: EventLog,
        registry: ChildRegistry,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self.spec = spec
        self.machine = ProcessMachine(spec.restart, spec.stop, spec.start_period_s)
        self.platform = platform
        self.events = events
        self.registry = registry
        self.environ = environ if environ is not None else os.environ
        self.stdout = LogSink(logs.dir / f"{spec.name}-stdout.log", logs, on_error=self._sink_error("stdout"))
        self.stderr = LogSink(logs.dir / f"{spec.name}-stderr.log", logs, on_error=self._sink_error("stderr"))
        self.child: Child | None = None
        self.started_at: float | None = None  # wall clock of the current child's spawn, for humans
        self.health = "unknown"  # set by the health probe (probe.py); unknown while nothing answers
        self.probe: ProbeView | None = None  # attached by the health layer (health/probe.py's Prober)
        self.usage = NO_USAGE  # the process tree's figures, kept by the supervisor's ResourceMonitor
        self.env_file_fingerprint: dict[str, str] | None = None  # the env_file as the last spawn read it
        self.extra_tasks: list[Callable[[Child, TaskGroup], None]] = []  # per-child helpers (health loops)
        # Variables added at each spawn from the spec in force (ComfyUI's session path); they win over `env`.
        self.env_hooks: list[Callable[[ServiceSpec], Mapping[str, str]]] = []
        # A child's exit code -> the reason it asked to be restarted, or None (ComfyUI-Manager's marker file).
        self.exit_classifier: Callable[[int], str | None] | None = None
        self.draining: str | None = None  # set while a drained restart waits (ComfyUI's queue), for status
        self._send, self._inbox = anyio.create_memory_object_stream[Event](math.inf)
        self._changed = anyio.Event()
        self._sent = 0
        self.handled = 0  # events taken from the inbox and fed, in order
        self.waiting_for: str | None = None  # set by the supervisor while dependencies hold a start
        self.cancel_scope = anyio.CancelScope()  # cancelling it ends run() with a shielded cleanup
        self._tg: TaskGroup | None = None
        self._helpers: tuple[Child, TaskGroup] | None = None  # the current child's helper task group
        self._log = _log.bind(service=spec.name)

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def state(self) -> ProcessState:
        return self.machine.state

    def send(self, event: Event) -> int:
        """Queue an event; returns its sequence number, reached by `handled` once it was fed."""
        self._sent += 1
        with suppress(anyio.ClosedResourceError):  # the runner has ended; nothing left to act on
            self._send.send_nowait(event)
        return self._sent

    async def wait_until(self, predicate: Callable[[ServiceRunner], bool], timeout_s: float) -> bool:
        """Wait for a condition on this runner to hold; False when the timeout passed first."""
        with anyio.move_on_after(timeout_s):
            while not predicate(self):
                await self._changed.wait()
            return True
        return predicate(self)

    def notify(self) -> None:
        """Wake everything waiting on this runner (state or health changed)."""
        self._changed.set()
        self._changed = anyio.Event()

    def reconfigure(self, spec: ServiceSpec) -> None:
        """Apply a reloaded spec of this service in place; the child, if any, is untouched."""
        self.spec = spec
        self.machine.configure(spec.restart, spec.stop, spec.start_period_s)

    def start_child_helper(self, start_helper: Callable[[Child, TaskGroup], None]) -> bool:
        """Start a per-child helper for the child running now (a health probe a reload added)."""
        if self._helpers is None:
            return False
        start_helper(*self._helpers)
        return True

    def reconfigure_logs(self, logs: LogSpec) -> None:
        """The next line of each stream goes to the file under the new `logs` settings."""
        self.stdout.reconfigure(log_path(logs.dir, self.name, "stdout"), logs)
        self.stderr.reconfigure(log_path(logs.dir, self.name, "stderr"), logs)

    # -- the loop ----------------------------------------------------------------------------------
    async def run(self) -> None:
        try:
            with self.cancel_scope:
                async with anyio.create_task_group() as tg:
                    self._tg = tg
                    await self._loop()
        finally:
            with anyio.CancelScope(shield=True):
                await self._cleanup()

    async def _loop(self) -> None:
        while True:
            deadline = self.machine.next_deadline()
            event: Event = Timer()
            from_inbox = False
            with anyio.CancelScope(deadline=deadline if deadline is not None else math.inf):
                event = await self._inbox.receive()
                from_inbox = True
            try:
                await self.feed(event)
            except InvalidTransition as exc:  # a command that no longer applies (stop of a stopped one)
                self._log.debug("event_ignored", error=str(exc))
            if from_inbox:
                self.handled += 1
                self.notify()

    async def feed(self, event: Event) -> None:
        """Hand one event to the machine and carry out what it asks, feeding back spawn results.

        The events a step records are built before its actions run and recorded after a spawn, not
        before it: recording one (structlog to the console and to orchestrator.log) cost about 0.3 ms
        on the 2-core box, and an exit that restarts at once records two (state_changed, restart),
        which a crash-looping child's next start used to wait for. Their order, and their place
        before the follow-up's (the spawned pid's `running`), stay the same.
        """
        pending: list[Event] = [event]
        while pending:
            ev = pending.pop(0)
            before, restarts = self.machine.state, self.machine.restarts.copy()
            actions = self.machine.handle(ev, anyio.current_time())
            records: list[Callable[[], object]] = []
            if self.machine.state is not before or isinstance(ev, Exited):
                records.append(self._transition_record(before, ev))
            records += [self._restart_record(kind) for kind in self.machine.restarts - restarts]
            spawns = any(isinstance(action, Spawn) for action in actions)
            if not spawns:
                _flush(records)
            for action in actions:
                follow_up = await self._execute(action)
                if follow_up is not None:
                    pending.append(follow_up)
            if spawns:
                _flush(records)
        self.notify()  # after the follow-ups: a waiter sees the spawned pid, not the half-way state

    def _transition_record(self, before: ProcessState, event: Event) -> Callable[[], object]:
        m = self.machine
        fields: dict[str, Any] = {"from_state": before.value, "to_state": m.state.value}
        if m.pid is not None:
            fields["pid"] = m.pid
        if isinstance(event, Exited):
            fields["exit_code"] = event.returncode
        return partial(self.events.record, "state_changed", m.reason, service=self.name, **fields)

    def _restart_record(self, kind: str) -> Callable[[], object]:
        """A restart was decided (now, or after the cooldown): why, and how much budget is spent."""
        m = self.machine
        failure = kind in ("exit", "unhealthy")  # the others (manual, requested) spend no attempt
        budget = f" (attempt {m.attempts} of {m.restart_spec.attempts})" if failure else ""
        return partial(self.events.record, "restart", f"{m.reason}{budget}", service=self.name,
                       level="warning" if failure else "info", cause=kind, attempt=m.attempts)

    async def _execute(self, action: Action) -> Event | None:
        match action:
            case Spawn():
                return await self._spawn()
            case SendSignal(signal):
                if self.child is not None:
                    self.platform.signal_tree(self.child, signal)
            case Kill():
                if self.child is not None:
                    self._log.warning("stop_timeout_kill", pid=self.child.pid)
                    self.platform.kill_tree(self.child)
        return None

    async def _spawn(self) -> Event:
        spec = self.spec
        if spec.ports:  # a port already held: say by whom instead of starting a child that cannot bind
            conflict = await anyio.to_thread.run_sync(port_conflict, spec.ports)
            if conflict is not None:
                return SpawnFailed(conflict)
        try:
            file_values = read_env_file(spec.env_file) if spec.env_file is not None else {}
            env = build_env(spec, self.environ, file_values)
            for hook in self.env_hooks:
                env.update(hook(spec))
            env[SERVICE_MARKER] = spec.name  # what a stop looks for in processes that left the tree
            child = await self.platform.spawn(spec.command, cwd=spec.cwd, env=env)
        except SpawnError as exc:
            return SpawnFailed(exc.reason)
        except (OSError, ValueError) as exc:  # env_file unreadable or malformed
            return SpawnFailed(str(exc))
        self.child = child
        self.health = "unknown"
        self.env_file_fingerprint = env_fingerprint(file_values) if spec.env_file is not None else None
        self.started_at = _wall_clock()
        self.registry.add(self.name, child.pid, child.create_time)
        if self._tg is None:
            raise RuntimeError("ServiceRunner.feed() called before run()")
        self._tg.start_soon(self._supervise_child, child)
        return Spawned(child.pid)

    async def _supervise_child(self, child: Child) -> None:
        """The child's lifetime: its pumps and per-child helpers (health loops) end with it."""
        async with anyio.create_task_group() as helpers:
            self._helpers = (child, helpers)
            for start_helper in self.extra_tasks:
                start_helper(child, helpers)
            with anyio.CancelScope() as drain:
                async with anyio.create_task_group() as pumps:
                    pumps.start_soon(pump, child.stdout, self.stdout)
                    pumps.start_soon(pump, child.stderr, self.stderr)
                    returncode = await child.wait()
                    await self._clear_group(child)
                    await self._kill_strays()
                    # The pipes close when the last writer is gone; bound the wait in case a process
                    # that escaped the group still holds them.
                    drain.deadline = anyio.current_time() + PIPE_DRAIN_S
            helpers.cancel_scope.cancel()
            self._helpers = None
        self.child = None
        self.registry.remove(self.name)
        requested = self.exit_classifier(returncode) if self.exit_classifier is not None else None
        self.send(Exited(returncode, requested))

    async def _clear_group(self, child: Child) -> None:
        """The leader is gone: give the rest of its group the stop timeout if stopping, then kill it."""
        if self.machine.state is ProcessState.STOPPING:
            deadline = self.machine.next_deadline() or anyio.current_time()
            while self.platform.tree_alive(child) and anyio.current_time() < deadline:
                await anyio.sleep(GROUP_POLL_S)
        if self.platform.tree_alive(child):
            self.platform.kill_tree(child)
            with anyio.move_on_after(KILL_WAIT_S):
                while self.platform.tree_alive(child):
                    await anyio.sleep(GROUP_POLL_S)

    async def _kill_strays(self) -> None:
        """The group is gone: kill what the service left outside it (daemons), found by its markers."""
        run_id = self.environ.get(RUN_MARKER)
        if run_id is None:  # a runner built without the supervisor's markers (a test's): nothing to find
            return
        for line in await kill_service_strays(self.platform, run_id, self.name):
            self.events.record("stray_killed", f"killed a process left outside the service's tree: {line}",
                               service=self.name, level="warning")

    async def _cleanup(self) -> None:
        """Cancelled with a child alive: graceful signal, bounded wait, kill. Then close the logs."""
        child = self.child
        if child is not None and self.machine.state in ALIVE_STATES:
            self.platform.signal_tree(child, self.spec.stop.signal)
            with anyio.move_on_after(self.spec.stop.timeout_s):
                await child.wait()
            self.platform.kill_tree(child)
            with anyio.move_on_after(KILL_WAIT_S):
                while self.platform.tree_alive(child):
                    await anyio.sleep(GROUP_POLL_S)
            await self._kill_strays()
            self.registry.remove(self.name)
        for sink in (self.stdout, self.stderr):
            with suppress(Exception):
                sink.close()
        self._send.close()
        self._inbox.close()
        self.notify()

    def _sink_error(self, stream: str) -> Callable[[str, OSError | None], None]:
        def report(kind: str, exc: OSError | None) -> None:
            level = "info" if kind.endswith("recovered") else "warning"
            sink = self.stdout if stream == "stdout" else self.stderr
            detail = f"{sink.path} was deleted or moved away: recreated" if kind == "reopened" else exc or kind
            self.events.record(f"log_{kind}", f"{stream}: {detail}", service=self.name, level=level,
                               dropped=sink.episode_dropped)

        return report


def _flush(records: list[Callable[[], object]]) -> None:
    for record in records:
        record()


def _wall_clock() -> float:
    import time

    return time.time()
