"""The composition root: the one place that builds the parts and plugs them together, and runs them.

`build_system` makes the core Supervisor and plugs the upper layers into it: the health probes and
machine checks (health/), ComfyUI (comfy/) and the reloader (reload/). The core constructs none of
them; it offers hooks (runner hooks, companion tasks, a drainer, a system report) that they fill.
`run` adds the control API (api/) and signal handling, in one root task group.

Shutdown order: supervisor.shutdown() stops every service (the API keeps answering meanwhile), then
the server stops (log followers are ended first), then the root group exits.

Imports: httpx only for a config with probes or ComfyUI, at System.run before the first spawn (and by
health/probe.py with the shared client, should a reload add the first probe); a config with neither
never loads it: -2.2 MiB idle RSS (tests/integration/test_imports.py).
The ComfyUI package is imported whatever the config: a reload may add a `comfy:` service to a running
supervisor, whose routes and collector are wired at start; its own modules weigh about 0.1 MiB.
"""

from __future__ import annotations

import errno
import importlib
import os
import socket
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

import anyio
import structlog
from anyio.abc import TaskGroup, TaskStatus
from prometheus_client.registry import Collector
from starlette.routing import BaseRoute

from orchestrator.api.app import create_app
from orchestrator.api.auth import AccessPolicy
from orchestrator.api.guard import AcceptWatch, connection_cap
from orchestrator.api.listener import ApiListener
from orchestrator.api.live import LiveFeeds, live_routes, status_body
from orchestrator.api.metrics import build_registry
from orchestrator.api.server import ApiServer, bind_socket
from orchestrator.api.token import ApiSetupError, ensure_state_dir, ensure_token, tighten_token_file
from orchestrator.api.web import web_routes
from orchestrator.comfy.live import comfy_point, comfy_summary
from orchestrator.comfy.metrics import ComfyCollector
from orchestrator.comfy.model import ComfyUI
from orchestrator.comfy.routes import comfy_routes
from orchestrator.config.spec import Config
from orchestrator.core.events import EventLog
from orchestrator.core.ports import api_port_holder
from orchestrator.core.runner import ServiceRunner
from orchestrator.core.supervisor import Supervisor
from orchestrator.health.checks import SystemChecks
from orchestrator.health.probe import Prober
from orchestrator.logs.follow import Followers
from orchestrator.logs.setup import check_log_dir, supervisor_log_sink
from orchestrator.platform import Platform
from orchestrator.platform.limits import open_file_limit, raise_open_file_limit
from orchestrator.platform.signals import SignalKind, shutdown_signals
from orchestrator.platform.statelock import StateLock
from orchestrator.reload.reloader import Reloader
from orchestrator.reload.routes import reload_routes

if TYPE_CHECKING:  # httpx is imported when a probe or ComfyUI first needs the client (health/probe.py)
    import httpx

__all__ = ["System", "build_api_server", "build_system", "claim_state_dir", "open_api_socket", "run"]

_log = structlog.get_logger("orchestrator.app")
_IN_USE = {errno.EADDRINUSE, getattr(errno, "WSAEADDRINUSE", errno.EADDRINUSE)}


@dataclass(frozen=True, slots=True)
class System:
    """The supervisor with everything plugged into it: what `run` serves, what tests drive."""

    supervisor: Supervisor
    prober: Prober
    checks: SystemChecks
    comfy: ComfyUI
    reloader: Reloader

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Run the supervisor until its shutdown(), with the probes' shared HTTP client open meanwhile."""
        self.comfy.prepare()  # before the first spawn: no ComfyUI reboot marker of a dead run is taken
        if any(s.health is not None or s.comfy is not None for s in self.supervisor.config.services.values()):
            # Before the first spawn, as when app.py imported it: not on the loop at the first probe
            # (tens of ms there, more under load). A config with neither never imports it.
            importlib.import_module("httpx")
        async with self.prober.open():
            await self.supervisor.run(task_status=task_status)


