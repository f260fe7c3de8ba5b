"""Wine detection and the `wine_lacks` marker: the expected failures of the Windows lane (.ci/windows-lane.sh).

The lane runs the suite under the official Windows CPython on Wine. A few Windows APIs are missing or
incomplete there; a test that needs one carries

    @pytest.mark.wine_lacks("GenerateConsoleCtrlEvent", "no Ctrl+Break delivery: the stop ends in the Job kill")

and, under Wine only, becomes `xfail(strict=True)` with that reason (tests/conftest.py applies it). Strict:
the lane turns red the day Wine grows the API (an XPASS), so the list stays true. On Linux and on a real
Windows box the mark does nothing and the test runs as written.

Detection: Wine's ntdll.dll exports `wine_get_version`; Windows' ntdll never does. Documented by Wine
("Detecting Wine" in its developer FAQ) and the check every project uses.
"""

from __future__ import annotations

import ctypes
import functools
import sys

import pytest

__all__ = ["ALLOC_CONSOLE", "CTRL_BREAK", "MARKER", "RUST_PRNG", "TCP_OWNER",
           "apply_wine_lacks", "on_wine", "wine_version"]

MARKER = "wine_lacks"

# The known gaps, as (api, why) for `pytest.mark.wine_lacks(*GAP)`; measured with Wine 8.0 (Debian 12).
CTRL_BREAK = ("GenerateConsoleCtrlEvent",
              "it fails (WinError 12) so no Ctrl+Break reaches a child: every stop ends the Job at once")
ALLOC_CONSOLE = ("AllocConsole", "it fails (WinError 5), so there is no console to send Ctrl+Break through")
RUST_PRNG = ("bcryptprimitives.dll (ProcessPrng)",
             "Rust extensions fail to load (import-linter's grimp): Rust's std imports it since Rust 1.78")
TCP_OWNER = ("the owning pid in GetExtendedTcpTable", "it reports pid 0 for every socket: no port holder is named")


@functools.cache
def wine_version() -> str | None:
    """Wine's version ("8.0") when this Windows process runs on Wine; None on Windows itself and elsewhere."""
    if sys.platform != "win32":
        return None
    try:
        get_version = ctypes.WinDLL("ntdll").wine_get_version
    except AttributeError:
        return None
    get_version.restype = ctypes.c_char_p
    version: bytes = get_version()
    return version.decode()


def on_wine() -> bool:
    return wine_version() is not None


def apply_wine_lacks(item: pytest.Item) -> None:
    """Turn the item's `wine_lacks(api, why)` mark into a strict xfail when running on Wine."""
    mark = item.get_closest_marker(MARKER)
    if mark is None or not on_wine():
        return
    api, why = mark.args
    item.add_marker(pytest.mark.xfail(reason=f"Wine {wine_version()} lacks {api}: {why}", strict=True))
