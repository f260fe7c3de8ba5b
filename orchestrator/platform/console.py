"""Whether a console shows ANSI colours and cursor moves (`status` colours, `status --watch`).

POSIX terminals do. A Windows console does once virtual-terminal processing is on for it: Windows
Terminal has it on, the classic console (conhost, what an RDP session's cmd.exe gets) needs
SetConsoleMode(ENABLE_VIRTUAL_TERMINAL_PROCESSING), which Windows 10 1511 and later accept. When the
call fails (older Windows, not a console) the CLI prints plain text rather than escape codes.
"""

from __future__ import annotations

import sys
from typing import TextIO

__all__ = ["ansi_console"]

_ENABLE_VIRTUAL_TERMINAL_PROCESSING = 0x0004
_STD_OUTPUT_HANDLE, _STD_ERROR_HANDLE = -11, -12


def ansi_console(stream: TextIO) -> bool:
    """True when `stream` is a terminal that will render ANSI escapes (switching them on if need be)."""
    if not stream.isatty():
        return False
    if sys.platform != "win32":
        return True
    return _enable_vt(stream)  # pragma: no cover - Windows only


def _enable_vt(stream: TextIO) -> bool:  # pragma: no cover - Windows only
    if sys.platform != "win32":
        return True
    import ctypes
    from ctypes import wintypes

    kernel32 = ctypes.WinDLL("kernel32", use_last_error=True)
    which = _STD_ERROR_HANDLE if stream is sys.stderr else _STD_OUTPUT_HANDLE
    handle = kernel32.GetStdHandle(which)
    mode = wintypes.DWORD()
    if not kernel32.GetConsoleMode(handle, ctypes.byref(mode)):
        return False
    if mode.value & _ENABLE_VIRTUAL_TERMINAL_PROCESSING:
        return True
    return bool(kernel32.SetConsoleMode(handle, mode.value | _ENABLE_VIRTUAL_TERMINAL_PROCESSING))
