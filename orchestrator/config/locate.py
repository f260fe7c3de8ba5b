"""Which config file a command means, and the two things the CLI needs from it, read leniently.

The file is `-c FILE`, else `$ORCHESTRATOR_CONFIG`, else `./supervisor.yaml`; a missing one is one
line naming the three places looked at (ConfigNotFound).

`peek` reads only `state_dir` and `api` (listen, token) and never fails on the rest: a command that
talks to a running supervisor must work while someone is editing its file (the supervisor keeps
running on the last good config, and `events` is how you see its `config_error`).

Three readers, the first that answers wins:
- `_plain_top`: the two keys read line by line, when the file is written in the plain subset of YAML
  that every example and generated config uses (top-level `key: value` lines; `state_dir` a one-line
  scalar; `api` a one-line flow mapping or an indented block of one-line scalars). It answers only
  where YAML would give the same values (`tests/unit/test_locate.py` checks it against PyYAML on
  every example and on the forms it must refuse); anything else (anchors, tags, multi-line values,
  a scalar YAML would read as a number, a bool or null, `---`, a duplicate key) makes it say None.
  Why: importing PyYAML costs +22 ms of CPU and parsing a config of 100 services with libyaml about
  10 ms more, together most of what `status` costs over a bare `python -c pass` (issue 16's target
  is 100 ms; 2-core dev box, best of 21 interleaved runs).
- PyYAML (the C loader when it has one), for everything else.
- When the text is not YAML at all (half-typed), the two top-level keys found line by line.
Whatever cannot be read takes the loader's default. It imports neither the loader nor the spec.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NamedTuple

from orchestrator.config.text import expand_vars, resolve_path
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


class Peek(NamedTuple):  # not a dataclass: see errors.ConfigIssue
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
    top = _plain_top(text)
    if top is None:
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


_KEY_LINE = re.compile(r"([A-Za-z_][\w-]*):(?:[ \t]+(.*?))?[ \t]*")  # `key:` or `key: value`, at column 0
_FLOW_MAP = re.compile(r"\{([^{}\[\]]*)\}")
# PyYAML's implicit resolvers (yaml/resolver.py) for what is not a string: a plain scalar matching
# one of them is read as a bool, int, float, null, timestamp, merge or value key, not as the text.
_NOT_STR = (
    r"yes|Yes|YES|no|No|NO|true|True|TRUE|false|False|FALSE|on|On|ON|off|Off|OFF"
    r"|[-+]?0b[0-1_]+|[-+]?0[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+|[-+]?[1-9][0-9_]*(?::[0-5]?[0-9])+"
    r"|[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+][0-9]+)?|\.[0-9_]+(?:[eE][-+][0-9]+)?"
    r"|[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\.[0-9_]*|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN)"
    r"|~|null|Null|NULL|<<|="
    r"|[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}.*"  # timestamps, and more: never taken as plain text here
)
_NOT_STR_RE: re.Pattern[str] | None = None


class _NotPlain(Exception):
    """The file uses YAML beyond what _plain_top reads: PyYAML reads it."""


def _plain_top(text: str) -> dict[str, Any] | None:
    """`state_dir` and `api` when the file is plain YAML (see the module's docstring); else None."""
    try:
        return _plain_scan(text.splitlines())
    except _NotPlain:
        return None


def _plain_scan(lines: list[str]) -> dict[str, Any]:
    top: dict[str, Any] = {}
    key: str | None = None
    block: list[str] = []  # the indented lines under the current top-level key, when it is one we read
    for line in lines:
        bare = line.strip()
        if not bare or bare.startswith("#"):
            continue
        if line[0] in " \t":
            if "\t" in line[: len(line) - len(line.lstrip())]:
                raise _NotPlain  # tabs in the indentation: YAML refuses them
            if key in ("api", "state_dir"):
                block.append(line)
            continue
        _close(top, key, block)
        match = _KEY_LINE.fullmatch(line)
        if match is None or match[1] in top:
            raise _NotPlain  # ---, %YAML, a list, a quoted or complex key, a duplicate
        key, value = match[1], _no_comment(match[2] or "")
        block = []
        if key in ("api", "state_dir"):
            top[key] = value
        else:
            _unread(value)
            top[key] = None  # not read; recorded to see a duplicate
    _close(top, key, block)
    return {k: top[k] for k in ("api", "state_dir") if k in top}


def _close(top: dict[str, Any], key: str | None, block: list[str]) -> None:
    if key == "api":
        top["api"] = _plain_api(top["api"], block)
    elif key == "state_dir":
        if block:
            raise _NotPlain  # a value continued on the next lines
        top["state_dir"] = _plain_scalar(top["state_dir"], flow=False)


def _no_comment(value: str) -> str:
    """The value without a trailing ` # comment` (a `#` inside quotes: not plain, refused)."""
    if "#" in value:
        if value.startswith("#"):
            return ""
        if "'" in value or '"' in value:
            raise _NotPlain
        value = value.split(" #", 1)[0].split("\t#", 1)[0]
    return value.strip()


def _plain_api(value: str, block: list[str]) -> dict[str, Any] | None:
    if value:
        match = _FLOW_MAP.fullmatch(value)
        if match is None or block:
            raise _NotPlain
        api: dict[str, Any] = {}
        for item in filter(None, (i.strip() for i in match[1].split(","))):
            name, sep, raw = item.partition(":")
            if not sep or not re.fullmatch(r"[A-Za-z_][\w-]*", name) or name in api or (raw and raw[0] not in " \t"):
                raise _NotPlain
            api[name] = _plain_scalar(raw.strip(), flow=True)
        return api
    if not block:
        return None  # `api:` and nothing under it: null, as YAML reads it
    indent = len(block[0]) - len(block[0].lstrip(" "))
    api = {}
    last: str | None = None
    for line in block:
        depth = len(line) - len(line.lstrip(" "))
        if depth > indent:  # the previous key's value goes on: fine for a key we ignore
            if last in ("listen", "token") or last is None:
                raise _NotPlain
            continue
        match = _KEY_LINE.fullmatch(line[indent:]) if depth == indent else None
        if match is None or match[1] in api:
            raise _NotPlain
        last, raw = match[1], _no_comment(match[2] or "")
        if last in ("listen", "token"):
            api[last] = _plain_scalar(raw, flow=False)
        else:
            _unread(raw)
            api[last] = None  # not read; recorded to see a duplicate
    return api


def _unread(value: str) -> None:
    """A value we do not read only has to end where YAML's would: _NotPlain if it may not."""
    if value and value[0] in "&*!%@`":
        raise _NotPlain  # an anchor, alias or tag: what it means is YAML's business
    if value and value[0] in "{[\"'":
        _closed(value)  # one-line flow or quoted: none of its lines can reach column 0


def _plain_scalar(value: str, *, flow: bool) -> str | None:
    """A one-line scalar as YAML reads it, when that is plain text (or nothing: None)."""
    global _NOT_STR_RE
    if not value:
        return None
    if value[0] == "'" or value[0] == '"':
        inner = value[1:-1]
        if len(value) < 2 or value[-1] != value[0] or value[0] in inner or (value[0] == '"' and "\\" in inner):
            raise _NotPlain
        return inner
    if value[0] in "{[&*!|>%@`,?:-#" or ": " in value or value.endswith(":"):
        raise _NotPlain
    if flow and any(c in value for c in "{}[],"):
        raise _NotPlain
    if _NOT_STR_RE is None:
        _NOT_STR_RE = re.compile(_NOT_STR)
    if _NOT_STR_RE.fullmatch(value):
        raise _NotPlain
    return value


def _closed(value: str) -> None:
    """A one-line flow collection or quoted scalar that ends on its line; _NotPlain otherwise."""
    depth, quote, i = 0, "", 0
    while i < len(value):
        c = value[i]
        if quote:
            if c == "\\" and quote == '"':
                i += 1
            elif c == quote:
                if quote == "'" and value[i + 1: i + 2] == "'":
                    i += 1
                else:
                    quote = ""
        elif c in "'\"":
            quote = c
        elif c in "{[":
            depth += 1
        elif c in "}]":
            depth -= 1
        i += 1
    if quote or depth != 0:
        raise _NotPlain


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
