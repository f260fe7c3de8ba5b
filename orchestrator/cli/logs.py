"""`orchestrator logs [NAME...]`: services' output the way `docker compose logs` and `pm2 logs` show it.

- No name: every service; several names: those. stdout and stderr together unless `--stdout` or
  `--stderr` picks one (so a Python traceback is not hidden by default).
- Each line gets an aligned `name |` prefix (`name (err) |` for stderr), coloured per service on a
  terminal (`--no-color`, NO_COLOR). One NAME alone prints the lines bare, as they are in the file.
- Order: lines that carry the time they were read (`logs.timestamps: true`) are merged in time order
  across services and streams; without timestamps there is no time to merge by, so each service's
  lines come as a block (stdout, then stderr), services in the config's order. `--since` filters by
  those timestamps (a service without them is shown whole, with a warning).
- `-n N`: the last N lines of each service (both streams together). `--grep REGEX` keeps matching lines.
- `-f`: the tails, then every new line of every stream as it comes (one HTTP stream per service and
  stream, each read by a thread into one queue). The follows are opened before the tails are read,
  so a line written in between may show twice, never not at all. When the supervisor goes away the
  command says so and exits 1.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from collections.abc import Callable, Iterable
from functools import partial
from typing import TYPE_CHECKING, NamedTuple

from orchestrator.cli.tables import paint

if TYPE_CHECKING:  # queue, threading, datetime: imported when `logs` runs, not by every command
    import queue
    import threading

    from orchestrator.cli.client import ApiClient

__all__ = ["add_logs_parser", "parse_since"]

EXIT_OK, EXIT_FAILED = 0, 1
_STAMP = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:[+-]\d\d:\d\d|Z)?) ")
_PALETTE = ("36", "33", "32", "35", "34", "96", "93", "92", "95", "94")  # a colour per service, in turn
_ERR = " (err)"
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


class Line(NamedTuple):  # not a dataclass: `dataclasses` would be this module's dearest import
    service: str
    stream: str
    text: str
    at: float | None  # from the line's own timestamp, if the file has them


def add_logs_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser,
                    run: Callable[..., int]) -> None:
    logs = sub.add_parser("logs", parents=[common],
                          help="services' output, interleaved with `name |` prefixes; -f to follow")
    logs.add_argument("names", nargs="*", metavar="NAME", help="only these services (default: all)")
    streams = logs.add_mutually_exclusive_group()
    streams.add_argument("--stdout", dest="stream", action="store_const", const="stdout", help="stdout only")
    streams.add_argument("--stderr", dest="stream", action="store_const", const="stderr", help="stderr only")
    logs.add_argument("-n", "--lines", type=int, default=100,
                      help="the last N lines of each service (default 100, at most 10000)")
    logs.add_argument("-f", "--follow", action="store_true", help="keep printing new lines until Ctrl+C")
    logs.add_argument("--since", type=parse_since, metavar="WHEN",
                      help="only lines from then on: 10m, 1h30m, or 2026-12-01T12:00 (needs logs.timestamps)")
    logs.add_argument("--grep", type=re.compile, metavar="REGEX", help="only lines matching REGEX")
    logs.set_defaults(func=partial(run, body=_logs))


def parse_since(text: str, now: float | None = None) -> float:
    """Epoch seconds from a duration back from now (10m, 1h30m) or a local date and time."""
    now = time.time() if now is None else now
    parts = _DURATION.findall(text)
    if parts and "".join(n + u for n, u in parts) == text:
        return now - sum(float(n) * _SECONDS[u] for n, u in parts)
    from datetime import datetime

    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a duration like 10m or 1h30m, or a time like 2026-12-01T12:00, got {text!r}") from None


def _logs(args: argparse.Namespace, client: ApiClient) -> int:
    from orchestrator.cli.client import ClientError

    known = [s["name"] for s in client.get("/api/status")["services"]]
    names = args.names or known
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ClientError(f"no service named {', '.join(map(repr, unknown))}; known: {', '.join(known) or '(none)'}")
    streams = [args.stream] if args.stream else ["stdout", "stderr"]
    render = _Renderer(names, bare=len(args.names) == 1, color=_color(args), grep=args.grep)
    sources = [(name, stream) for name in names for stream in streams]
    follows = _Follows(client, sources) if args.follow else None  # opened first: nothing written is missed
    for line in _tails(client, names, streams, args.lines, args.since):
        render.line(line)
    if follows is None:
        return EXIT_OK
    return follows.run(render)


def _color(args: argparse.Namespace) -> bool:
    from orchestrator.cli.tables import color_wanted

    return color_wanted(no_color=args.no_color)


def _tails(client: ApiClient, names: list[str], streams: list[str], n: int, since: float | None) -> list[Line]:
    per_service: list[list[Line]] = []
    for name in names:
        lines = [Line(name, stream, text, _time_of(text))
                 for stream in streams
                 for text in client.get(f"/api/logs/{name}", {"stream": stream, "lines": n})["lines"]]
        timed = all(line.at is not None for line in lines)
        if timed:
            lines.sort(key=lambda line: line.at or 0.0)
        if since is not None:
            if timed:
                lines = [line for line in lines if (line.at or 0.0) >= since]
            elif lines:
                print(f"warning: {name}'s lines have no timestamps (logs.timestamps: true): --since shows them all",
                      file=sys.stderr)
        per_service.append(lines[-n:] if n else [])
    everything = [line for lines in per_service for line in lines]
    if everything and all(line.at is not None for line in everything):
        everything.sort(key=lambda line: line.at or 0.0)  # stable: a service's own order is kept on ties
    return everything


def _time_of(text: str) -> float | None:
    match = _STAMP.match(text)
    if match is None:
        return None
    from datetime import datetime

    try:
        return datetime.fromisoformat(match[1]).timestamp()
    except ValueError:
        return None


class _Renderer:
    def __init__(self, names: list[str], *, bare: bool, color: bool, grep: re.Pattern[str] | None) -> None:
        width = max((len(n) for n in names), default=0) + len(_ERR)
        self._prefix = {}
        for i, name in enumerate(names):
            code = _PALETTE[i % len(_PALETTE)]
            for stream in ("stdout", "stderr"):
                label = name + (_ERR if stream == "stderr" else "")
                text = paint(f"{label.ljust(width)} |", "31" if stream == "stderr" else code, color)
                self._prefix[name, stream] = "" if bare else text + " "
        self._grep = grep

    def line(self, line: Line) -> None:
        self.text(line.service, line.stream, line.text)

    def text(self, service: str, stream: str, text: str) -> None:
        if self._grep is not None and not self._grep.search(text):
            return
        print(self._prefix.get((service, stream), "") + text, flush=True)


class _Follows:
    """One thread per (service, stream) reading its SSE follow into one queue; the main thread prints.
    Threads, not asyncio: the client is the small synchronous one, and a thread per stream costs
    nothing next to the process's start (at most two per service)."""

    def __init__(self, client: ApiClient, sources: Iterable[tuple[str, str]]) -> None:
        import queue
        import threading

        self._queue: queue.Queue[tuple[str, str, str, str]] = queue.Queue()
        self._base = client
        sources = list(sources)
        opened = threading.Semaphore(0)
        for name, stream in sources:
            threading.Thread(target=self._read, args=(name, stream, opened), daemon=True).start()
        deadline = time.monotonic() + 10.0  # each follow answers its headers at once; bounded all the same
        for _ in sources:
            if not opened.acquire(timeout=max(0.0, deadline - time.monotonic())):
                break

    def _read(self, name: str, stream: str, opened: threading.Semaphore) -> None:
        from orchestrator.cli.client import ClientError

        client = self._base.copy()
        released = False

        def release() -> None:
            nonlocal released
            if not released:
                released = True
                opened.release()

        try:
            for event, data in client.follow(f"/api/logs/{name}", {"stream": stream, "lines": 0, "follow": "true"},
                                             on_open=release):
                self._queue.put((name, stream, event, data))
        except ClientError as exc:
            self._queue.put((name, stream, "end", str(exc)))
        finally:
            release()  # a stream that failed to open must not hold up the start
            client.close()

    def run(self, render: _Renderer) -> int:
        while True:
            name, stream, event, data = self._queue.get()
            if event == "message":
                render.text(name, stream, data)
            elif event == "end":
                print(f"error: {data}", file=sys.stderr, flush=True)
                return EXIT_FAILED
            else:
                print(f"[{name} {stream} {event}: {data}]", file=sys.stderr, flush=True)
