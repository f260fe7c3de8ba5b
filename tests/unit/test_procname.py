"""process_name: the program name for messages, never an exception (psutil's OSError under Wine included)."""

from __future__ import annotations

import ntpath
import os
import subprocess
import sys

import psutil
import pytest

from orchestrator.core.ports import PortHolder, _owner
from orchestrator.platform.procname import _image_name, process_name
from tests.support.wine import on_wine

MY_PROGRAM = ntpath.basename(sys.executable) if sys.platform == "win32" else os.path.basename(sys.executable)


def test_names_this_process() -> None:
    name = process_name(os.getpid())
    assert name is not None
    # psutil reads the name from the kernel on Linux (the resolved binary, e.g. python3.11), so compare loosely
    assert name.lower().startswith("python")


def test_a_process_that_is_gone_has_no_name() -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    assert process_name(child.pid) is None


@pytest.mark.skipif(sys.platform != "win32", reason="QueryFullProcessImageNameW")
def test_the_windows_fallback_names_this_process() -> None:
    assert (_image_name(os.getpid()) or "").lower() == MY_PROGRAM.lower()


@pytest.mark.skipif(not on_wine(), reason="psutil's name() works outside Wine")
def test_under_wine_psutil_fails_with_a_plain_oserror_and_the_fallback_answers() -> None:
    with pytest.raises(OSError) as caught:
        psutil.Process(os.getpid()).name()
    assert not isinstance(caught.value, psutil.Error)
    assert (process_name(os.getpid()) or "").lower() == MY_PROGRAM.lower()


def test_owner_pid_zero_means_not_told() -> None:
    # Wine's TCP table reports owner 0 for everything; 0 never listens (System Idle Process, the scheduler)
    assert _owner(0) is None and _owner(None) is None and _owner(1234) == 1234
    assert PortHolder(80, None, None).describe() == (
        "port 80 is already in use: held by another process (the OS will not say which)")
