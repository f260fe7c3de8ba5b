"""Plain-text rendering of the API's answers for the CLI: the status table, system checks, events.

Colour only where a person reads it: `color_wanted` says yes for a terminal unless `--no-color` or
the NO_COLOR convention (no-color.org: set and not empty) says no. Cells are padded before they are
coloured, so the escape codes never skew the columns.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, TextIO

__all__ = ["color_wanted", "event_line", "event_lines", "human_bytes", "human_duration", "paint", "service_line",
           "status_table", "system_lines"]

_COLUMNS = ("NAME", "STATE", "HEALTH", "PID", "UPTIME", "RESTARTS", "CPU", "MEM", "REASON")
_RED, _YELLOW, _GREEN, _CYAN, _DIM = "31", "33", "32", "36", "2"
STATE_COLORS = {"running": _GREEN, "fatal": _RED, "backoff": _YELLOW, "starting": _CYAN, "stopping": _CYAN,
                "draining": _CYAN, "exited": _DIM, "stopped": _DIM}
HEALTH_COLORS = {"healthy": _GREEN, "unhealthy": _RED}


def color_wanted(stream: TextIO | None = None, *, no_color: bool = False,
                 environ: Mapping[str, str] | None = None) -> bool:
    environ = os.environ if environ is None else environ
    stream = sys.stdout if stream is None else stream
    if no_color or environ.get("NO_COLOR"):
        return False
    from orchestrator.platform.console import ansi_console  # here: a pipe never pays for it

    return ansi_console(stream)


def paint(text: str, code: str | None, on: bool) -> str:
    return f"\033[{code}m{text}\033[0m" if on and code else text


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


def status_table(services: Sequence[Mapping[str, Any]], *, color: bool = False) -> str:
    rows = [_COLUMNS, *(_row(s) for s in services)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(_COLUMNS) - 1)]
    lines = []
    for n, row in enumerate(rows):
        cells = [cell.ljust(w) for cell, w in zip(row[:-1], widths, strict=True)]
        if n and color:
            cells[1] = paint(cells[1], STATE_COLORS.get(row[1]), True)
            cells[2] = paint(cells[2], HEALTH_COLORS.get(row[2]), True)
        lines.append("  ".join([*cells, row[-1]]).rstrip())
    return "\n".join(lines)


def _row(s: Mapping[str, Any]) -> tuple[str, ...]:
    sampled = s.get("pid") is not None and s.get("processes", 0) > 0  # figures exist for this child yet
    return (
        str(s["name"]), str(s["state"]), _health(s.get("health")), str(s.get("pid") or "-"),
        human_duration(s.get("uptime_s")), str(s.get("restarts", 0)),
        f"{s.get('cpu_percent', 0):.1f}%" if sampled else "-",
        human_bytes(s.get("rss_bytes")) if sampled else "-",
        str(s.get("reason") or ""),
    )


def _health(value: object) -> str:
    return "-" if value in (None, "none") else str(value)  # none: the service has no health check


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


def event_line(e: Mapping[str, Any], *, color: bool = False) -> str:
    """One event: a state change as `from → to: why`, anything else as `kind: message`."""
    return event_lines([e], color=color)[0]


def _arrow() -> str:
    """→ where the output can carry it; -> on a legacy code page (a Windows pipe in cp1252 cannot)."""
    try:
        "\u2192".encode(sys.stdout.encoding or "ascii")
    except (UnicodeEncodeError, LookupError):
        return "->"
    return "\u2192"


def event_lines(events: Iterable[Mapping[str, Any]], *, color: bool = False) -> list[str]:
    """The events, each said once. A service's consecutive state changes for one reason are one line
    (`running → stopping → starting: restarted by hand`), and a `restart` that repeats the reason just
    before it adds only what it knows more (the attempt) to that line."""
    lines: list[str] = []
    chain: list[str] = []  # the states of the line being built, when it is a state change
    last: Mapping[str, Any] | None = None
    tail = ""
    for e in events:
        kind, message = e.get("kind"), str(e.get("message") or "")
        same = last is not None and last.get("service") == e.get("service") and chain
        if same and kind == "restart" and last is not None and message.startswith(str(last.get("message") or "")):
            tail += message[len(str(last.get("message") or "")):]
            lines[-1] = _change_line(last, chain, tail, color)
            continue
        if (same and kind == "state_changed" and last is not None and message == last.get("message")
                and e.get("from_state") == chain[-1] and not tail):
            chain.append(str(e.get("to_state")))
            lines[-1] = _change_line(last, chain, tail, color)
            continue
        last, tail = e, ""
        if kind == "state_changed" and e.get("to_state"):
            chain = [str(e.get("from_state", "?")), str(e["to_state"])]
            lines.append(_change_line(e, chain, tail, color))
        else:
            chain = []
            lines.append(_event_head(e) + f"{kind}: {message}")
    return lines


def _event_head(e: Mapping[str, Any]) -> str:
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(float(e.get("at", 0))))
    return f"{when}  #{e.get('id')}  {e.get('service') or '-'}  "


def _change_line(first: Mapping[str, Any], chain: list[str], tail: str, color: bool) -> str:
    states = [*chain[:-1], paint(chain[-1], STATE_COLORS.get(chain[-1]), color)]
    message = str(first.get("message") or "")
    why = f": {message}{tail}" if message and message != chain[-1] else tail
    return _event_head(first) + f" {_arrow()} ".join(states) + why
