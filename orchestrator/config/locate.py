"""Which config file a command means, and the two things the CLI needs from it, read leniently.

The file is `-c FILE`, else `$ORCHESTRATOR_CONFIG`, else `./supervisor.yaml`; a missing one is one
line naming the three places looked at (ConfigNotFound).

`peek` reads only `state_dir` and `api` (listen, token) and never fails on the rest: a command that
talks to a running supervisor must work while someone is editing its file (the supervisor keeps
running on the last good config, and `events` is how you see its `config_error`). It parses the YAML
with the C loader when PyYAML has one; when the text is not YAML at all (half-typed), the two top-level
keys are found line by line. Whatever cannot be read takes the loader's default. It imports neither
the loader nor the spec: `orchestrator status` pays for a YAML parse and nothing else.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orchestrator.config.document import expand_vars
from orchestrator.config.read import resolve_path
from orchestrator.errors import OrchestratorError

__all__ = ["DEFAULT_FILE", "ConfigNotFound", "Peek", "find_config", "peek"]

DEFAULT_FILE = "supervisor.yaml"
DEFAULT_STATE_DIR = ".orchestrator"  # as the loader's
DEFAULT_HOST, DEFAULT_PORT = "127.0.0.1", 8765  # as ApiSpec's
_LISTEN = re.compile(r"\[([^\]]+)\]:(\d+)|([^:\[\]\s]+):(\d+)")
# The line-by-line fallback: `state_dir: X` at the top level, `listen:`/`token:` indented under `api:`.
_TOP = re.compile(r"^([A-Za-z_][\w-]*)\s*:\s*(.*?)\s*$")
_NESTED = re.compile(r"^\s+(listen|token)\s*:\s*(.*?)\s*$")
_FLOW = re.compile(r"\b(listen|token)\s*:\s*([^,}\s]+)")


class ConfigNotFound(OrchestratorError):
    """No config file where we looked; the message names each place."""


@dataclass(frozen=True, slots=True)
class Peek:
    """What the CLI needs to reach a supervisor: where its state is and where its API listens."""

    path: Path
    state_dir: Path
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    token: str | None = None  # api.token after ${VAR} expansion; None: the token file


def find_config(explicit: str | None, environ: Mapping[str, str] | None = None) -> Path:
    """The config file a command means: -c, $ORCHESTRATOR_CONFIG, ./supervisor.yaml, the first given."""
    environ = os.environ if environ is None else environ
    from_env = environ.get("ORCHESTRATOR_CONFIG") or None
    path = Path(explicit or from_env or DEFAULT_FILE)
    if path.is_file():
        return path.absolute()
    # One line, every place: which was tried and why the others were not.
    places = [f"-c {explicit} (no such file)" if explicit else "-c (not given)"]
    if explicit:
        places.append("$ORCHESTRATOR_CONFIG (not used: -c wins)")
    else:
        places.append(f"$ORCHESTRATOR_CONFIG={from_env} (no such file)" if from_env else "$ORCHESTRATOR_CONFIG (unset)")
    places.append(f"./{DEFAULT_FILE} (not used)" if explicit or from_env else f"./{DEFAULT_FILE} (not found)")
    raise ConfigNotFound("no config file: looked at " + ", ".join(places))


def peek(path: Path, environ: Mapping[str, str] | None = None) -> Peek:
    """state_dir and api of the file at `path`, whatever else is wrong with it. OSError if unreadable."""
    env = dict(os.environ if environ is None else environ)
    text = path.read_text(encoding="utf-8-sig")
    top = _yaml_top(text)
    if top is None:
        top = _line_scan(text)
    state_dir = _expanded(top.get("state_dir"), env) or DEFAULT_STATE_DIR
    raw_api = top.get("api")
    api: dict[str, Any] = raw_api if isinstance(raw_api, dict) else {}
    host, port = _listen(_expanded(api.get("listen"), env))
    token = _expanded(api.get("token"), env)
    return Peek(path=path, state_dir=Path(resolve_path(state_dir, path.parent)), host=host, port=port,
                token=token or None)


def _yaml_top(text: str) -> dict[str, Any] | None:
    import yaml  # here: the line scan alone needs no YAML

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        data = yaml.load(text, Loader=loader)  # a safe loader: the C one, else the Python one
    except yaml.YAMLError:
        return None
    return data if isinstance(data, dict) else None


def _line_scan(text: str) -> dict[str, Any]:
    top: dict[str, Any] = {}
    section = None
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        match = _TOP.match(line)
        if match:
            section = match[1]
            if section == "state_dir":
                top["state_dir"] = _unquote(match[2])
            elif section == "api":  # a flow mapping on the same line: api: {listen: 127.0.0.1:8765}
                for key, value in _FLOW.findall(match[2]):
                    top.setdefault("api", {})[key] = _unquote(value)
            continue
        nested = _NESTED.match(line)
        if nested and section == "api":
            top.setdefault("api", {})[nested[1]] = _unquote(nested[2])
    return top


def _unquote(value: str) -> str:
    value = value.split(" #", 1)[0].strip()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        return value[1:-1]
    return value


def _expanded(value: Any, env: Mapping[str, str]) -> str | None:
    if value is None:
        return None
    text, _problems = expand_vars(str(value), env)  # an unset variable reads as empty: the default
    return text.strip()


def _listen(value: str | None) -> tuple[str, int]:
    match = _LISTEN.fullmatch(value) if value else None
    if match is None:
        return DEFAULT_HOST, DEFAULT_PORT
    return (match[1], int(match[2])) if match[1] else (match[3], int(match[4]))
