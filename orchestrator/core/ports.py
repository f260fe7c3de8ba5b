"""Who holds a TCP port: the check before a service with `ports:` starts.

A port already listened on (usually a leftover of an earlier run: the old setup's "port 3000 already
in use") would make the new child fail in a confusing way minutes later, or worse, make a health
probe reach the old process. So the service does not start, and the reason names the holder.
Blocking (psutil walks every socket): call it through anyio.to_thread.
"""

from __future__ import annotations

import errno
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import psutil

from orchestrator.platform.procname import process_name

__all__ = ["PortHolder", "api_port_holder", "port_conflict", "port_holders"]


@dataclass(frozen=True, slots=True)
class PortHolder:
    port: int
    pid: int | None  # None: the OS would not tell us
    program: str | None

    def describe(self) -> str:
        if self.pid is None:
            return f"port {self.port} is already in use: held by another process (the OS will not say which)"
        return f"port {self.port} is already in use by pid {self.pid} ({self.program or 'program unknown'})"


def port_holders(ports: Iterable[int]) -> list[PortHolder]:
    """The processes listening on any of these TCP ports (any local address), one per port and pid."""
    wanted = set(ports)
    if not wanted:
        return []
    try:
        connections = psutil.net_connections(kind="inet")
    except psutil.AccessDenied:  # macOS without root: fall back to asking the OS by binding
        return [PortHolder(p, None, None) for p in sorted(wanted) if _bind_refused(p)]
    seen: dict[tuple[int, int | None], PortHolder] = {}
    for conn in connections:
        port = conn.laddr.port if conn.laddr else None
        if conn.status != psutil.CONN_LISTEN or port not in wanted:
            continue
        pid = _owner(conn.pid)
        key = (port, pid)
        if key not in seen:
            seen[key] = PortHolder(port, pid, None if pid is None else process_name(pid))
    return sorted(seen.values(), key=lambda h: (h.port, h.pid or 0))


def port_conflict(ports: Iterable[int]) -> str | None:
    """Why a service with these ports cannot start now, or None when they are all free."""
    holders = port_holders(ports)
    return "; ".join(h.describe() for h in holders) or None


def _owner(pid: int | None) -> int | None:
    """The owner pid as reported, or None when the OS did not say. Pid 0 is the System Idle Process
    on Windows and the scheduler on Linux: never a listener, so it means "not told" (Wine's TCP table
    reports 0 for every owner)."""
    return pid or None


def api_port_holder(port: int) -> str | None:
    """Who holds the API's port, said for `orchestrator run`'s error: pid and program, and when it
    is another orchestrator, which config it runs (read from its command line). None when nobody is
    seen listening (the OS would not say, or the holder just left). The same config run twice never
    gets here: the state directory's lock refuses it first, naming the holder."""
    holders = [h for h in port_holders([port]) if h.pid is not None]
    if not holders:
        return None
    holder = holders[0]
    theirs = _orchestrator_config(holder.pid)
    if theirs is None:
        return f"held by pid {holder.pid} ({holder.program or 'program unknown'})"
    return f"held by another orchestrator, pid {holder.pid}, running {theirs}"


def _orchestrator_config(pid: int | None) -> Path | None:
    """The config an `orchestrator run` process was given, or None if `pid` is no orchestrator."""
    try:
        proc = psutil.Process(pid)
        argv, cwd = proc.cmdline(), proc.cwd()
    except psutil.Error:
        return None
    if "run" not in argv or not any("orchestrator" in a for a in argv[:3]):
        return None
    after_c = [argv[i + 1] for i, a in enumerate(argv[:-1]) if a in ("-c", "--config")]
    named = after_c[-1] if after_c else "supervisor.yaml"
    return Path(cwd, named)




def _bind_refused(port: int) -> bool:
    in_use = {errno.EADDRINUSE, getattr(errno, "WSAEADDRINUSE", errno.EADDRINUSE)}
    for host in ("127.0.0.1", "0.0.0.0"):
        with socket.socket() as sock:
            try:
                sock.bind((host, port))
            except OSError as exc:
                if exc.errno in in_use:
                    return True
    return False
