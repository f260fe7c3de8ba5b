"""Which supervisor a CLI command talks to, and with which token.

In order, the first that gives an answer wins:
- the address: `$ORCHESTRATOR_URL`; else the runtime file in the config's state directory (written by
  the `orchestrator run` of that config, see runtime.py); else the config's `api.listen`.
- the token: `$ORCHESTRATOR_TOKEN`; else the config's `api.token`; else the token file in its state
  directory (api/token.py: the supervisor creates it at first start).
- the config: `-c`, `$ORCHESTRATOR_CONFIG`, `./supervisor.yaml` (config/locate.py), read leniently:
  only `state_dir` and `api`, so an invalid file being edited does not stop `status` or `events`.

Without a runtime file the config's own supervisor is not running (or is older than the file). If
something answers at its `api.listen` anyway, it is another config's supervisor on the same port
(the demo and the production config both default to 8765): `check_identity` asks it which config it
runs and refuses with the `-c` to use, rather than send it a command with the wrong token.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import NamedTuple

from orchestrator.cli.client import ApiClient, ClientError
from orchestrator.cli.runtime import read_runtime, runtime_path
from orchestrator.config.locate import ConfigNotFound, find_config, peek

__all__ = ["TOKEN_FILE", "Target", "check_identity", "resolve_target"]

TOKEN_FILE = "api-token"  # api/token.py's name for it; read here without importing the API layer
_LOOPBACK_FOR = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}


class Target(NamedTuple):  # not a dataclass: see errors.ConfigIssue
    url: str
    token: str | None
    token_hint: str  # said with a 401: where the token came from
    config: Path | None  # None: $ORCHESTRATOR_URL with no config file around
    from_runtime: bool  # the URL came from the runtime file: it is the config's own supervisor

    def client(self) -> ApiClient:
        return ApiClient(self.url, self.token, token_hint=self.token_hint)


def resolve_target(config_arg: str | None, environ: Mapping[str, str] | None = None) -> Target:
    env = os.environ if environ is None else environ
    env_url, env_token = env.get("ORCHESTRATOR_URL") or None, env.get("ORCHESTRATOR_TOKEN") or None
    try:
        path = find_config(config_arg, env)
    except ConfigNotFound as exc:
        if env_url is None:
            raise ClientError(f"{exc} (or set $ORCHESTRATOR_URL)") from None
        hint = "$ORCHESTRATOR_TOKEN" if env_token else "no token (set $ORCHESTRATOR_TOKEN)"
        return Target(env_url, env_token, hint, None, from_runtime=False)
    try:
        found = peek(path, env)
    except OSError as exc:
        raise ClientError(f"cannot read config {path}: {exc.strerror or exc}") from None
    token, hint = _token(found.token, found.state_dir, env_token, path)
    if env_url is not None:
        return Target(env_url, token, hint, path, from_runtime=False)
    runtime = read_runtime(found.state_dir)
    if runtime is not None:
        return Target(runtime.url, token, hint, path, from_runtime=True)
    if found.port == 0:
        raise ClientError(f"no supervisor of {path} is running: no {runtime_path(found.state_dir)}, and its "
                          "api.listen has port 0 (any free port), so there is no other address to try")
    host = _LOOPBACK_FOR.get(found.host, found.host)
    url = f"http://[{host}]:{found.port}" if ":" in host else f"http://{host}:{found.port}"
    return Target(url, token, hint, path, from_runtime=False)


def check_identity(target: Target, client: ApiClient) -> None:
    """Refuse a supervisor that answers at our config's address but runs another config."""
    if target.from_runtime or target.config is None:
        return
    health = client.get("/api/health")
    theirs = health.get("config") if isinstance(health, dict) else None
    if not theirs or _same_file(Path(theirs), target.config):
        return
    raise ClientError(
        f"the supervisor at {target.url} runs {_shown(Path(theirs))}, not {_shown(target.config)} "
        f"(which is not running); to talk to it: -c {_shown(Path(theirs))}"
    )


def _token(configured: str | None, state_dir: Path, env_token: str | None, path: Path) -> tuple[str | None, str]:
    if env_token:
        return env_token, "$ORCHESTRATOR_TOKEN"
    if configured:
        return configured, f"api.token in {path}"
    file = state_dir / TOKEN_FILE
    try:
        return file.read_text(encoding="utf-8").strip() or None, f"the token file {file}"
    except OSError:
        return None, f"the token file {file} (not readable)"


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.samefile(b)
    except OSError:
        return a.absolute() == b.absolute()


def _shown(path: Path) -> str:
    """Relative to the current folder when inside it: what the user would type."""
    try:
        return str(path.absolute().relative_to(Path.cwd()))
    except ValueError:
        return str(path)
