"""The runtime file: how a CLI in another terminal finds the supervisor that runs a config.

`orchestrator run` writes `{state_dir}/runtime.json` once its API listens (and again if a reload moves
the API), and removes it when it exits: `{"url", "pid", "config", "version", "started_at"}`. The file
is owner-only (0600, created so from the first byte; on Windows it inherits the state directory's
ACL, as the token file does): whoever can read it could also read the token next to it.

The CLI trusts the file's URL over the config's `api.listen` (the API may listen on port 0, or a
reload may have moved it while the file was being edited). A file left behind by a supervisor that
died hard (kill -9) names a URL nobody answers at: the CLI then says no supervisor answers, which
is the truth. Nothing here imports more than json, os and typing.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import NamedTuple

__all__ = ["RUNTIME_FILE", "Runtime", "read_runtime", "remove_runtime", "runtime_path", "write_runtime"]

RUNTIME_FILE = "runtime.json"


class Runtime(NamedTuple):  # not a dataclass: see errors.ConfigIssue
    url: str
    pid: int
    config: str
    version: str = ""
    started_at: float = 0.0


def runtime_path(state_dir: Path) -> Path:
    return state_dir / RUNTIME_FILE


def write_runtime(state_dir: Path, runtime: Runtime) -> Path:
    """Write (or replace) the file atomically, owner-only. OSError if the state dir is not writable."""
    path = runtime_path(state_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{RUNTIME_FILE}.{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump({"url": runtime.url, "pid": runtime.pid, "config": runtime.config,
                   "version": runtime.version, "started_at": runtime.started_at or time.time()}, f)
        f.write("\n")
    os.replace(tmp, path)
    return path


def remove_runtime(state_dir: Path, pid: int) -> None:
    """Remove the file if it is still ours (`pid`): a second supervisor's must stay."""
    current = read_runtime(state_dir)
    if current is not None and current.pid == pid:
        runtime_path(state_dir).unlink(missing_ok=True)


def read_runtime(state_dir: Path) -> Runtime | None:
    """The file's content, or None when there is none or it is not ours to read (half written, garbage)."""
    try:
        data = json.loads(runtime_path(state_dir).read_text(encoding="utf-8"))
        return Runtime(url=str(data["url"]), pid=int(data["pid"]), config=str(data.get("config", "")),
                       version=str(data.get("version", "")), started_at=float(data.get("started_at", 0)))
    except (OSError, ValueError, KeyError, TypeError):
        return None
