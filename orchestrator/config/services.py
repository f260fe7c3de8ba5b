"""The `services:` and `defaults:` sections, for config.py."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from orchestrator.config.document import KeyPath
from orchestrator.config.read import (
    Reader,
    Table,
    as_bool,
    as_str,
    describe,
    duration,
    enum_of,
    http_url,
    integer,
    resolve_path,
    signal_name,
)
from orchestrator.config.redact import Expanded
from orchestrator.config.spec import (
    UNLIMITED,
    ComfySpec,
    Dependency,
    DependencyCondition,
    HealthAction,
    HealthSpec,
    ProxyAuth,
    RestartPolicy,
    RestartSpec,
    ServiceSpec,
    StopSpec,
    Unlimited,
)
from orchestrator.platform.cmdline import split_command

__all__ = ["DEFAULTS_KEYS", "Defaults", "read_defaults", "read_service"]

COMFY_GRACE_S = 600.0  # ComfyUI opens its port only after importing every custom node
NAME = re.compile(r"[A-Za-z0-9_.-]+")


def _attempts(value: Any) -> int | Unlimited:
    if isinstance(value, str) and value.strip().lower() == UNLIMITED.value:
        return UNLIMITED
    try:
        count: int = integer(0)(value)
    except ValueError as exc:  # -1, .inf, "forever": say what is accepted
        raise ValueError(f"{exc}; the accepted values are a whole number >= 0 or `unlimited`") from None
    return count


RESTART: Table = {
    "policy": ("policy", enum_of(RestartPolicy)),
    "attempts": ("attempts", _attempts),
    "cooldown": ("cooldown_s", duration()),
    "reset_after": ("reset_after_s", duration()),
}
STOP: Table = {"timeout": ("timeout_s", duration()), "signal": ("signal", signal_name)}
HEALTH_COMMON: Table = {
    "every": ("every_s", duration(positive=True)),
    "timeout": ("timeout_s", duration(positive=True)),
    "grace": ("grace_s", duration()),
    "failures": ("failures", integer(1)),
    "action": ("action", enum_of(HealthAction)),
}
HEALTH: Table = {"url": ("url", http_url), "expect_status": ("expect_status", lambda v: v), **HEALTH_COMMON}
COMFY: Table = {
    "url": ("url", lambda v: http_url(v).rstrip("/")),
    "proxy_timeout": ("proxy_timeout_s", duration(positive=True)),
    "drain_timeout": ("drain_timeout_s", duration()),
    "busy_timeout": ("busy_timeout_s", duration()),
    "proxy_auth": ("proxy_auth", enum_of(ProxyAuth)),
}
SERVICE_KEYS = (
    "command", "cwd", "env", "env_file", "autostart", "depends_on", "restart", "stop",
    "start_period", "health", "ports", "comfy",
)  # fmt: skip
DEFAULTS_KEYS = ("restart", "stop", "start_period", "health")


@dataclass
class Defaults:
    """`defaults:` as keyword arguments, laid under each service's own keys one key at a time."""

    restart: dict[str, Any] = field(default_factory=dict)
    stop: dict[str, Any] = field(default_factory=dict)
    health: dict[str, Any] = field(default_factory=dict)
    start_period_s: float | None = None


def read_defaults(r: Reader, value: Any) -> Defaults:
    path: KeyPath = ("defaults",)
    raw = r.mapping(value, path, DEFAULTS_KEYS) or {}
    out = Defaults(
        restart=r.fields(_restart_shorthand(raw.get("restart")), (*path, "restart"), RESTART),
        stop=r.fields(raw.get("stop"), (*path, "stop"), STOP),
        health=r.fields(raw.get("health"), (*path, "health"), HEALTH_COMMON),
    )
    if "start_period" in raw:
        out.start_period_s = r.convert(raw["start_period"], (*path, "start_period"), duration())
    return out


