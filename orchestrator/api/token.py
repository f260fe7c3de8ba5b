"""The control API's bearer token: `api.token` from the config, else a file in the state directory.

The supervisor creates the file at its first start; the CLI reads the same file, so on one machine
the token needs no setup. Whoever can read the state directory can control the supervisor.
"""

from __future__ import annotations

import ipaddress
import os
import secrets
from pathlib import Path

from orchestrator.config.spec import ApiSpec
from orchestrator.errors import OrchestratorError
from orchestrator.platform import is_windows

__all__ = [
    "TOKEN_FILE",
    "ApiSetupError",
    "ensure_state_dir",
    "ensure_token",
    "is_loopback",
    "read_token",
    "tighten_token_file",
    "token_path",
]

TOKEN_FILE = "api-token"


class ApiSetupError(OrchestratorError):
    """The API cannot be served as configured (address in use, no token for a public address, ...)."""


def token_path(state_dir: Path) -> Path:
    return state_dir / TOKEN_FILE


def is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def read_token(api: ApiSpec, state_dir: Path) -> str | None:
    """The token a client should send: the configured one, else the file's; None if there is neither."""
    if api.token:
        return api.token
    try:
        return token_path(state_dir).read_text(encoding="utf-8").strip() or None
    except OSError:
        return None


def ensure_token(api: ApiSpec, state_dir: Path) -> str:
    """The token the supervisor checks; creates the token file on first use. Refuses a non-loopback
    address without a configured token: a file token would be unknown to every remote client."""
    if api.token:
        return api.token
    if not is_loopback(api.host):
        raise ApiSetupError(
            f"api.listen {api.listen} is not a loopback address: set api.token (for example "
            "`token: ${ORCHESTRATOR_TOKEN}`) to serve the API there"
        )
    existing = read_token(api, state_dir)
    if existing:
        return existing
    return _create_token_file(token_path(state_dir))


def _create_token_file(path: Path) -> str:
    token = secrets.token_urlsafe(32)
    try:
        ensure_state_dir(path.parent)
        # Owner-only from the first byte (no chmod window). On Windows the mode only sets read-only or
        # not; the file then inherits the state directory's ACL, which is the owner's by default.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # empty or unreadable (read_token said None), or another start won the race
        return _existing_token(path)
    except OSError as exc:
        raise ApiSetupError(f"cannot create the API token file {path}: {exc.strerror or exc}") from exc
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(token + "\n")
    return token


def _existing_token(path: Path) -> str:
    try:
        token = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ApiSetupError(f"cannot read the API token file {path}: {exc.strerror or exc}") from exc
    if not token:
        raise ApiSetupError(f"the API token file {path} is empty: delete it to get a new token")
    return token


def ensure_state_dir(state_dir: Path) -> None:
    """Creates the state directory owner-only (0700 on POSIX) if it is missing. An existing one keeps
    its mode: it may be a directory the user chose and shares on purpose; the token file in it is
    owner-only whatever the directory's mode (tighten_token_file)."""
    try:
        state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        reason = exc.strerror or exc
        raise ApiSetupError(f"cannot create the state directory {state_dir} (state_dir): {reason}") from exc


def tighten_token_file(state_dir: Path) -> str | None:
    """An existing token file that others may read is made 0600; returns a warning saying so, or None.
    POSIX only: on Windows the file inherits the state directory's ACL (the mode bits mean nothing)."""
    path = token_path(state_dir)
    if is_windows():
        return None
    try:
        mode = path.stat().st_mode & 0o777
        if not mode & 0o077:
            return None
        os.chmod(path, 0o600)
    except OSError:
        return None
    return f"the API token file {path} was readable by others (mode {mode:04o}): now 0600"