def build_system(
    config: Config,
    *,
    platform: Platform | None = None,
    events: EventLog | None = None,
    environ: Mapping[str, str] | None = None,
    http: httpx.AsyncClient | None = None,
) -> System:
    """The core Supervisor with health, ComfyUI and reload plugged in (no API: `run` adds it)."""
    sup = Supervisor(config, platform=platform, events=events, environ=environ)
    prober = Prober(sup.events, http)  # health probes; their shared client is open while System.run runs
    checks = SystemChecks(config.checks, sup.events)  # disk and memory
    comfy = ComfyUI(sup.runners, config.state_dir, prober)  # acts on the `comfy:` service
    reloader = Reloader(sup)

    def attach(runner: ServiceRunner) -> None:
        comfy.attach(runner, prober.attach(runner))

    sup.add_runner_hook(attach)
    sup.companions += [checks.run, reloader.watch]
    sup.drainer = comfy
    sup.system_report = partial(_system_report, checks)
    reloader.before_stop.append(comfy.drain_before_stop)
    reloader.on_applied.append(partial(_follow_reload, sup, checks))
    return System(sup, prober, checks, comfy, reloader)


def _system_report(checks: SystemChecks) -> dict[str, Any]:
    statuses = checks.statuses()
    memory = [c.to_dict() for c in statuses if c.kind == "memory"]
    return {"disk": [c.to_dict() for c in statuses if c.kind == "disk"], "memory": memory[0] if memory else None}


def _follow_reload(sup: Supervisor, checks: SystemChecks, old: Config, new: Config, plan: object) -> None:
    sup.resources.every_s = new.status_every_s
    if new.checks != old.checks:
        checks.configure(new.checks)  # a check kept across the reload keeps its state


def claim_state_dir(config: Config) -> StateLock:
    """The state directory's lock, held until released (or the process dies); StateDirInUse names the
    supervisor that holds it. Taken first: before the log, the leftover reaping, the API socket."""
    return StateLock.acquire(config.state_dir, api=config.api.listen)


async def run(
    config: Config, *, system: System | None = None, announce: Callable[[str], None] | None = None,
    lock: StateLock | None = None, adopt_orphans: bool = False,
) -> None:
    """Run until a shutdown signal; every service is stopped before this returns. `announce` gets the
    API's URL once it listens. Raises StateDirInUse if another supervisor holds the state directory
    (`lock`: already taken by the caller), and ApiSetupError if the API cannot listen, in both cases
    before any child starts. `adopt_orphans`: this process is the supervisor and nothing else (the
    CLI's `run`): it becomes a child subreaper on Linux, and every child it did not spawn is an
    orphan of a service (never set it in a process that has children of its own, a test runner's)."""
    held = lock if lock is not None else claim_state_dir(config)
    try:
        await _run_locked(config, system, announce, held, adopt_orphans)
    finally:
        if lock is None:  # ours to release; a caller's lock is the caller's
            held.release()


async def _run_locked(
    config: Config, system: System | None, announce: Callable[[str], None] | None, lock: StateLock,
    adopt_orphans: bool,
) -> None:
    _raise_open_file_limit()
    check_log_dir(config.logs.dir)  # LogSetupError naming it: nothing is started
    ensure_state_dir(config.state_dir)
    sock = open_api_socket(config)  # before the supervisor: nothing to undo if the API cannot listen
    system = system or build_system(config)
    system.supervisor.adopt_orphans = adopt_orphans
    _plug_log_events(system.supervisor.events, config)
    api = ApiListener(system.supervisor, lambda cfg, s: build_api_server(cfg, system, s), config, sock)
    system.reloader.on_applied.append(api.follow_reload)  # a new api.listen/token: a new server
    async with anyio.create_task_group() as tg:
        tg.start_soon(_watch_signals, system, tg)
        async with anyio.create_task_group() as core:
            await core.start(_supervise, system, api)
            url = await core.start(api.serve)
            _log.info("api_listening", url=url)
            lock.note(api=url)  # what a second supervisor's refusal will name
            api.on_rebound.append(lambda new: lock.note(api=new))
            if announce is not None:
                announce(url)
                api.on_rebound.append(announce)
        tg.cancel_scope.cancel()
    _log.info("supervisor_stopped")