def read_service(r: Reader, name: str, value: Any, defaults: Defaults, base: Path) -> ServiceSpec:
    """One service; always returns a spec (blanks where the file was wrong) so later checks still run."""
    path: KeyPath = ("services", name)
    if not NAME.fullmatch(name):
        r.issue(path, f"bad service name {name!r}: use only letters, digits, '_', '.' and '-'")
    raw = r.mapping(value, path, SERVICE_KEYS)
    if raw is None:  # not a mapping (already reported): nothing more to read
        return ServiceSpec(name=name, command=(), line=r.line(path))
    comfy = _comfy(r, raw.get("comfy", False), (*path, "comfy"))
    own_restart = r.fields(_restart_shorthand(raw.get("restart")), (*path, "restart"), RESTART)
    return ServiceSpec(
        name=name,
        command=_command(r, raw, path),
        cwd=_path(r, raw, "cwd", path, base),
        env=_env(r, raw.get("env"), (*path, "env")),
        env_file=_path(r, raw, "env_file", path, base),
        autostart=_autostart(r, raw, path),
        depends_on=_depends_on(r, raw.get("depends_on"), (*path, "depends_on")),
        restart=RestartSpec(**{**defaults.restart, **own_restart}),
        stop=_stop(r, raw, path, defaults, comfy),
        start_period_s=_start_period(r, raw, path, defaults),
        health=_health(r, raw, path, defaults, comfy),
        ports=_ports(r, raw, path, comfy),
        comfy=comfy,
        line=r.line(path),
    )


def _command(r: Reader, raw: dict[str, Any], path: KeyPath) -> tuple[str, ...]:
    if "command" not in raw:
        r.issue(path, "missing key 'command': the program to run, as a list like [python, app.py]")
        return ()
    path, value = (*path, "command"), raw["command"]
    if isinstance(value, str):
        try:
            argv = _split_keeping_templates(value)
        except ValueError as exc:
            r.issue(path, f"cannot split the command line: {exc}")
            return ()
    elif isinstance(value, list) and all(_is_word(item) for item in value):
        argv = [item if isinstance(item, str) else str(item) for item in value]  # an Expanded stays one
    else:
        r.issue(
            path, f"expected a list of strings like [python, app.py] or a command line, got {describe(value)}"
        )
        return ()
    if (not argv or not argv[0].strip()) and not r.has_issue_under(path):  # not after an unset ${VAR}
        r.issue(path, "the command is empty: expected the program to run")
        return ()
    return tuple(argv)


def _split_keeping_templates(command: str) -> list[str]:
    """split_command, with each word that took text from a ${VAR} marked Expanded (as written), so that
    `check` prints `--token ${HF_TOKEN}`, not the token."""
    argv = split_command(command)
    if not isinstance(command, Expanded):
        return argv
    try:
        written = split_command(command.template)
    except ValueError:  # the written form does not split alone (a quote inside a default): mark every word
        written = []
    if len(written) != len(argv):  # a variable expanded into several words: no word-by-word match
        return [Expanded(word, "${...}", command.names) for word in argv]
    pairs = zip(argv, written, strict=True)
    return [Expanded(word, form, command.names) if word != form else word for word, form in pairs]


def _is_word(item: Any) -> bool:
    # Numbers are fine as arguments (`[python, -m, http.server, 8780]`); true/null/lists are mistakes.
    return isinstance(item, str | int | float) and not isinstance(item, bool)


def _path(r: Reader, raw: dict[str, Any], key: str, path: KeyPath, base: Path) -> str | None:
    if raw.get(key) is None:
        return None
    text = r.convert(raw[key], (*path, key), as_str)
    if text == "":
        r.issue((*path, key), "expected a path, got an empty string")
    return resolve_path(text, base) if text else None


def _env(r: Reader, value: Any, path: KeyPath) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        r.issue(path, f"expected a mapping of NAME: value, got {describe(value, quote=False)}")
        return {}
    env: dict[str, str] = {}
    for key, item in value.items():
        if not key or "=" in key:
            r.issue((*path, key), f"bad environment variable name {key!r}")
        elif isinstance(item, bool):
            env[key] = "true" if item else "false"
        elif isinstance(item, str | int | float) or item is None:
            env[key] = "" if item is None else str(item)
        else:
            r.issue((*path, key), f"expected a string, number or true/false, got {describe(item, quote=False)}")
    return env


def _autostart(r: Reader, raw: dict[str, Any], path: KeyPath) -> bool:
    if "autostart" not in raw:
        return True
    return r.convert(raw["autostart"], (*path, "autostart"), as_bool) is not False


