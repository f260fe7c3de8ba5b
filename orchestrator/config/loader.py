"""Loading supervisor.yaml into the frozen Config of spec.py, reporting every problem at once.

The YAML is read with line numbers (config_yaml), values are converted and checked section by
section (config_read, config_services), then the checks that need every service: dependencies,
ports, and the single ComfyUI service. Any issue raises ConfigError carrying all of them.
"""

from __future__ import annotations

import ipaddress
import os
import re
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from orchestrator.config.bounds import MAX_CONFIG_BYTES, size_problem
from orchestrator.config.checks import check_services
from orchestrator.config.document import KeyPath, load_yaml
from orchestrator.config.read import (
    Reader,
    Table,
    as_bool,
    as_str,
    describe,
    duration,
    integer,
    percent,
    resolve_path,
    size,
)
from orchestrator.config.services import Defaults, read_defaults, read_service
from orchestrator.config.spec import (
    ApiSpec,
    ChecksSpec,
    Config,
    DiskCheckSpec,
    LogSpec,
    MemoryCheckSpec,
    ReloadSpec,
    ServiceSpec,
)
from orchestrator.errors import ConfigError, ConfigIssue

__all__ = ["default_config_path", "load_config", "parse_config"]

TOP_KEYS = ("api", "logs", "defaults", "services", "checks", "reload", "state_dir", "events", "status")
LOGS: Table = {
    "dir": ("dir", as_str),
    "max_size": ("max_size", size),
    "backups": ("backups", integer(0)),
    "timestamps": ("timestamps", as_bool),
}
DISK: Table = {
    "path": ("path", as_str),
    "min_free": ("min_free", size),
    "every": ("every_s", duration(positive=True)),
}
MEMORY: Table = {"max_percent": ("max_percent", percent), "every": ("every_s", duration(positive=True))}
RELOAD: Table = {
    "watch": ("watch", as_bool),
    "poll": ("poll_s", duration(positive=True)),
    "settle": ("settle_s", duration()),
}
EVENTS: Table = {"max": ("events_max", integer(1))}
STATUS: Table = {"every": ("status_every_s", duration(positive=True))}
_LISTEN = re.compile(r"\[([^\]]+)\]:(\d+)|([^:\[\]\s]+):(\d+)")


def default_config_path(environ: Mapping[str, str] | None = None) -> Path:
    """$ORCHESTRATOR_CONFIG, else supervisor.yaml in the current folder."""
    environ = os.environ if environ is None else environ
    return Path(environ.get("ORCHESTRATOR_CONFIG") or "supervisor.yaml")


def load_config(path: str | Path, environ: Mapping[str, str] | None = None) -> Config:
    """Read and validate a config file; ConfigError lists every problem found."""
    path = Path(path).absolute()
    try:
        with path.open("rb") as f:
            data = f.read(MAX_CONFIG_BYTES + 1)  # no more than the bound: a 50 MB file is refused unread
        too_big = size_problem(data)
        if too_big is not None:
            raise ConfigError([ConfigIssue(str(path), too_big[0], "", too_big[1])])
        # utf-8-sig: Notepad on Windows likes to start files with a byte-order mark.
        text = data.decode("utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ConfigError(
            [ConfigIssue(str(path), None, "", f"cannot read the config file: {reason}")]
        ) from exc
    return parse_config(text, path, environ)


def parse_config(text: str, path: Path, environ: Mapping[str, str] | None = None) -> Config:
    """Validate config text as if read from `path` (relative paths in it resolve against its folder).

    ${VAR} expands from `environ` (default os.environ), plus PYTHON = this interpreter unless set.
    """
    path = Path(path).absolute()
    env = dict(os.environ if environ is None else environ)
    env.setdefault("PYTHON", sys.executable)
    parsed = load_yaml(text, str(path), env)
    if parsed.issues and parsed.data is None:
        raise ConfigError(parsed.issues)  # not YAML: nothing more to check
    r = Reader(str(path), parsed.lines, parsed.issues)
    config = _read_top(r, parsed.data, path)
    if r.issues:
        raise ConfigError(sorted(r.issues, key=lambda i: (i.line is None, i.line or 0)))
    return config


