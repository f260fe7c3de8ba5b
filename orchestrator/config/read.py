"""Reading typed values out of the plain YAML data while collecting every issue, for config.py.

A converter takes the raw YAML value and returns the typed one or raises ValueError saying what was
expected; the Reader turns that into a ConfigIssue at the right line and carries on, so one run of
the loader reports every problem in the file.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Mapping
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit

from orchestrator.config.document import KeyPath, format_path
from orchestrator.config.redact import Expanded, shown, shown_url
from orchestrator.config.text import is_absolute_anywhere, resolve_path
from orchestrator.config.units import parse_duration, parse_size
from orchestrator.errors import ConfigIssue

__all__ = [
    "Converter",
    "Reader",
    "as_bool",
    "as_str",
    "describe",
    "duration",
    "enum_of",
    "http_url",
    "integer",
    "is_absolute_anywhere",
    "percent",
    "resolve_path",
    "signal_name",
    "size",
]

Converter = Callable[[Any], Any]
Table = Mapping[str, tuple[str, Converter]]  # YAML key -> (dataclass field, converter)

SIGNALS = ("SIGTERM", "SIGINT", "SIGKILL", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2", "SIGBREAK")
_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}


def describe(value: Any, *, quote: bool = True) -> str:
    """The raw value as a message shows it: "got 'abc'", "got a list".

    Text from a ${VAR} is never quoted (redact.shown); with quote=False no text is (env values).
    """
    if isinstance(value, str) and not quote:
        return "a string (not shown)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "nothing"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return shown(value)


def as_str(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"expected a string, got {describe(value)}")
    return value


def as_bool(value: Any) -> bool:
    # Strings too, so `autostart: ${AUTOSTART:-true}` works.
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise ValueError(f"expected true or false, got {describe(value)}")


def integer(low: int, high: int | None = None) -> Converter:
    def convert(value: Any) -> int:
        if isinstance(value, str) and re.fullmatch(r"\s*[-+]?\d+\s*", value):
            value = int(value)  # "${PORT}" expands to text
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"expected a whole number, got {describe(value)}")
        if value < low or (high is not None and value > high):
            bounds = f">= {low}" if high is None else f"from {low} to {high}"
            raise ValueError(f"expected a whole number {bounds}, got {value}")
        return value

    return convert


def duration(*, positive: bool = False) -> Converter:
    def convert(value: Any) -> float:
        seconds = parse_duration(value)
        if positive and seconds <= 0:
            raise ValueError(f"expected a duration above zero like 15s, got {describe(value)}")
        return seconds

    return convert


def size(value: Any) -> int:
    return parse_size(value)


def percent(value: Any) -> float:
    text = value.strip().removesuffix("%") if isinstance(value, str) else value
    try:
        number = float(text) if not isinstance(text, bool) else -1.0
    except (TypeError, ValueError):
        number = -1.0
    if not 0 < number <= 100:
        raise ValueError(
            f"expected a percentage above 0 and at most 100 like 80 or 80%, got {describe(value)}"
        )
    return number


def enum_of(kind: type[StrEnum]) -> Converter:
    def convert(value: Any) -> StrEnum:
        choices = [str(member.value) for member in kind]
        if isinstance(value, str) and value.strip().lower() in choices:
            return kind(value.strip().lower())
        raise ValueError(f"expected one of {', '.join(choices)}, got {describe(value)}")

    return convert


def signal_name(value: Any) -> str:
    name = value.strip().upper() if isinstance(value, str) else ""
    name = name if name.startswith("SIG") else "SIG" + name
    if name not in SIGNALS:
        raise ValueError(f"expected a signal name, one of {', '.join(SIGNALS)}, got {describe(value)}")
    return name


def http_url(value: Any) -> str:
    """The URL, stripped; messages show it through shown_url (no userinfo, no query)."""
    text = as_str(value).strip()
    if isinstance(value, Expanded):
        text = Expanded(text, value.template, value.names)  # keeps its taint for later messages
    try:
        parts = urlsplit(text)
        ok = parts.scheme in ("http", "https") and bool(parts.hostname)
    except ValueError:
        ok = False
    if not ok:
        raise ValueError(
            f"expected an http:// or https:// URL like http://127.0.0.1:8188, got {shown_url(text)!r}"
        )
    try:
        parts.port  # noqa: B018 -- raises on a port that is not a number or out of range
    except ValueError:
        raise ValueError(
            f"expected an http:// or https:// URL with a valid port, got {shown_url(text)!r}"
        ) from None
    return text


# Keys people bring from Docker Compose files, and ours for them.
COMPOSE_HABITS = {"environment": "env", "working_dir": "cwd", "healthcheck": "health"}


class Reader:
    """Collects issues; every method returns what it could read and records what it could not."""

    def __init__(
        self, file: str, lines: Mapping[KeyPath, int], issues: list[ConfigIssue] | None = None
    ) -> None:
        self.file = file
        self.lines = lines
        self.issues: list[ConfigIssue] = list(issues or [])

    def line(self, path: KeyPath) -> int | None:
        while path not in self.lines and path:
            path = path[:-1]
        return self.lines.get(path)

    def issue(self, path: KeyPath, message: str) -> None:
        self.issues.append(ConfigIssue(self.file, self.line(path), format_path(path), message))

    def convert(self, value: Any, path: KeyPath, converter: Converter) -> Any:
        """The converted value, or None after recording why it could not be converted."""
        try:
            return converter(value)
        except ValueError as exc:
            # A value already reported (say an unset ${VAR} that expanded to "") needs no second issue.
            if not any(issue.key_path == format_path(path) for issue in self.issues):
                self.issue(path, str(exc))
            return None

    def mapping(self, value: Any, path: KeyPath, allowed: Collection[str]) -> dict[str, Any] | None:
        """A mapping with only `allowed` keys (others reported); null reads as empty."""
        if value is None:
            return {}
        if not isinstance(value, dict):
            # Not quoted: a section written as one line of text (`env: "TOKEN=..."`) may hold a secret.
            self.issue(path, f"expected a mapping with keys {', '.join(allowed)}, got {describe(value, quote=False)}")
            return None
        for key in value:
            if key not in allowed:
                self.unknown_key((*path, key), allowed)
        return value

    def unknown_key(self, path: KeyPath, allowed: Collection[str]) -> None:
        key = str(path[-1])
        habit = COMPOSE_HABITS.get(key)
        if habit in allowed:
            self.issue(path, f"unknown key {key!r}; did you mean {habit!r}? (Docker Compose's {key} is {habit} here)")
            return
        import difflib  # here: only a typo pays for it

        close = difflib.get_close_matches(key, list(allowed), n=1, cutoff=0.6)
        hint = f"did you mean {close[0]!r}?" if close else f"expected one of: {', '.join(allowed)}"
        self.issue(path, f"unknown key {key!r}; {hint}")

    def has_issue_under(self, path: KeyPath) -> bool:
        """Whether an issue was already recorded at `path` or inside it (one cause, said once)."""
        prefix = format_path(path)
        return any(i.key_path == prefix or i.key_path.startswith((f"{prefix}.", f"{prefix}[")) for i in self.issues)

    def fields(self, value: Any, path: KeyPath, table: Table) -> dict[str, Any]:
        """Dataclass keyword arguments for the keys present in a mapping described by `table`."""
        raw = self.mapping(value, path, table.keys())
        out: dict[str, Any] = {}
        for key, item in (raw or {}).items():
            if key in table:
                name, converter = table[key]
                converted = self.convert(item, (*path, key), converter)
                if converted is not None:
                    out[name] = converted
        return out
