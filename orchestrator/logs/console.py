"""The supervisor's console for a person at a terminal: one short line per event.

    12:03:55 web     running (pid 4242)
    12:03:58 flaky   backoff: exited with code 1 (attempt 1 of 5)
    12:04:01 -       api_listening url=http://127.0.0.1:8765

The time, the service (aligned; `-` for the supervisor itself), then what happened: a state change is
its new state with the pid, and the reason when it says more; any other event its message; a record
of ours or of uvicorn its name and fields. Warnings are yellow and errors red on a terminal. The JSON
lines in orchestrator.log keep every field; this keeps what a person reads (the key=value console it
replaces averaged 169 characters a line with `service=` mid-line).
"""

from __future__ import annotations

import logging
from collections.abc import MutableMapping
from datetime import datetime
from typing import Any

__all__ = ["ConsoleLines"]

_HIDDEN = {"event", "level", "logger", "timestamp", "service", "message", "from_state", "to_state", "pid",
           "exit_code", "cause", "attempt", "_record", "_from_structlog", "positional_args"}
_LEVEL_COLOR = {"warning": "33", "error": "31", "critical": "31", "exception": "31"}


class ConsoleLines:
    """A structlog renderer (the last processor of the console handler's chain), and the handler's
    filter: a `restart` event repeats the state change just before it, so only what it adds (the
    attempt) is shown, and nothing when it adds nothing (a restart by hand)."""

    def __init__(self, *, width: int = 8, colors: bool = False) -> None:
        self.width = width
        self.colors = colors
        self._last: dict[str, str] = {}  # service -> the message of its last state change

    def filter(self, record: logging.LogRecord) -> bool:
        event = record.msg
        if not isinstance(event, dict) or record.name != "orchestrator.events":
            return True
        service, message = str(event.get("service")), str(event.get("message", ""))
        if event.get("event") == "state_changed":
            self._last[service] = message
        elif event.get("event") == "restart" and message.startswith(self._last.get(service, "\0")):
            rest = message[len(self._last[service]):].strip()
            if not rest:
                return False
            record.msg = {**event, "message": rest}
        return True

    def __call__(self, logger: object, method: str, event: MutableMapping[str, Any]) -> str:
        when = _clock(event.get("timestamp"))
        service = str(event.get("service") or "-")
        line = f"{when} {service.ljust(self.width)} {_what(event)}"
        exc = event.get("exception")
        if exc:
            line += f"\n{exc}"
        color = _LEVEL_COLOR.get(str(event.get("level", "")))
        return f"\033[{color}m{line}\033[0m" if color and self.colors else line


def _what(event: MutableMapping[str, Any]) -> str:
    name, message = str(event.get("event", "")), event.get("message")
    if name == "state_changed" and event.get("to_state"):
        to = str(event["to_state"])
        pid = f" (pid {event['pid']})" if event.get("pid") and to in ("starting", "running") else ""
        why = f": {message}" if message and message not in (to, "started") else ""
        return f"{to}{pid}{why}"
    if message is not None and event.get("logger") == "orchestrator.events":
        return f"{name}: {message}"
    extra = " ".join(f"{k}={_short(v)}" for k, v in event.items() if k not in _HIDDEN and k != "exception")
    text = str(message) if message is not None else name
    if message is not None and name:
        text = f"{name}: {message}"
    return f"{text} {extra}".rstrip()


def _short(value: object) -> str:
    text = str(value)
    return repr(text) if " " in text else text


def _clock(stamp: object) -> str:
    try:
        return datetime.fromisoformat(str(stamp)).strftime("%H:%M:%S")
    except ValueError:
        return datetime.now().strftime("%H:%M:%S")
