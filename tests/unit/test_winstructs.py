"""The Job Object structures have the Windows SDK's x64 layout (checked on any 64-bit OS)."""

from __future__ import annotations

import ctypes

import pytest

from orchestrator.platform import winstructs as ws

pytestmark = pytest.mark.skipif(ctypes.sizeof(ctypes.c_void_p) != 8, reason="the x64 layout")


def test_sizes_match_the_sdk() -> None:
    assert ctypes.sizeof(ws.JOBOBJECT_BASIC_LIMIT_INFORMATION) == 64
    assert ctypes.sizeof(ws.IO_COUNTERS) == 48
    assert ctypes.sizeof(ws.JOBOBJECT_EXTENDED_LIMIT_INFORMATION) == 144
    assert ctypes.sizeof(ws.JOBOBJECT_BASIC_ACCOUNTING_INFORMATION) == 48
    assert ctypes.sizeof(ws.process_id_list(1)) == 16
    assert ctypes.sizeof(ws.process_id_list(3)) == 32


def test_offsets_of_the_fields_we_write_and_read() -> None:
    basic = ws.JOBOBJECT_BASIC_LIMIT_INFORMATION
    assert (basic.LimitFlags.offset, basic.MinimumWorkingSetSize.offset) == (16, 24)  # 4 bytes of padding
    assert (basic.Affinity.offset, basic.SchedulingClass.offset) == (48, 60)
    assert ws.JOBOBJECT_EXTENDED_LIMIT_INFORMATION.IoInfo.offset == 64
    assert ws.JOBOBJECT_BASIC_ACCOUNTING_INFORMATION.ActiveProcesses.offset == 40
    assert ws.process_id_list(4).ProcessIdList.offset == 8


def test_limit_flags_hold_both_limits() -> None:
    info = ws.JOBOBJECT_EXTENDED_LIMIT_INFORMATION()
    info.BasicLimitInformation.LimitFlags = (
        ws.JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE | ws.JOB_OBJECT_LIMIT_DIE_ON_UNHANDLED_EXCEPTION
    )
    raw = bytes(info)
    assert int.from_bytes(raw[16:20], "little") == 0x2400
    assert not any(raw[:16]) and not any(raw[20:])
