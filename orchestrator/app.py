"""The whole program: the supervisor plus signal handling, in one root task group."""

from __future__ import annotations

from functools import partial

import anyio
import structlog
from anyio.abc import TaskGroup

from orchestrator.platform.signals import SignalKind, shutdown_signals
from orchestrator.spec import Config
from orchestrator.supervisor import Supervisor

__all__ = ["run"]

_log = structlog.get_logger("orchestrator.app")


async def run(config: Config, *, supervisor: Supervisor | None = None) -> None:
    """Run until a shutdown signal; every service is stopped before this returns."""
    sup = supervisor or Supervisor(config)
    async with anyio.create_task_group() as tg:
        tg.start_soon(_watch_signals, sup, tg)
        await sup.run()
        tg.cancel_scope.cancel()
    _log.info("supervisor_stopped")


async def _watch_signals(sup: Supervisor, tg: TaskGroup) -> None:
    """First shutdown signal (SIGINT/SIGTERM; on Windows Ctrl+C, Ctrl+Break, console close): orderly
    shutdown. A second one: cancel, and the cleanups still reap. SIGHUP (POSIX): reload the file."""
    shutting_down = False
    with shutdown_signals() as signals:
        async for sig in signals:
            if sig.kind is SignalKind.RELOAD:
                _log.info("reload_requested", signal=sig.name)
                tg.start_soon(partial(sup.reload, trigger=sig.name))  # never raises; records its outcome
            elif shutting_down:
                _log.warning("second_signal_cancelling", signal=sig.name)
                tg.cancel_scope.cancel()
                return
            else:
                shutting_down = True
                _log.info("shutdown_requested", signal=sig.name)
                tg.start_soon(sup.shutdown)
