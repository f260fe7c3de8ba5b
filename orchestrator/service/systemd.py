"""A systemd unit that makes `orchestrator run` a Linux service: built here as text, pure (no process is
started, no file written), so the exact unit is tested anywhere and checked by `systemd-analyze verify`.

The choices, each for a reason:
- `Type=exec`: started means the interpreter was exec'ed; the API announces itself in the journal.
- `KillMode=mixed`: systemd's SIGTERM goes to the supervisor alone, which stops its services in
  dependency order (each with its own stop signal and timeout); only at `TimeoutStopSec` does the
  SIGKILL go to the whole cgroup, so nothing outlives the unit even if the supervisor hangs.
- `TimeoutStopSec`: the same budget as NSSM's console stop wait (nssm.console_stop_wait_ms: the longest
  chain of dependants' stop budgets plus a margin), so systemd never kills a shutdown that is on time.
- `Restart=on-failure` with `RestartSec=2`: a crash of the supervisor itself brings it back; a clean
  stop (exit 0 after SIGTERM) does not.
- `WorkingDirectory` is the config's folder (relative paths in it resolve there anyway), and the
  state and log directories are named in the unit's comment for the reader.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from orchestrator.config.spec import Config
from orchestrator.service.nssm import console_stop_wait_ms, describe

__all__ = ["DEFAULT_UNIT", "SystemdTarget", "action_argv", "exec_line", "target_for", "unit_dir", "unit_text"]

DEFAULT_UNIT = "orchestrator"
SYSTEM_UNIT_DIR = Path("/etc/systemd/system")
RESTART_SEC = 2


@dataclass(frozen=True, slots=True)
class SystemdTarget:
    name: str
    description: str
    launcher: tuple[str, ...]
    config_path: str  # absolute
    working_directory: str
    state_dir: str
    logs_dir: str
    stop_timeout_s: int
    user: bool  # a --user unit (the user's own manager) rather than a system one


def target_for(config: Config, *, name: str, launcher: tuple[str, ...], user: bool) -> SystemdTarget:
    return SystemdTarget(
        name=name, description=describe(config), launcher=launcher, config_path=str(config.path),
        working_directory=str(config.path.parent), state_dir=str(config.state_dir), logs_dir=str(config.logs.dir),
        stop_timeout_s=console_stop_wait_ms(config) // 1000, user=user,
    )


def unit_text(target: SystemdTarget) -> str:
    after = [] if target.user else ["After=network-online.target", "Wants=network-online.target"]
    lines = [
        f"# {target.name}.service: written by `orchestrator service install`; reinstall rather than edit.",
        f"# config: {target.config_path}",
        f"# state: {target.state_dir}",
        f"# logs: {target.logs_dir}",
        "[Unit]",
        f"Description={_escape(target.description)}",
        *after,
        "",
        "[Service]",
        "Type=exec",
        f"ExecStart={exec_line([*target.launcher, 'run', '-c', target.config_path])}",
        f"WorkingDirectory={_escape(target.working_directory)}",
        "Environment=PYTHONUNBUFFERED=1",
        "KillMode=mixed",
        "KillSignal=SIGTERM",
        f"TimeoutStopSec={target.stop_timeout_s}",
        "Restart=on-failure",
        f"RestartSec={RESTART_SEC}",
        "",
        "[Install]",
        f"WantedBy={'default.target' if target.user else 'multi-user.target'}",
    ]
    return "\n".join(lines) + "\n"


def exec_line(argv: Sequence[str]) -> str:
    """argv quoted for ExecStart: each word in double quotes when it needs them; `%` and `$` escaped
    so systemd expands neither specifiers nor variables in our paths."""
    return " ".join(_word(arg) for arg in argv)


def _word(arg: str) -> str:
    text = _escape(arg).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{text}"' if not text or any(c in text for c in " \t'\"\\;") else text


def _escape(text: str) -> str:
    return text.replace("%", "%%").replace("$", "$$")


def unit_dir(user: bool, environ: dict[str, str] | None = None) -> Path:
    """Where the unit file goes: /etc/systemd/system, or the user's ~/.config/systemd/user."""
    if not user:
        return SYSTEM_UNIT_DIR
    env = dict(os.environ if environ is None else environ)
    base = Path(env["XDG_CONFIG_HOME"]) if env.get("XDG_CONFIG_HOME") else Path.home() / ".config"
    return base / "systemd" / "user"


def action_argv(systemctl: str, action: str, name: str, *, user: bool) -> list[tuple[str, ...]]:
    """The systemctl commands of install, remove, status, start, stop (install's file write apart)."""
    base = (systemctl, *(("--user",) if user else ()))
    unit = f"{name}.service"
    match action:
        case "install":
            return [(*base, "daemon-reload"), (*base, "enable", unit)]
        case "remove":
            return [(*base, "disable", "--now", unit)]
        case "reload-units":
            return [(*base, "daemon-reload")]
        case "status":
            return [(*base, "status", "--no-pager", unit)]
        case _:
            return [(*base, action, unit)]
