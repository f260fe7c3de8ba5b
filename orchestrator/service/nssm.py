"""The NSSM commands that make `orchestrator run` a Windows service: built here as data, run by service.py.

Everything in this module is pure (no process is started), so the exact commands are tested on any OS.
A plan is a list of Steps; a step may depend on whether a service is installed (`sc query NAME` exits 0).
"""

from __future__ import annotations

import math
import ntpath
import posixpath
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PureWindowsPath

from orchestrator.config.spec import Config, ServiceSpec
from orchestrator.core.runner import KILL_WAIT_S, PIPE_DRAIN_S

__all__ = [
    "CONSOLE_LOG_BYTES",
    "LEGACY_SERVICES",
    "SHUTDOWN_MARGIN_S",
    "InstallTarget",
    "Step",
    "command_line",
    "console_log_paths",
    "console_stop_wait_ms",
    "default_launcher",
    "describe",
    "install_steps",
    "legacy_removal_steps",
    "remove_steps",
    "start_steps",
    "status_steps",
    "stop_steps",
    "target_for",
]

LEGACY_SERVICES = ("OrchestratorPanel", "OrchestratorComfyUI", "OrchestratorGuardian")
CONSOLE_LOG_BYTES = 10 * 1024 * 1024  # NSSM rotates the supervisor's own console files at this size
SHUTDOWN_MARGIN_S = 15.0  # after the last service: the API server, log flushes, the interpreter's exit
THROTTLE_MS = 10_000  # NSSM counts a run shorter than this as a failed start and backs off (up to 4 min)
RESTART_DELAY_MS = 2_000  # pause before NSSM starts the supervisor again after it exited on its own
OTHER_METHOD_WAIT_MS = 1_500  # WM_CLOSE / WM_QUIT waits: NSSM waits only if we had a window or a queue


@dataclass(frozen=True, slots=True)
class Step:
    """One command. `if_installed`/`if_missing` name a service whose presence decides whether it runs."""

    argv: tuple[str, ...]
    why: str = ""
    if_installed: str | None = None
    if_missing: str | None = None
    may_fail: bool = False  # e.g. stopping a service that is already stopped


@dataclass(frozen=True, slots=True)
class InstallTarget:
    """What the service runs: `launcher` (the orchestrator executable, or python -m orchestrator) + run -c."""

    name: str
    display_name: str
    description: str
    launcher: tuple[str, ...]
    config_path: str  # absolute
    app_directory: str  # absolute: the config's folder
    logs_dir: str
    stop_wait_ms: int


def command_line(argv: Sequence[str]) -> str:
    """The Windows command line a program receives for argv (MSVCRT quoting; what a person types in cmd)."""
    return subprocess.list2cmdline(list(argv))


def console_stop_wait_ms(config: Config) -> int:
    """How long NSSM must wait after its Ctrl+C before harsher methods: AppStopMethodConsole, in ms.

    A shutdown stops services concurrently, each one only after the services that depend on it. One
    service takes at most stop.timeout (graceful) + KILL_WAIT_S (the tree to vanish after the kill) +
    PIPE_DRAIN_S (the pumps to reach end of output). The total is the longest chain of dependants,
    summed along it, plus SHUTDOWN_MARGIN_S; rounded up to whole seconds.
    """
    services = config.services
    dependants: dict[str, list[str]] = {name: [] for name in services}
    for spec in services.values():
        for dep in spec.depends_on:
            if dep.name in dependants:
                dependants[dep.name].append(spec.name)
    done_at: dict[str, float] = {}

    def finished(name: str) -> float:  # seconds from the start of shutdown until `name` is stopped
        if name not in done_at:
            start = max((finished(d) for d in dependants[name]), default=0.0)
            done_at[name] = start + _stop_budget_s(services[name])
        return done_at[name]

    longest = max((finished(name) for name in services), default=0.0)
    return math.ceil(longest + SHUTDOWN_MARGIN_S) * 1000


def _stop_budget_s(spec: ServiceSpec) -> float:
    return spec.stop.timeout_s + KILL_WAIT_S + PIPE_DRAIN_S


def console_log_paths(logs_dir: str) -> tuple[str, str]:
    """Where NSSM writes the supervisor's own stdout and stderr. The names cannot clash with a service's
    `NAME-stdout.log` (a dot, not a dash) nor with orchestrator.log's rotations."""
    join = ntpath.join if _is_windows_path(logs_dir) else posixpath.join
    return join(logs_dir, "orchestrator.stdout.log"), join(logs_dir, "orchestrator.stderr.log")


