"""Job Objects, thread resumption and the console, through kernel32 with ctypes (Windows only).

Every function has its argtypes and restype declared; a failed call raises the OSError that
ctypes.WinError builds from GetLastError (captured per call: use_last_error=True).
"""

from __future__ import annotations

import sys

if sys.platform != "win32":
    raise ImportError("orchestrator.platform.winjob is for Windows only")

import ctypes
import functools
from ctypes import wintypes
from typing import Any

import psutil

from orchestrator.platform import winstructs as ws

__all__ = ["JobObject", "ensure_console", "resume_process"]

_INITIAL_PID_CAPACITY = 64
_SW_HIDE = 0
_STD_HANDLES = (-10, -11, -12)  # STD_INPUT_HANDLE, STD_OUTPUT_HANDLE, STD_ERROR_HANDLE


def _bind(dll: Any, name: str, restype: Any, *argtypes: Any) -> Any:
    fn = getattr(dll, name)
    fn.restype = restype
    fn.argtypes = list(argtypes)
    return fn


class _Kernel32:
    """The calls we use, typed once (built on first use: importing this module calls nothing)."""

    def __init__(self) -> None:
        k = ctypes.WinDLL("kernel32", use_last_error=True)
        u = ctypes.WinDLL("user32", use_last_error=True)
        H, B, D = wintypes.HANDLE, wintypes.BOOL, wintypes.DWORD
        self.CreateJobObjectW = _bind(k, "CreateJobObjectW", H, ctypes.c_void_p, wintypes.LPCWSTR)
        self.SetInformationJobObject = _bind(k, "SetInformationJobObject", B, H, ctypes.c_int, ctypes.c_void_p, D)
        self.QueryInformationJobObject = _bind(k, "QueryInformationJobObject", B, H, ctypes.c_int,
                                               ctypes.c_void_p, D, ctypes.POINTER(D))
        self.AssignProcessToJobObject = _bind(k, "AssignProcessToJobObject", B, H, H)
        self.TerminateJobObject = _bind(k, "TerminateJobObject", B, H, wintypes.UINT)
        self.OpenProcess = _bind(k, "OpenProcess", H, D, B, D)
        self.OpenThread = _bind(k, "OpenThread", H, D, B, D)
        self.ResumeThread = _bind(k, "ResumeThread", D, H)
        self.CloseHandle = _bind(k, "CloseHandle", B, H)
        self.GetConsoleProcessList = _bind(k, "GetConsoleProcessList", D, ctypes.POINTER(D), D)
        self.AllocConsole = _bind(k, "AllocConsole", B)
        self.GetConsoleWindow = _bind(k, "GetConsoleWindow", wintypes.HWND)
        self.GetStdHandle = _bind(k, "GetStdHandle", H, D)
        self.SetStdHandle = _bind(k, "SetStdHandle", B, D, H)
        self.ShowWindow = _bind(u, "ShowWindow", B, wintypes.HWND, ctypes.c_int)


@functools.cache
def _k32() -> _Kernel32:
    return _Kernel32()


def _error() -> OSError:
    return ctypes.WinError(ctypes.get_last_error())


