"""A process's program name for messages ("port 8188 is already in use by pid 1234 (python.exe)").

The name only decorates a message, so asking for it never raises. psutil's `Process.name()` can fail in
two ways: a `psutil.Error` (gone, access denied) or, on Windows, a plain `OSError`. The second one is
what psutil raises when NtQuerySystemInformation(SystemProcessInformation) refuses: always under Wine
(WinError 87, measured with Wine 8.0), and possible on a locked-down Windows box. There the name comes
from QueryFullProcessImageNameW, which needs only PROCESS_QUERY_LIMITED_INFORMATION; if that fails too,
the name is unknown (None).
"""

from __future__ import annotations

import ntpath
import sys

import psutil

__all__ = ["process_name"]

_PROCESS_QUERY_LIMITED_INFORMATION = 0x1000
_MAX_PATH_CHARS = 32768  # the longest Windows path, in UTF-16 units


def process_name(pid: int) -> str | None:
    """The program name of `pid` ("python.exe"), or None when the OS will not say."""
    try:
        return psutil.Process(pid).name()
    except psutil.Error:
        return None
    except OSError:
        return _image_name(pid) if sys.platform == "win32" else None


def _image_name(pid: int) -> str | None:
    if sys.platform != "win32":
        return None
    import ctypes
    from ctypes import wintypes

    kernel32 = ctypes.WinDLL("kernel32", use_last_error=True)
    open_process = kernel32.OpenProcess
    open_process.restype = wintypes.HANDLE
    open_process.argtypes = [wintypes.DWORD, wintypes.BOOL, wintypes.DWORD]
    query = kernel32.QueryFullProcessImageNameW
    query.restype = wintypes.BOOL
    query.argtypes = [wintypes.HANDLE, wintypes.DWORD, wintypes.LPWSTR, ctypes.POINTER(wintypes.DWORD)]
    close = kernel32.CloseHandle
    close.restype = wintypes.BOOL
    close.argtypes = [wintypes.HANDLE]

    handle = open_process(_PROCESS_QUERY_LIMITED_INFORMATION, False, pid)
    if not handle:
        return None
    try:
        buf = ctypes.create_unicode_buffer(_MAX_PATH_CHARS)
        size = wintypes.DWORD(_MAX_PATH_CHARS)
        if not query(handle, 0, buf, ctypes.byref(size)):
            return None
        return ntpath.basename(buf.value) or None
    finally:
        close(handle)
