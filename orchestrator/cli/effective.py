"""`orchestrator config`: the config as the supervisor would run it, after defaults and ${VAR} expansion.

Printed as YAML in the spec's own terms (durations in seconds as `*_s`, sizes in bytes, paths
absolute), so what `check` accepted and what `run` would do can be compared key by key. Secrets never
print: every `env` value and `api.token` show as `***` (the keys stay, so a missing variable still
shows), as in the API and the logs.
"""

from __future__ import annotations

import dataclasses
from enum import Enum
from pathlib import PurePath
from typing import Any

from orchestrator.config.spec import Config

__all__ = ["MASK", "effective"]

MASK = "***"


def effective(config: Config) -> dict[str, Any]:
    data: dict[str, Any] = _plain(config)
    for service in data["services"].values():
        service["env"] = dict.fromkeys(service.get("env") or {}, MASK)
    if data["api"].get("token"):
        data["api"]["token"] = MASK
    return data


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, PurePath):
        return str(value)
    if isinstance(value, dict) or hasattr(value, "items"):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value
