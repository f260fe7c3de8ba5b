"""Shared by the demo services: exit cleanly on the signals a supervisor sends."""

from __future__ import annotations

import signal
import sys
from types import FrameType

__all__ = ["exit_on_signals", "say"]


def say(message: str, *, err: bool = False) -> None:
    stream = sys.stderr if err else sys.stdout
    print(message, file=stream, flush=True)


def exit_on_signals(name: str) -> None:
    """SIGTERM, SIGINT (Ctrl+C) and, on Windows, SIGBREAK (Ctrl+Break) end the process with status 0."""

    def stop(signum: int, _frame: FrameType | None) -> None:
        say(f"{name}: got {signal.Signals(signum).name}, exiting")
        raise SystemExit(0)

    for sig_name in ("SIGTERM", "SIGINT", "SIGBREAK"):
        sig = getattr(signal, sig_name, None)
        if sig is not None:
            signal.signal(sig, stop)
