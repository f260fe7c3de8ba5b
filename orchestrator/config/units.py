"""Durations and sizes as people write them in a config file: "15s", "5m", "10MB"."""

from __future__ import annotations

import math
import re

from orchestrator.config.redact import Expanded, shown

__all__ = ["parse_duration", "parse_size"]

_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
# Binary multiples throughout: 10MB means 10 MiB, like most log-rotation tools read it.
_SIZE_UNITS = {
    "b": 1,
    "kb": 1024,
    "kib": 1024,
    "mb": 1024**2,
    "mib": 1024**2,
    "gb": 1024**3,
    "gib": 1024**3,
    "tb": 1024**4,
    "tib": 1024**4,
}
_DURATION_ORDER = ("h", "m", "s", "ms")
_COMPOUND = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)", re.IGNORECASE)
_NUMBER_UNIT = re.compile(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*([A-Za-z]*)\s*")


def parse_duration(value: object) -> float:
    """Seconds from "500ms", "15s", "5m", "1h", compounds of them, largest unit first, as Go and
    systemd write them ("2m30s", "1h30m"), or a bare number of seconds."""
    expected = "expected a duration like 15s, 500ms, 5m or 1h"
    if isinstance(value, str):
        parts = _COMPOUND.findall(value.strip())
        if len(parts) > 1 and "".join(n + u for n, u in parts) == value.strip():
            units = [u.lower() for _n, u in parts]
            order = [_DURATION_ORDER.index(u) for u in units]
            if order != sorted(set(order)):  # 30s2m, 1m1m: a typo, not a duration
                raise ValueError(f"{expected}, got {value!r} (in a compound like 2m30s: largest unit first, each once)")
            return float(sum(float(n) * _DURATION_UNITS[u] for n, u in zip([n for n, _ in parts], units,
                                                                              strict=True)))
    seconds = _parse(value, _DURATION_UNITS, expected, default_unit="s")
    return float(seconds)


def parse_size(value: object) -> int:
    """Bytes from "512KB", "10MB", "1GB" (binary multiples, KiB/MiB/GiB too), or a bare number of bytes."""
    expected = "expected a size like 512KB, 10MB or 1GB"
    size = _parse(value, _SIZE_UNITS, expected, default_unit="b")
    if size != int(size):
        raise ValueError(f"{expected}, got {shown(value)} (not a whole number of bytes)")
    return int(size)


def _parse(
    value: object, units: dict[str, float] | dict[str, int], expected: str, default_unit: str
) -> float:
    # bool is an int subclass: `true` is never a meaningful duration or size.
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"{expected}, got {shown(value)}")
    negative = f"{expected}, got {shown(value)} (must not be negative)"
    if isinstance(value, str):
        match = _NUMBER_UNIT.fullmatch(value)
        if match is None:
            raise ValueError(negative if value.strip().startswith("-") else f"{expected}, got {shown(value)}")
        number, unit = float(match[1]), (match[2].lower() or default_unit)
        if unit not in units:
            unit_text = "" if isinstance(value, Expanded) else f" {match[2]!r}"  # part of a ${VAR}'s text
            raise ValueError(f"{expected}, got {shown(value)} (unknown unit{unit_text})")
    else:
        number, unit = float(value), default_unit
    if not math.isfinite(number):
        raise ValueError(f"{expected}, got {shown(value)}")
    if number < 0:
        raise ValueError(negative)
    return number * units[unit]
