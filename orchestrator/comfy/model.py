"""The supervisor's knowledge of ComfyUI: the one service whose spec carries `comfy:`.

`ComfyUI` hooks into every runner, and each hook acts only while that runner's spec in force carries
`comfy:` (so a reload that adds, moves or removes `comfy:` needs nothing more):
- the `__COMFY_CLI_SESSION__` variable, which makes ComfyUI-Manager ask for a restart (a marker file
  and exit 0) instead of re-executing ComfyUI behind our back;
- the exit classifier that turns that marker into a requested restart;
- a sampler per child that keeps the last known queue, VRAM and RAM (`sample`) for the status
  route, the metrics and the busy rule, refreshed after every health probe;
- the health probe's busy hook (busy is not dead) and the reload's drain before a stop.
It talks to ComfyUI over the health prober's shared HTTP client.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import anyio
import structlog
from anyio.abc import TaskGroup

from orchestrator.comfy.busy import BusyAllowance
from orchestrator.comfy.client import ComfyClient, ComfySample, QueueCounts
from orchestrator.comfy.drain import DRAIN_POLL_S, wait_for_empty_queue
from orchestrator.config.spec import ComfySpec, ServiceSpec
from orchestrator.core.machine import ProcessState
from orchestrator.core.runner import ServiceRunner
from orchestrator.health.probe import Prober, ServiceProbe
from orchestrator.health.verdict import ProbeResult
from orchestrator.platform import Child

if TYPE_CHECKING:  # httpx is imported with the shared client (health/probe.py), when first needed
    import httpx

__all__ = ["MANAGER_RESTART", "SESSION_ENV", "ComfyUI"]

_log = structlog.get_logger("orchestrator.comfy")

SESSION_ENV = "__COMFY_CLI_SESSION__"  # set: the Manager writes `<value>.reboot` and exits 0 to restart
MANAGER_RESTART = "comfyui-manager restart"
DEFAULT_SAMPLE_EVERY_S = 15.0  # without a health check, sample as often as the Guardian polled
SAMPLE_FALLBACK_FACTOR = 2.0  # with one, sample after every probe, or after twice its interval at worst
DEFAULT_TIMEOUT_S = 5.0


class ComfyUI:
    def __init__(self, runners: Mapping[str, ServiceRunner], state_dir: Path, prober: Prober) -> None:
        self._runners = runners  # the supervisor's own mapping: a reload changes it in place
        self.prober = prober
        self.events = prober.events
        self.session_path = state_dir / "comfyui-session"
        self.drain_poll_s = DRAIN_POLL_S
        self.sample = ComfySample(error="not running")
        self.busy = BusyAllowance(ComfySpec().busy_timeout_s)
        self.proxy_calls: Counter[tuple[str, str]] = Counter()  # (endpoint, status) -> count
        self._probed = anyio.Event()
        self._drain_done: anyio.Event | None = None

    def attach(self, runner: ServiceRunner, probe: ServiceProbe | None) -> None:
        """Hook into a runner and its health probe; the hooks do nothing while its spec has no `comfy:`."""
        runner.env_hooks.append(self._session_env)
        runner.exit_classifier = partial(self._classify_exit, runner)
        runner.extra_tasks.append(partial(self._start_sampler, runner))
        if probe is not None:
            probe.timeout_counts = partial(self._timeout_counts, runner)
            probe.listeners.append(partial(self._after_probe, runner))

    def prepare(self) -> None:
        """Before the first spawn: the marker's folder exists, and no marker of a run that died is taken."""
        self.session_path.parent.mkdir(parents=True, exist_ok=True)
        self.reboot_marker.unlink(missing_ok=True)

    # -- what is ComfyUI now -------------------------------------------------------------------------
    @property
    def runner(self) -> ServiceRunner | None:
        """The runner of the service that carries `comfy:` (None: no such service)."""
        return next((r for r in self._runners.values() if r.spec.comfy is not None), None)

    @property
    def spec(self) -> ComfySpec | None:
        runner = self.runner
        return runner.spec.comfy if runner is not None else None

    @property
    def reboot_marker(self) -> Path:
        return Path(str(self.session_path) + ".reboot")

    @property
    def http(self) -> httpx.AsyncClient:
        """The supervisor's shared client (the health prober's), open while the supervisor runs."""
        if self.prober.client is None:
            raise RuntimeError("the supervisor is not running: no HTTP client")
        return self.prober.client

    @property
    def timeout_s(self) -> float:
        runner = self.runner
        health = runner.spec.health if runner is not None else None
        return health.timeout_s if health is not None else DEFAULT_TIMEOUT_S

    def drains(self, runner: ServiceRunner) -> bool:
        """The Supervisor's Drainer: only the `comfy:` service's restarts can wait for a queue."""
        return self.runner is runner

    @property
    def draining(self) -> bool:
        runner = self.runner
        return runner is not None and runner.draining is not None

    def client(self, spec: ComfySpec, timeout_s: float | None = None) -> ComfyClient:
        return ComfyClient(spec.url, self.http, self.timeout_s if timeout_s is None else timeout_s)

    # -- ComfyUI-Manager restarts ------------------------------------------------------------------
    def _session_env(self, spec: ServiceSpec) -> Mapping[str, str]:
        return {SESSION_ENV: str(self.session_path)} if spec.comfy is not None else {}

    def _classify_exit(self, runner: ServiceRunner, returncode: int) -> str | None:
        """An exit that left the Manager's marker behind is a requested restart; the marker is consumed."""
        if runner.spec.comfy is None:
            return None
        try:
            self.reboot_marker.unlink()
        except FileNotFoundError:
            return None
        except OSError as exc:  # still a request; the next exit may see the marker again
            _log.warning("comfy_marker_unremovable", path=str(self.reboot_marker), error=str(exc))
        return MANAGER_RESTART

    # -- sampling ------------------------------------------------------------------------------------
    def _start_sampler(self, runner: ServiceRunner, child: Child, tg: TaskGroup) -> None:
        if runner.spec.comfy is not None:
            tg.start_soon(self._sample_loop, runner)

    async def _sample_loop(self, runner: ServiceRunner) -> None:
        """While this child lives: refresh the sample after every health probe (or on a timer)."""
        try:
            while (spec := runner.spec.comfy) is not None:
                self._probed = anyio.Event()
                await self.refresh(spec)
                health = runner.spec.health
                every = health.every_s * SAMPLE_FALLBACK_FACTOR if health is not None else DEFAULT_SAMPLE_EVERY_S
                with anyio.move_on_after(every):
                    await self._probed.wait()
        finally:
            self.sample = ComfySample(error="not running")
            runner.draining = None  # a drained child is gone: new prompts may come again

    async def refresh(self, spec: ComfySpec) -> ComfySample:
        """Fetch /system_stats and /queue at once; what fails keeps its last known value."""
        snap = await self.client(spec).snapshot()
        self.sample = self.sample.updated(snap.stats, snap.queue, anyio.current_time(), time.time())
        return self.sample

    def note_queue(self, queue: QueueCounts) -> None:
        """A queue read elsewhere (the drain) is the newest known queue too."""
        self.sample = replace(self.sample, queue=queue)

    # -- busy is not dead (the health probe's hooks) --------------------------------------------------
    def _timeout_counts(self, runner: ServiceRunner, now: float) -> bool:
        """Whether a probe timeout counts: not while the last known queue runs, for `busy_timeout`."""
        spec = runner.spec.comfy
        if spec is None:
            return True
        self.busy.allowance_s = spec.busy_timeout_s  # a reload may have changed it
        queue = self.sample.queue
        return self.busy.timeout_counts(queue is not None and queue.busy, now)

    def _after_probe(self, runner: ServiceRunner, result: ProbeResult) -> None:
        if runner.spec.comfy is None:
            return
        if result.ok:
            self.busy.succeeded()
        self._probed.set()  # sample now: the next probe's verdict sees a fresh queue

    # -- drain -----------------------------------------------------------------------------------------
    async def drained(self, then: Callable[[str], Awaitable[object]] | None = None) -> None:
        """Refuse new prompts, wait for the queue to empty (at most drain_timeout), then `then(why)`.

        Prompts stay refused until the drained child is gone (the caller stops or restarts it). One
        drain at a time: a second request waits for the first. If the service stops or restarts for
        another reason meanwhile, the drain ends and `then` is not called.
        """
        runner, spec = self.runner, self.spec
        if runner is None or spec is None:
            return
        if self._drain_done is not None:
            await self._drain_done.wait()
            return
        done = self._drain_done = anyio.Event()
        proceeded = False
        try:
            self.events.record("comfy_drain", f"draining: new prompts refused, waiting up to "
                               f"{spec.drain_timeout_s:g}s for the queue to empty", service=runner.name)
            outcome = await wait_for_empty_queue(self, runner, spec, self.drain_poll_s)
            self.events.record("comfy_drain", outcome.reason, service=runner.name,
                               level="warning" if outcome.timed_out else "info")
            proceeded = outcome.proceed
            if proceeded and then is not None:
                await then(outcome.reason)
        finally:
            if not proceeded:
                runner.draining = None
            self._drain_done = None
            done.set()
            runner.notify()

    async def drain_before_stop(self, runner: ServiceRunner) -> None:
        """The reload's hook: a ComfyUI the reload is about to stop finishes its queue first."""
        if runner is self.runner and runner.state is ProcessState.RUNNING:
            await self.drained()
