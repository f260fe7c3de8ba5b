"""The portable signal receiver on POSIX (a real `python -m orchestrator run` answering SIGTERM, SIGINT and
SIGHUP is covered by test_cli_run.py and test_reload_signal.py; the Windows side by tests/windows/)."""

from __future__ import annotations

import os
import signal
import sys

import anyio
import pytest

from orchestrator.platform.signals import ControlSignal, SignalKind, shutdown_signals

pytestmark = [pytest.mark.anyio, pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")]


async def test_the_receiver_names_each_signal_and_its_kind() -> None:
    received: list[ControlSignal] = []
    with shutdown_signals() as signals:
        for signum in (signal.SIGHUP, signal.SIGTERM, signal.SIGINT):
            os.kill(os.getpid(), signum)  # ours while the receiver is open: nothing else reacts
            with anyio.fail_after(5):
                received.append(await signals.__anext__())
    assert received == [
        ControlSignal("SIGHUP", SignalKind.RELOAD),
        ControlSignal("SIGTERM", SignalKind.SHUTDOWN),
        ControlSignal("SIGINT", SignalKind.SHUTDOWN),
    ]
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL  # handed back on exit
