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

import psutil

from orchestrator.platform.procname import process_name

__all__ = ["PortHolder", "port_conflict", "port_holders"]


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