def _plug_log_events(events: EventLog, config: Config) -> None:
    """orchestrator.log's failures and reopenings become events; a loose token file is fixed, and said."""
    sink = supervisor_log_sink()
    if sink is not None:

        def report(kind: str, exc: OSError | None) -> None:
            detail = f"{sink.path} was deleted or moved away: recreated" if kind == "reopened" else exc or kind
            level = "info" if kind.endswith("recovered") else "warning"
            events.record(f"log_{kind}", f"orchestrator.log: {detail}", level=level, dropped=sink.episode_dropped)

        sink.report_to(report)
    warning = tighten_token_file(config.state_dir)
    if warning is not None:
        events.record("token_file_permissions", warning, level="warning")


def _raise_open_file_limit() -> None:
    """Descriptors for connections, children's pipes and logs: the soft limit raised to the hard one."""
    limits = raise_open_file_limit()
    if limits is not None:
        before, after = limits
        _log.info("open_file_limit", limit=after, before=before, api_connections=connection_cap(after))


def open_api_socket(config: Config) -> socket.socket:
    """The API's preconditions: a token (refused for a public address without one), api.listen bound."""
    ensure_token(config.api, config.state_dir)
    try:
        return bind_socket(config.api.host, config.api.port)
    except ApiSetupError as exc:
        in_use = isinstance(exc.__cause__, OSError) and exc.__cause__.errno in _IN_USE
        holder = api_port_holder(config.api.port) if in_use and config.api.port else None
        if holder is None:
            raise
        raise ApiSetupError(f"{exc}: {holder}") from exc


def build_api_server(
    config: Config, system: System, sock: socket.socket, *,
    routes: Sequence[BaseRoute] = (), collectors: Iterable[Collector] = (), followers: Followers | None = None,
) -> ApiServer:
    """The control API over `system` on `sock` (the seam for more routes and collectors); ComfyUI's are in."""
    token = ensure_token(config.api, config.state_dir)
    port = sock.getsockname()[1]  # the real one when api.listen asked for port 0
    followers = Followers() if followers is None else followers
    sup = system.supervisor
    sup.history_comfy = partial(comfy_point, system.comfy)
    live = LiveFeeds(sup.events, sup.history, partial(status_body, sup, partial(comfy_summary, system.comfy)),
                     sup.resources.refresh)
    routes = [*web_routes(), *live_routes(live), *reload_routes(system.reloader),
              *comfy_routes(system.comfy, sup.status), *routes]
    registry = build_registry(sup, extra=[ComfyCollector(system.comfy), *collectors])
    app = create_app(
        sup, registry, access=AccessPolicy.for_listener(config.api.host, port, token),
        followers=followers, routes=routes, about={"config": str(config.path), "pid": os.getpid()},
    )
    cap = connection_cap(open_file_limit())
    return ApiServer(app, sock, on_stop=[followers.close_all, live.close_all], max_connections=cap,
                     watch=AcceptWatch(sup.events))


async def _supervise(system: System, api: ApiListener, *, task_status: TaskStatus[None]) -> None:
    try:
        await system.run(task_status=task_status)
    finally:
        api.stop()  # every service is stopped (or we are cancelled): the API goes last


async def _watch_signals(system: System, tg: TaskGroup) -> None:
    """First shutdown signal (SIGINT/SIGTERM; on Windows Ctrl+C, Ctrl+Break, console close): orderly
    shutdown. A second one: cancel, and the cleanups still reap. SIGHUP (POSIX): reload the file."""
    shutting_down = False
    sup = system.supervisor
    with shutdown_signals() as signals:
        async for sig in signals:
            if sig.kind is SignalKind.RELOAD:
                _log.info("reload_requested", signal=sig.name)
                tg.start_soon(partial(system.reloader.reload, trigger=sig.name))  # never raises; records its outcome
            elif shutting_down:
                _log.warning("second_signal_cancelling", signal=sig.name)
                tg.cancel_scope.cancel()
                return
            else:
                shutting_down = True
                _log.info("shutdown_requested", signal=sig.name)
                tg.start_soon(sup.shutdown)
