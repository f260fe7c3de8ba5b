"""The whole program: the supervisor plus signal handling, in one root task group."""

from __future__ import annotations

import signal
from functools import partial

import anyio
import structlog
from anyio.abc import TaskGroup

from orchestrator.spec import Config
from orchestrator.supervisor import Supervisor

__all__ = ["run"]

_log = structlog.get_logger("orchestrator.app")

_SHUTDOWN_SIGNALS = tuple(getattr(signal, n) for n in ("SIGINT", "SIGTERM") if hasattr(signal, n))
_RELOAD_SIGNALS = tuple(getattr(signal, n) for n in ("SIGHUP",) if hasattr(signal, n))


async def run(config: Config, *, supervisor: Supervisor | None = None) -> None:
    """Run until a shutdown signal; every service is stopped before this returns."""
    sup = supervisor or Supervisor(config)
    async with anyio.create_task_group() as tg:
        tg.start_soon(_watch_signals, sup, tg)
        await sup.run()
        tg.cancel_scope.cancel()
    _log.info("supervisor_stopped")


async def _watch_signals(sup: Supervisor, tg: TaskGroup) -> None:
    """First SIGINT/SIGTERM: orderly shutdown. A second one: cancel, and the cleanups still reap."""
    shutting_down = False
    with anyio.open_signal_receiver(*_SHUTDOWN_SIGNALS, *_RELOAD_SIGNALS) as signals:
        async for signum in signals:
            name = signal.Signals(signum).name
            if signum in _RELOAD_SIGNALS:
                _log.info("reload_requested", signal=name)
                tg.start_soon(partial(sup.reload, trigger=name))  # never raises; records its outcome
            elif shutting_down:
                _log.warning("second_signal_cancelling", signal=name)
                tg.cancel_scope.cancel()
                return
            else:
                shutting_down = True
                _log.info("shutdown_requested", signal=name)
                tg.start_soon(sup.shutdown)