def _start_period(r: Reader, raw: dict[str, Any], path: KeyPath, defaults: Defaults) -> float:
    if "start_period" not in raw:
        return 1.0 if defaults.start_period_s is None else defaults.start_period_s
    seconds = r.convert(raw["start_period"], (*path, "start_period"), duration())
    return 1.0 if seconds is None else float(seconds)


def _stop(
    r: Reader, raw: dict[str, Any], path: KeyPath, defaults: Defaults, comfy: ComfySpec | None
) -> StopSpec:
    # ComfyUI cleans up only on Ctrl+C: SIGINT beats defaults.stop.signal; the service's own key beats both.
    kwargs = {**defaults.stop, **({"signal": "SIGINT"} if comfy else {})}
    kwargs.update(r.fields(raw.get("stop"), (*path, "stop"), STOP))
    return StopSpec(**kwargs)


def _depends_on(r: Reader, value: Any, path: KeyPath) -> tuple[Dependency, ...]:
    if value is None:
        return ()
    if isinstance(value, list):
        pairs = [((*path, i), item, "running") for i, item in enumerate(value)]
    elif isinstance(value, dict):
        pairs = [((*path, key), key, condition) for key, condition in value.items()]
    else:
        r.issue(
            path,
            f"expected a list of service names or a mapping name: running|healthy|completed, got {describe(value)}",
        )
        return ()
    deps: dict[str, Dependency] = {}
    for where, name, condition in pairs:
        target = r.convert(name, where, as_str)
        state = r.convert(condition, where, enum_of(DependencyCondition))
        if target in deps:
            r.issue(where, f"{target!r} is listed twice")
        elif target is not None and state is not None:
            deps[target] = Dependency(target, state)
    return tuple(deps.values())


def _ports(r: Reader, raw: dict[str, Any], path: KeyPath, comfy: ComfySpec | None) -> tuple[int, ...]:
    if "ports" not in raw:
        return (_url_port(comfy.url),) if comfy else ()
    path, value = (*path, "ports"), raw["ports"]
    items = value if isinstance(value, list) else [value]
    ports: list[int] = []
    for i, item in enumerate(items):
        where = (*path, i) if isinstance(value, list) else path
        port = r.convert(item, where, integer(1, 65535))
        if port in ports:
            r.issue(where, f"port {port} is listed twice")
        elif port is not None:
            ports.append(port)
    return tuple(ports)


def _url_port(url: str) -> int:
    parts = urlsplit(url)
    return parts.port or (443 if parts.scheme == "https" else 80)


def _comfy(r: Reader, value: Any, path: KeyPath) -> ComfySpec | None:
    # `comfy: true`, `comfy: {}` and a bare `comfy:` all mean "this is ComfyUI, with the defaults".
    if value is False:
        return None
    kwargs = r.fields({} if value is True else value, path, COMFY)
    return ComfySpec(**kwargs)


def _health(
    r: Reader, raw: dict[str, Any], path: KeyPath, defaults: Defaults, comfy: ComfySpec | None
) -> HealthSpec | None:
    value = raw.get("health", False if comfy is None else None)
    if value is False:  # no health key (and not ComfyUI), or `health: false` to switch probing off
        return None
    value = {} if value is True else value
    path = (*path, "health")
    kwargs: dict[str, Any] = {"url": f"{comfy.url}/system_stats", "grace_s": COMFY_GRACE_S} if comfy else {}
    kwargs.update(defaults.health)
    kwargs.update(r.fields(value, path, HEALTH))
    if "expect_status" in kwargs:
        kwargs["expect_status"] = _statuses(r, kwargs["expect_status"], (*path, "expect_status"))
    if "url" not in kwargs:
        if value is None or (isinstance(value, dict) and "url" not in value):
            r.issue(path, "missing key 'url': the http:// address to probe")
        return None
    return HealthSpec(**kwargs)


def _statuses(r: Reader, value: Any, path: KeyPath) -> tuple[int, ...]:
    if not isinstance(value, list):
        code = r.convert(value, path, integer(100, 599))
        return () if code is None else (code,)
    codes = [r.convert(item, (*path, i), integer(100, 599)) for i, item in enumerate(value)]
    return tuple(code for code in codes if code is not None)


def _restart_shorthand(value: Any) -> Any:
    """`restart: always` (Docker Compose's way) is `restart: {policy: always}`."""
    return {"policy": value} if isinstance(value, str) else value
