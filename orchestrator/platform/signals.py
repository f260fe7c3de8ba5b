"""The requests to stop (or reload) that reach the supervisor from outside, on every OS, as one async iterator.

POSIX: SIGINT and SIGTERM ask for a shutdown, SIGHUP for a reload (anyio's signal receiver).
Windows has no add_signal_handler on its event loop, so anyio's receiver does not work there; see
winsignals.py: Ctrl+C (how NSSM stops a console program), Ctrl+Break and closing the console window
ask for a shutdown, and there is no reload signal.
"""

from __future__ import annotations

import signal
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager

import anyio

from orchestrator.platform.base import ControlSignal, SignalKind

__all__ = ["ControlSignal", "SignalKind", "shutdown_signals"]


_POSIX_KINDS = {"SIGINT": SignalKind.SHUTDOWN, "SIGTERM": SignalKind.SHUTDOWN, "SIGHUP": SignalKind.RELOAD}


@contextmanager
def shutdown_signals() -> Iterator[AsyncIterator[ControlSignal]]:
    """While open, the signals above are ours (their previous handlers come back on exit).

    Must be entered in the main thread, inside the running event loop.
    """
    if sys.platform == "win32":  # pragma: no cover - exercised on Windows CI
        from orchestrator.platform import winsignals

        with winsignals.console_signals() as received:
            yield received
        return
    signums = [getattr(signal, name) for name in _POSIX_KINDS if hasattr(signal, name)]
    with anyio.open_signal_receiver(*signums) as signums_received:
        yield _named(signums_received)


async def _named(signums: AsyncIterator[int]) -> AsyncIterator[ControlSignal]:
    async for signum in signums:
        name = signal.Signals(signum).name
        yield ControlSignal(name, _POSIX_KINDS[name])
