"""Plain-text rendering of the API's answers for the CLI: the status table, system checks, events."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["event_line", "human_bytes", "human_duration", "service_line", "status_table", "system_lines"]

_COLUMNS = ("NAME", "STATE", "HEALTH", "PID", "UPTIME", "RESTARTS", "CPU", "MEM", "REASON")


def human_duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    s = int(seconds)
    days, s = divmod(s, 86400)
    hours, s = divmod(s, 3600)
    minutes, s = divmod(s, 60)
    if days:
        return f"{days}d{hours}h"
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m{s:02d}s" if minutes else f"{s}s"


def human_bytes(n: float | None) -> str:
    if n is None:
        return "-"
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"  # unreachable; keeps mypy sure of a return


def status_table(services: Sequence[Mapping[str, Any]]) -> str:
    rows = [_COLUMNS, *(_row(s) for s in services)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(_COLUMNS) - 1)]
    lines = ["  ".join([*(cell.ljust(w) for cell, w in zip(row[:-1], widths, strict=True)), row[-1]]).rstrip()
             for row in rows]
    return "\n".join(lines)


def _row(s: Mapping[str, Any]) -> tuple[str, ...]:
    sampled = s.get("pid") is not None and s.get("processes", 0) > 0  # figures exist for this child yet
    return (
        str(s["name"]), str(s["state"]), str(s.get("health", "-")), str(s.get("pid") or "-"),
        human_duration(s.get("uptime_s")), str(s.get("restarts", 0)),
        f"{s.get('cpu_percent', 0):.1f}%" if sampled else "-",
        human_bytes(s.get("rss_bytes")) if sampled else "-",
        str(s.get("reason") or ""),
    )


def service_line(s: Mapping[str, Any]) -> str:
    """`web: running (pid 1234)` after a command."""
    pid = f" (pid {s['pid']})" if s.get("pid") else ""
    reason = s.get("reason") or ""
    tail = f": {reason}" if reason and reason != s["state"] else ""
    return f"{s['name']}: {s['state']}{pid}{tail}"


def system_lines(system: Mapping[str, Any]) -> list[str]:
    lines = []
    for disk in system.get("disk") or ():
        free = disk.get("free_bytes")
        value = f"{human_bytes(free)} free (min {human_bytes(disk.get('min_free_bytes'))})" if free is not None \
            else disk.get("error") or "not read yet"
        lines.append(f"disk {disk.get('path')}: {value}  [{disk.get('state', '?')}]")
    memory = system.get("memory")
    if memory:
        used = memory.get("used_percent")
        value = f"{used:.0f}% used (max {memory.get('max_percent', 0):.0f}%)" if used is not None \
            else memory.get("error") or "not read yet"
        lines.append(f"memory: {value}  [{memory.get('state', '?')}]")
    return lines


def event_line(e: Mapping[str, Any]) -> str:
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(float(e.get("at", 0))))
    return f"{when}  #{e.get('id')}  {e.get('service') or '-'}  {e.get('kind')}: {e.get('message')}"