def _is_windows_path(path: str) -> bool:
    return bool(PureWindowsPath(path).drive) or "\\" in path


def install_steps(nssm: str, target: InstallTarget, *, replace_legacy: bool = False) -> list[Step]:
    """Install (or, if it exists, update) the service; it is not started."""
    steps = legacy_removal_steps(nssm) if replace_legacy else []
    name = target.name
    exe, *prefix = target.launcher
    parameters = command_line([*prefix, "run", "-c", target.config_path])
    stdout_log, stderr_log = console_log_paths(target.logs_dir)
    steps.append(Step((nssm, "install", name, exe), "register the service", if_missing=name))
    settings: list[tuple[str, Sequence[str], str]] = [
        ("Application", [exe], "the program (again: an existing service is updated)"),
        ("AppParameters", [parameters], "its arguments, quoted for the program's own parser"),
        ("AppDirectory", [target.app_directory], "working directory: the config's folder"),
        ("DisplayName", [target.display_name], ""),
        ("Description", [target.description], ""),
        ("Start", ["SERVICE_AUTO_START"], "start at boot"),
        ("AppNoConsole", ["0"], "keep a console: Ctrl+C stops us, Ctrl+Break stops our children"),
        ("AppStdout", [stdout_log], "the supervisor's own console output"),
        ("AppStderr", [stderr_log], ""),
        ("AppRotateFiles", ["1"], ""),
        ("AppRotateOnline", ["1"], "rotate while running"),
        ("AppRotateBytes", [str(CONSOLE_LOG_BYTES)], ""),
        ("AppStopMethodConsole", [str(target.stop_wait_ms)], "ms after Ctrl+C: longest stop chain + margin"),
        ("AppStopMethodWindow", [str(OTHER_METHOD_WAIT_MS)], ""),
        ("AppStopMethodThreads", [str(OTHER_METHOD_WAIT_MS)], ""),
        ("AppExit", ["Default", "Restart"], "an exit NSSM did not ask for restarts the supervisor"),
        ("AppThrottle", [str(THROTTLE_MS)], "shorter runs count as failed starts and back off"),
        ("AppRestartDelay", [str(RESTART_DELAY_MS)], ""),
        ("AppEnvironmentExtra", ["PYTHONUNBUFFERED=1"], "console output reaches the files at once"),
    ]
    for key, values, why in settings:
        steps.append(Step((nssm, "set", name, key, *values), why))
    return steps


def legacy_removal_steps(nssm: str, names: Sequence[str] = LEGACY_SERVICES) -> list[Step]:
    """Stop and remove the three services the supervisor replaces, each only if it is installed."""
    steps: list[Step] = []
    for name in names:
        steps.append(Step((nssm, "stop", name), f"stop the old {name}", if_installed=name, may_fail=True))
        steps.append(Step((nssm, "remove", name, "confirm"), f"remove the old {name}", if_installed=name))
    return steps


def remove_steps(nssm: str, name: str) -> list[Step]:
    return [
        Step((nssm, "stop", name), "stop it first (fine if already stopped)", if_installed=name, may_fail=True),
        Step((nssm, "remove", name, "confirm"), "", if_installed=name),
    ]


def start_steps(nssm: str, name: str) -> list[Step]:
    return [Step((nssm, "start", name))]


def stop_steps(nssm: str, name: str) -> list[Step]:
    return [Step((nssm, "stop", name))]


def status_steps(sc: str, name: str) -> list[Step]:
    return [Step((sc, "query", name), "state and last exit code, as Windows sees them")]


def default_launcher(scripts_dir: Path, python: str, *, windows: bool) -> tuple[str, ...]:
    """The installed `orchestrator` executable if there is one beside this Python, else python -m."""
    exe = scripts_dir / ("orchestrator.exe" if windows else "orchestrator")
    return (str(exe),) if exe.is_file() else (python, "-m", "orchestrator")


def describe(config: Config) -> str:
    names = ", ".join(config.services) or "no services"
    return f"Process supervisor (orchestrator): {names}; config {config.path}"


def target_for(config: Config, *, name: str, display_name: str, launcher: tuple[str, ...]) -> InstallTarget:
    return InstallTarget(
        name=name,
        display_name=display_name,
        description=describe(config),
        launcher=launcher,
        config_path=str(config.path),
        app_directory=str(config.path.parent),
        logs_dir=str(config.logs.dir),
        stop_wait_ms=console_stop_wait_ms(config),
    )
