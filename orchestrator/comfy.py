"""The supervisor's knowledge of its one ComfyUI service (the service with `comfy:` in the config).

It hooks into that service's runner: the `__COMFY_CLI_SESSION__` variable that makes ComfyUI-Manager
ask for a restart instead of re-executing ComfyUI behind our back, the exit classifier that turns
the Manager's marker file into a requested restart, a sampler per child that keeps the last known
queue, VRAM and RAM (`sample`) for the status route, the metrics and the busy rule, and the health
probe's busy hook. It talks to ComfyUI over the health prober's shared HTTP client.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

import anyio
import httpx
import structlog
from anyio.abc import TaskGroup

from orchestrator.comfy_busy import BusyAllowance
from orchestrator.comfy_client import ComfyClient, ComfyDevice, ComfyError, ComfySample, QueueCounts
from orchestrator.comfy_drain import DRAIN_POLL_S, wait_for_empty_queue
from orchestrator.health import ProbeResult
from orchestrator.platform import Child
from orchestrator.probe import Prober
from orchestrator.runner import ServiceRunner
from orchestrator.spec import ComfySpec, Config

__all__ = ["MANAGER_RESTART", "SESSION_ENV", "ComfyUI"]

_log = structlog.get_logger("orchestrator.comfy")

SESSION_ENV = "__COMFY_CLI_SESSION__"  # set: the Manager writes `<value>.reboot` and exits 0 to restart
MANAGER_RESTART = "comfyui-manager restart"
DEFAULT_SAMPLE_EVERY_S = 15.0  # without a health check, sample as often as the Guardian polled
SAMPLE_FALLBACK_FACTOR = 2.0  # with one, sample after every probe, or after twice its interval at worst
DEFAULT_TIMEOUT_S = 5.0

_T = TypeVar("_T")


class ComfyUI:
    def __init__(self, runner: ServiceRunner, spec: ComfySpec, state_dir: Path, prober: Prober) -> None:
        self.runner = runner
        self.spec = spec
        self.events = prober.events
        self.prober = prober
        self.session_path = state_dir / "comfyui-session"
        self.drain_poll_s = DRAIN_POLL_S
        self.sample = ComfySample()
        self.busy = BusyAllowance(spec.busy_timeout_s)
        self.proxy_calls: Counter[tuple[str, str]] = Counter()  # (endpoint, status) -> count
        self._probed = anyio.Event()
        self._drain_done: anyio.Event | None = None
        runner.extra_env[SESSION_ENV] = str(self.session_path)
        runner.exit_classifier = self.classify_exit
        runner.extra_tasks.append(self._start_sampler)
        if runner.probe is not None:
            runner.probe.timeout_counts = self.timeout_counts
            runner.probe.listeners.append(self._after_probe)

    @classmethod
    def attach(cls, runners: Mapping[str, ServiceRunner], config: Config, prober: Prober) -> ComfyUI | None:
        """The ComfyUI of this config, hooked into its runner; None when no service has `comfy:`."""
        for runner in runners.values():
            if runner.spec.comfy is not None:
                return cls(runner, runner.spec.comfy, config.state_dir, prober)
        return None

    def prepare(self) -> None:
        """Before the first spawn: the marker's folder exists, and no marker of a run that died is taken."""
        self.session_path.parent.mkdir(parents=True, exist_ok=True)
        self.reboot_marker.unlink(missing_ok=True)

    @property
    def name(self) -> str:
        return self.runner.name

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
        health = self.runner.spec.health
        return health.timeout_s if health is not None else DEFAULT_TIMEOUT_S

    @property
    def sample_every_s(self) -> float:
        health = self.runner.spec.health
        return health.every_s * SAMPLE_FALLBACK_FACTOR if health is not None else DEFAULT_SAMPLE_EVERY_S

    @property
    def draining(self) -> bool:
        return self.runner.draining is not None

    def client(self, timeout_s: float | None = None) -> ComfyClient:
        return ComfyClient(self.spec.url, self.http, self.timeout_s if timeout_s is None else timeout_s)

    # -- ComfyUI-Manager restarts ------------------------------------------------------------------
    def classify_exit(self, returncode: int) -> str | None:
        """An exit that left the Manager's marker behind is a requested restart; the marker is consumed."""
        try:
            self.reboot_marker.unlink()
        except FileNotFoundError:
            return None
        except OSError as exc:  # still a request; the next exit may see the marker again
            _log.warning("comfy_marker_unremovable", path=str(self.reboot_marker), error=str(exc))
        return MANAGER_RESTART

    # -- sampling ------------------------------------------------------------------------------------
    def _start_sampler(self, child: Child, tg: TaskGroup) -> None:
        tg.start_soon(self._sample_loop)

    async def _sample_loop(self) -> None:
        """While this child lives: refresh the sample after every health probe (or on a timer)."""
        try:
            while True:
                self._probed = anyio.Event()
                await self.refresh()
                with anyio.move_on_after(self.sample_every_s):
                    await self._probed.wait()
        finally:
            self.sample = ComfySample(error="not running")

    async def refresh(self) -> ComfySample:
        """Fetch /system_stats and /queue at once; what fails keeps its last known value."""
        client = self.client()
        stats: tuple[Mapping[str, Any], tuple[ComfyDevice, ...]] | ComfyError = ComfyError("error", "not fetched")
        queue: QueueCounts | ComfyError = ComfyError("error", "not fetched")

        async def get_stats() -> None:
            nonlocal stats
            stats = await _attempt(client.system_stats)

        async def get_queue() -> None:
            nonlocal queue
            queue = await _attempt(client.queue)

        async with anyio.create_task_group() as tg:
            tg.start_soon(get_stats)
            tg.start_soon(get_queue)
        self.sample = self.sample.updated(stats, queue, anyio.current_time(), time.time())
        return self.sample

    def note_queue(self, queue: QueueCounts) -> None:
        """A queue read elsewhere (the drain) is the newest known queue too."""
        self.sample = replace(self.sample, queue=queue)

    # -- busy is not dead (the health probe's hooks) --------------------------------------------------
    def timeout_counts(self, now: float) -> bool:
        """Whether a probe timeout counts: not while the last known queue runs, for `busy_timeout`."""
        queue = self.sample.queue
        return self.busy.timeout_counts(queue is not None and queue.busy, now)

    def _after_probe(self, result: ProbeResult) -> None:
        if result.ok:
            self.busy.succeeded()
        self._probed.set()  # sample now: the next probe's verdict sees a fresh queue

    # -- drain -----------------------------------------------------------------------------------------
    async def drained(self, restart: Callable[[str], Awaitable[object]]) -> None:
        """Refuse new prompts, wait for the queue to empty (at most drain_timeout), then `restart(why)`.

        One drain at a time: a second request waits for the first. If the service stops or restarts
        meanwhile, the drain ends without a restart of its own.
        """
        if self._drain_done is not None:
            await self._drain_done.wait()
            return
        done = self._drain_done = anyio.Event()
        try:
            self.events.record("comfy_drain", f"draining: new prompts refused, waiting up to "
                               f"{self.spec.drain_timeout_s:g}s for the queue to empty", service=self.name)
            outcome = await wait_for_empty_queue(self, self.spec.drain_timeout_s, self.drain_poll_s)
            self.events.record("comfy_drain", outcome.reason, service=self.name,
                               level="warning" if outcome.timed_out else "info")
            if outcome.proceed:
                await restart(outcome.reason)
        finally:
            self.runner.draining = None
            self._drain_done = None
            done.set()
            self.runner.notify()


async def _attempt(fetch: Callable[[], Awaitable[_T]]) -> _T | ComfyError:
    try:
        return await fetch()
    except ComfyError as exc:
        return exc