def _read_top(r: Reader, data: Any, path: Path) -> Config:
    base = path.parent
    if data is not None and not isinstance(data, dict):
        r.issue((), f"expected a mapping of sections ({', '.join(TOP_KEYS)}) at the top of the file")
        data = {}
    # x-* keys are free for YAML anchors, as in docker-compose files.
    top = {k: v for k, v in (data or {}).items() if not k.startswith("x-")}
    r.mapping(top, (), TOP_KEYS)
    logs = r.fields(top.get("logs"), ("logs",), LOGS)
    state_dir = r.convert(top.get("state_dir", ".orchestrator"), ("state_dir",), as_str) or ".orchestrator"
    services = _read_services(r, top.get("services"), read_defaults(r, top.get("defaults")), base)
    return Config(
        path=path,
        logs=LogSpec(**{**logs, "dir": Path(resolve_path(logs.get("dir", "logs"), base))}),
        services=services,
        api=_read_api(r, top.get("api")),
        checks=_read_checks(r, top.get("checks"), base),
        reload=ReloadSpec(**r.fields(top.get("reload"), ("reload",), RELOAD)),
        state_dir=Path(resolve_path(state_dir, base)),
        **r.fields(top.get("events"), ("events",), EVENTS),
        **r.fields(top.get("status"), ("status",), STATUS),
    )


def _read_api(r: Reader, value: Any) -> ApiSpec:
    raw = r.mapping(value, ("api",), ("listen", "token")) or {}
    kwargs: dict[str, Any] = {}
    if "listen" in raw:
        listen = r.convert(raw["listen"], ("api", "listen"), _listen)
        if listen is not None:
            kwargs["host"], kwargs["port"] = listen
    if raw.get("token") is not None:
        token = r.convert(raw["token"], ("api", "token"), _token)
        kwargs["token"] = token or None  # `${ORCHESTRATOR_TOKEN:-}` left empty: no token configured
    return ApiSpec(**kwargs)


def _token(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("expected a string (quote a token that YAML would read as a number)")
    return value.strip()


def _listen(value: Any) -> tuple[str, int]:
    expected = "expected HOST:PORT like 127.0.0.1:8765 or '[::1]:8765'"
    match = _LISTEN.fullmatch(value.strip()) if isinstance(value, str) else None
    if match is None:
        raise ValueError(f"{expected}, got {describe(value)}")
    host, port = (match[1], int(match[2])) if match[1] else (match[3], int(match[4]))
    if match[1]:
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise ValueError(f"{expected}, got {describe(value)} (not an IPv6 address)") from None
    if not 0 <= port <= 65535:  # 0: any free port (tests; the address is printed at start)
        raise ValueError(f"{expected}, got {describe(value)} (the port must be from 0 to 65535)")
    return host, port


def _read_checks(r: Reader, value: Any, base: Path) -> ChecksSpec:
    raw = r.mapping(value, ("checks",), ("disk", "memory")) or {}
    disk = raw.get("disk")
    # One disk check or a list of them.
    items: list[tuple[KeyPath, Any]] = [] if disk is None else [(("checks", "disk"), disk)]
    if isinstance(disk, list):
        items = [(("checks", "disk", i), item) for i, item in enumerate(disk)]
    disks: list[DiskCheckSpec] = []
    for where, item in items:
        kwargs = r.fields(item, where, DISK)
        if isinstance(item, dict) and "path" not in item:
            r.issue(where, "missing key 'path': a folder on the drive to watch")
        elif "path" in kwargs:
            disks.append(DiskCheckSpec(**{**kwargs, "path": resolve_path(kwargs["path"], base)}))
    memory = None
    if "memory" in raw:
        memory = MemoryCheckSpec(**r.fields(raw["memory"], ("checks", "memory"), MEMORY))
    return ChecksSpec(disk=tuple(disks), memory=memory)


def _read_services(r: Reader, value: Any, defaults: Defaults, base: Path) -> dict[str, ServiceSpec]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        r.issue(("services",), f"expected a mapping of service name to settings, got {describe(value)}")
        return {}
    services = {name: read_service(r, name, item, defaults, base) for name, item in value.items()}
    check_services(r, services)
    return services
