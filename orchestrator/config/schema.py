"""A JSON Schema of supervisor.yaml, built from the loader's own tables, for editors and `orchestrator schema`.

Every section the loader reads through a Table (key -> field, converter) gets its properties from
that Table, and each converter its schema fragment from `_fragment` (an unknown converter raises, so
a new one cannot slip in undescribed); the key lists (TOP_KEYS, SERVICE_KEYS, DEFAULTS_KEYS) give
the rest. The few values read by hand (command, env, depends_on, ports, comfy, api.listen) are
described next to the names of the readers that read them. tests/unit/test_schema.py checks the
generated schema against the file shipped in the package and in docs/, validates examples/*.yaml
and supervisor.yaml with it, and rejects what the loader rejects where a schema can say so.

A schema checks shape, not everything: `${VAR}` values are strings until expanded, so any
string passes where a number may come from the environment; dependencies, cycles, ports and the
single ComfyUI service are left to `orchestrator check`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from orchestrator.config import loader, read, services
from orchestrator.config.spec import UNLIMITED, DependencyCondition, RestartPolicy

__all__ = ["build_schema"]

_VAR = {"type": "string", "pattern": r"\$\{"}  # ${VAR}: known only once expanded
# ECMA-262 patterns (editors evaluate them in JavaScript): no inline flags, so cases are spelled out.
_UNIT = "([mM][sS]|[sSmMhH])"
_DURATION_TEXT = rf"^\s*(\d+(\.\d*)?|\.\d+)\s*{_UNIT}?\s*$|^(\d+(\.\d+)?{_UNIT})+$"
_DURATION = {"anyOf": [{"type": "number", "minimum": 0}, {"type": "string", "pattern": _DURATION_TEXT}, _VAR],
             "description": "15s, 500ms, 5m, 1h, 2m30s, or seconds"}
_SIZE = {"anyOf": [{"type": "integer", "minimum": 0},
                   {"type": "string", "pattern": r"^\s*(\d+(\.\d*)?|\.\d+)\s*([bB]|[kKmMgGtT][iI]?[bB])?\s*$"},
                   _VAR], "description": "512KB, 10MB, 1GB (binary), or bytes"}
_BOOL = {"anyOf": [{"type": "boolean"}, {"type": "string", "enum": ["true", "false", "yes", "no", "on", "off"]},
                   _VAR]}
_URL = {"type": "string", "pattern": r"^(https?://|\$\{)"}


def _integer(low: int, high: int | None = None) -> dict[str, Any]:
    number: dict[str, Any] = {"type": "integer", "minimum": low, **({"maximum": high} if high is not None else {})}
    return {"anyOf": [number, {"type": "string", "pattern": r"^\s*[-+]?\d+\s*$"}, _VAR]}


def _enum(values: list[str]) -> dict[str, Any]:
    return {"anyOf": [{"type": "string", "enum": values}, _VAR]}


def _fragment(converter: Callable[[Any], Any], where: str) -> dict[str, Any]:
    """The schema of what `converter` accepts; the closures are told apart by their __qualname__."""
    name = getattr(converter, "__qualname__", "")
    code = getattr(converter, "__code__", None)
    free = dict(zip(code.co_freevars if code else (), [c.cell_contents for c in converter.__closure__ or ()]
                    if code else (), strict=False))
    if converter is read.as_str:
        return {"type": "string"}
    if converter is read.as_bool:
        return _BOOL
    if converter is read.size:
        return _SIZE
    if converter is read.percent:
        return {"anyOf": [{"type": "number", "exclusiveMinimum": 0, "maximum": 100},
                          {"type": "string", "pattern": r"^\s*\d+(\.\d+)?\s*%?\s*$"}, _VAR]}
    if converter is read.signal_name:
        return _enum([*read.SIGNALS, *(s.removeprefix("SIG") for s in read.SIGNALS)])
    if converter is read.http_url or where == "comfy.url":
        return _URL
    if name.startswith("duration."):
        return _DURATION
    if name.startswith("integer."):
        return _integer(int(free["low"]), None if free.get("high") is None else int(free["high"]))
    if name.startswith("enum_of."):
        return _enum([str(m.value) for m in free["kind"]])
    if converter is services._attempts:  # a whole number >= 0, or `unlimited`
        return {"anyOf": [*_integer(0)["anyOf"], {"type": "string", "enum": [UNLIMITED.value]}]}
    if where == "health.expect_status":
        return {"type": "array", "items": _integer(100, 599)}
    raise ValueError(f"no schema for the converter of {where} ({name or converter!r}): add it to schema.py")


def _table(table: Mapping[str, tuple[str, Callable[[Any], Any]]], where: str) -> dict[str, Any]:
    return {"type": ["object", "null"], "additionalProperties": False,
            "properties": {key: _fragment(conv, f"{where}.{key}") for key, (_field, conv) in table.items()}}


def build_schema() -> dict[str, Any]:
    restart = {"anyOf": [_table(services.RESTART, "restart"), _enum([p.value for p in RestartPolicy])]}
    health_common = _table(services.HEALTH_COMMON, "health")
    health = {"anyOf": [_table(services.HEALTH, "health"), {"const": False}]}
    name_list = {"type": "array", "items": {"type": "string"}}
    service_props: dict[str, Any] = {
        "command": {"anyOf": [{"type": "string", "minLength": 1},  # services._command
                              {"type": "array", "minItems": 1, "items": {"type": ["string", "number"]}}]},
        "cwd": {"type": "string"},
        "env": {"type": ["object", "null"],  # services._env
                "additionalProperties": {"type": ["string", "number", "boolean", "null"]}},
        "env_file": {"type": "string"},
        "autostart": _BOOL,
        "depends_on": {"anyOf": [name_list, {"type": "null"},  # services._depends_on
                                 {"type": "object", "additionalProperties":
                                  _enum([c.value for c in DependencyCondition])}]},
        "restart": restart,
        "stop": _table(services.STOP, "stop"),
        "start_period": _DURATION,
        "health": health,
        "ports": {"anyOf": [{"type": "array", "items": _integer(1, 65535)}, _integer(1, 65535)]},  # services._ports
        "comfy": {"anyOf": [{"type": ["boolean", "null"]}, _table(services.COMFY, "comfy")]},  # services._comfy
    }
    missing = set(services.SERVICE_KEYS) ^ set(service_props)
    if missing:
        raise ValueError(f"schema.py and services.SERVICE_KEYS disagree on {sorted(missing)}")
    service = {"type": "object", "additionalProperties": False, "required": ["command"], "properties": service_props}
    disk = _table(loader.DISK, "checks.disk")
    top: dict[str, Any] = {
        "api": {"type": ["object", "null"], "additionalProperties": False, "properties": {  # loader._read_api
            "listen": {"type": "string", "pattern": r"^(\[[^\]]+\]|[^:\[\]\s]+):\d+$|\$\{"},
            "token": {"type": ["string", "null"]}}},
        "logs": _table(loader.LOGS, "logs"),
        "defaults": {"type": ["object", "null"], "additionalProperties": False, "properties": {
            "restart": restart, "stop": _table(services.STOP, "stop"), "start_period": _DURATION,
            "health": {"anyOf": [health_common, {"const": False}]}}},
        "services": {"type": ["object", "null"], "propertyNames": {"pattern": f"^{services.NAME.pattern}$"},
                     "additionalProperties": service},
        "checks": {"type": ["object", "null"], "additionalProperties": False, "properties": {
            "disk": {"anyOf": [disk, {"type": "array", "items": disk}]},
            "memory": _table(loader.MEMORY, "checks.memory")}},
        "reload": _table(loader.RELOAD, "reload"),
        "state_dir": {"type": "string"},
        "events": _table(loader.EVENTS, "events"),
        "status": _table(loader.STATUS, "status"),
    }
    if set(top) != set(loader.TOP_KEYS):
        raise ValueError(f"schema.py and loader.TOP_KEYS disagree on {sorted(set(top) ^ set(loader.TOP_KEYS))}")
    if set(top["defaults"]["properties"]) != set(services.DEFAULTS_KEYS):
        raise ValueError("schema.py and services.DEFAULTS_KEYS disagree")
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "orchestrator supervisor.yaml",
        "description": "Generated from orchestrator.config (orchestrator schema); reference: docs/config.md.",
        "type": "object",
        "additionalProperties": False,
        "patternProperties": {"^x-": {}},
        "properties": top,
    }