class JobObject:
    """One job per child: every process the child starts is in it (it cannot break away), the whole
    job ends with TerminateJobObject, and closing our last handle (our death included) kills it."""

    def __init__(self, handle: int) -> None:
        self._handle: int | None = handle

    @classmethod
    def create(cls) -> JobObject:
        k = _k32()
        handle = k.CreateJobObjectW(None, None)
        if not handle:
            raise _error()
        job = cls(int(handle))
        info = ws.JOBOBJECT_EXTENDED_LIMIT_INFORMATION()
        # DIE_ON_UNHANDLED_EXCEPTION: a crashing child exits at once instead of waiting on a WER dialog
        # nobody sees in session 0, so that we notice the crash and restart it.
        info.BasicLimitInformation.LimitFlags = (
            ws.JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE | ws.JOB_OBJECT_LIMIT_DIE_ON_UNHANDLED_EXCEPTION
        )
        if not k.SetInformationJobObject(handle, ws.JOB_OBJECT_EXTENDED_LIMIT_INFORMATION,
                                         ctypes.byref(info), ctypes.sizeof(info)):
            exc = _error()
            job.close()
            raise exc
        return job

    @property
    def closed(self) -> bool:
        return self._handle is None

    def assign(self, pid: int) -> None:
        k = _k32()
        process = k.OpenProcess(ws.PROCESS_SET_QUOTA | ws.PROCESS_TERMINATE, False, pid)
        if not process:
            raise _error()
        try:
            if not k.AssignProcessToJobObject(self._handle, process):
                raise _error()
        finally:
            k.CloseHandle(process)

    def terminate(self, exit_code: int = 1) -> None:
        """Ends every process in the job now. Nothing to do once the job is closed."""
        if self._handle is not None and not _k32().TerminateJobObject(self._handle, exit_code):
            raise _error()

    def active_processes(self) -> int:
        if self._handle is None:
            return 0
        info = ws.JOBOBJECT_BASIC_ACCOUNTING_INFORMATION()
        if not _k32().QueryInformationJobObject(self._handle, ws.JOB_OBJECT_BASIC_ACCOUNTING_INFORMATION,
                                                ctypes.byref(info), ctypes.sizeof(info), None):
            raise _error()
        return int(info.ActiveProcesses)

    def pids(self) -> list[int]:
        """The ids of the processes in the job now."""
        capacity = _INITIAL_PID_CAPACITY
        while self._handle is not None:
            info = ws.process_id_list(capacity)()
            ok = _k32().QueryInformationJobObject(self._handle, ws.JOB_OBJECT_BASIC_PROCESS_ID_LIST,
                                                  ctypes.byref(info), ctypes.sizeof(info), None)
            if not ok and ctypes.get_last_error() != ws.ERROR_MORE_DATA:
                raise _error()
            assigned, listed = int(info.NumberOfAssignedProcesses), int(info.NumberOfProcessIdsInList)
            if ok and listed >= assigned:
                return [int(p) for p in info.ProcessIdList[:listed]]
            capacity = max(2 * capacity, assigned + 16)  # the list did not fit: a bigger buffer, again
        return []

    def close(self) -> None:
        """Releases our handle. While processes remain in the job, this kills them (KILL_ON_JOB_CLOSE)."""
        handle, self._handle = self._handle, None
        if handle is not None:
            _k32().CloseHandle(handle)


def resume_process(pid: int) -> int:
    """Resumes every thread of a process created with CREATE_SUSPENDED (it has just its first one).

    asyncio does not give us the thread handle CreateProcess returned, so the thread is found by id.
    ResumeThread on a thread that is not suspended does nothing, so resuming them all is safe.
    """
    k = _k32()
    resumed = 0
    for thread in psutil.Process(pid).threads():
        handle = k.OpenThread(ws.THREAD_SUSPEND_RESUME, False, thread.id)
        if not handle:
            raise _error()
        try:
            if k.ResumeThread(handle) == 0xFFFFFFFF:
                raise _error()
        finally:
            k.CloseHandle(handle)
        resumed += 1
    if not resumed:
        raise OSError(f"process {pid} has no thread to resume")
    return resumed


def ensure_console() -> bool:
    """Gives us a (hidden) console if we have none; True if one was made.

    CTRL_BREAK_EVENT only reaches processes attached to our console; without one, each console child
    would get a console of its own and no graceful stop could reach it. NSSM gives its application a
    console unless AppNoConsole=1; this covers that case and any other start without a console. Our
    standard handles are put back afterwards: AllocConsole points them at the new console.
    """
    k = _k32()
    pid = wintypes.DWORD()
    if k.GetConsoleProcessList(ctypes.byref(pid), 1):
        return False
    saved = [k.GetStdHandle(ctypes.c_uint32(n).value) for n in _STD_HANDLES]
    if not k.AllocConsole():
        raise _error()
    for n, handle in zip(_STD_HANDLES, saved, strict=True):
        k.SetStdHandle(ctypes.c_uint32(n).value, handle)
    window = k.GetConsoleWindow()
    if window:
        k.ShowWindow(window, _SW_HIDE)
    return True
