"""Console control events as shutdown requests on Windows, handed to the event loop thread-safely.

- Ctrl+C and Ctrl+Break arrive as SIGINT and SIGBREAK through signal.signal: the C runtime's console
  handler sets Python's flag and the Proactor loop is woken through its wakeup socket; the Python-level
  handler then runs on the main thread and only schedules the delivery with call_soon_threadsafe.
- Closing the console window (CTRL_CLOSE_EVENT) and system shutdown (CTRL_SHUTDOWN_EVENT) reach no
  signal handler: a SetConsoleCtrlHandler routine, called on a thread Windows creates, posts the request
  and then holds that thread, because Windows ends the process as soon as the routine returns. It
  returns when the supervisor has stopped everything (or after a bound; Windows itself waits about
  5 s after a close and up to about 20 s at shutdown before it ends the process anyway).
- CTRL_LOGOFF_EVENT is passed on untouched: as a service, a user logging off is none of our business.
"""

from __future__ import annotations

import sys

if sys.platform != "win32":
    raise ImportError("orchestrator.platform.winsignals is for Windows only")

import asyncio
import contextlib
import ctypes
import math
import signal
import threading
import time
from collections.abc import Callable, Iterator
from ctypes import wintypes
from types import FrameType
from typing import Any

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream

from orchestrator.platform import winstructs as ws
from orchestrator.platform.base import ControlSignal, SignalKind

__all__ = ["console_signals"]

_HOLD_S = 120.0  # longest the close/shutdown routine waits for our shutdown (Windows cuts it sooner)
_EXIT_GRACE_S = 2.0  # after our shutdown: let the main thread exit normally before the routine returns
_HELD_EVENTS = {ws.CTRL_CLOSE_EVENT: "CTRL_CLOSE_EVENT", ws.CTRL_SHUTDOWN_EVENT: "CTRL_SHUTDOWN_EVENT"}
_HANDLER_ROUTINE = ctypes.WINFUNCTYPE(wintypes.BOOL, wintypes.DWORD)
_KEEP_ALIVE: list[Any] = []  # a routine Windows may still call must outlive its registration


@contextlib.contextmanager
def console_signals() -> Iterator[MemoryObjectReceiveStream[ControlSignal]]:
    loop = asyncio.get_running_loop()
    send, receive = anyio.create_memory_object_stream[ControlSignal](math.inf)
    finished = threading.Event()

    def deliver(sig: ControlSignal) -> None:  # on the loop
        with contextlib.suppress(anyio.ClosedResourceError, anyio.BrokenResourceError):
            send.send_nowait(sig)

    def post(sig: ControlSignal) -> None:  # from anywhere
        with contextlib.suppress(RuntimeError):  # the loop is already closed
            loop.call_soon_threadsafe(deliver, sig)

    def on_signal(signum: int, frame: FrameType | None) -> None:
        post(ControlSignal(signal.Signals(signum).name, SignalKind.SHUTDOWN))

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGBREAK)}
    routine = _register_routine(post, finished)
    try:
        with receive:
            yield receive
    finally:
        finished.set()
        if routine is not None:
            _set_ctrl_handler(routine, add=False)
        for sig, handler in previous.items():
            signal.signal(sig, handler if handler is not None else signal.SIG_DFL)
        send.close()


def _register_routine(post: Callable[[ControlSignal], None], finished: threading.Event) -> Any:
    def routine(event: int) -> int:
        name = _HELD_EVENTS.get(event)
        if name is None:
            return 0  # FALSE: the next handler (for Ctrl+C/Break: the C runtime's, hence signal.signal)
        post(ControlSignal(name, SignalKind.SHUTDOWN))
        if finished.wait(_HOLD_S):
            time.sleep(_EXIT_GRACE_S)
        return 1

    callback = _HANDLER_ROUTINE(routine)
    _KEEP_ALIVE.append(callback)
    try:
        _set_ctrl_handler(callback, add=True)
    except OSError:
        return None  # no console to close: Ctrl+C/Break (NSSM's stop) still work through signals
    return callback


def _set_ctrl_handler(callback: Any, *, add: bool) -> None:
    kernel32 = ctypes.WinDLL("kernel32", use_last_error=True)
    fn = kernel32.SetConsoleCtrlHandler
    fn.argtypes = [_HANDLER_ROUTINE, wintypes.BOOL]
    fn.restype = wintypes.BOOL
    if not fn(callback, add):
        raise ctypes.WinError(ctypes.get_last_error())
