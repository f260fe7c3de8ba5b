"""The validated configuration: frozen data, built by config.py from YAML, read by everything else.

Durations are float seconds (`_s`), sizes are int bytes. Paths are kept as the strings the user wrote,
already resolved against the config file's folder where they are relative; whether they exist is
checked when a service starts, not here (the production file must load on any OS).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

__all__ = [
    "UNLIMITED",
    "ApiSpec",
    "ChecksSpec",
    "ComfySpec",
    "Config",
    "Dependency",
    "DependencyCondition",
    "DiskCheckSpec",
    "HealthAction",
    "HealthSpec",
    "LogSpec",
    "MemoryCheckSpec",
    "ProxyAuth",
    "ReloadSpec",
    "RestartPolicy",
    "RestartSpec",
    "ServiceSpec",
    "StopSpec",
    "Unlimited",
]


class RestartPolicy(StrEnum):
    ALWAYS = "always"
    ON_FAILURE = "on-failure"
    NEVER = "never"


class Unlimited(StrEnum):
    """`attempts: unlimited`: restart for ever, as Kubernetes and Docker do (the cooldown still spaces spawns)."""

    UNLIMITED = "unlimited"


UNLIMITED = Unlimited.UNLIMITED


class HealthAction(StrEnum):
    RESTART = "restart"
    NONE = "none"


class ProxyAuth(StrEnum):
    """Who may use the ComfyUI proxy: holders of the API token, or any client on this machine."""

    TOKEN = "token"
    LOOPBACK = "loopback"


class DependencyCondition(StrEnum):
    RUNNING = "running"
    HEALTHY = "healthy"
    COMPLETED = "completed"  # exited 0 (a one-shot job), like Compose's service_completed_successfully


@dataclass(frozen=True, slots=True)
class RestartSpec:
    policy: RestartPolicy = RestartPolicy.ON_FAILURE
    attempts: int | Unlimited = 3  # consecutive restarts before `fatal`
    cooldown_s: float = 30.0  # consecutive spawns are at least this far apart
    reset_after_s: float = 300.0  # running this long without trouble gives back the whole budget


@dataclass(frozen=True, slots=True)
class StopSpec:
    timeout_s: float = 10.0
    signal: str = "SIGTERM"  # a name from the signal module; Windows sends CTRL_BREAK_EVENT whatever it says


@dataclass(frozen=True, slots=True)
class HealthSpec:
    url: str
    expect_status: tuple[int, ...] = ()  # empty: any 2xx
    every_s: float = 15.0
    timeout_s: float = 5.0
    grace_s: float = 60.0
    failures: int = 3
    action: HealthAction = HealthAction.RESTART


@dataclass(frozen=True, slots=True)
class Dependency:
    name: str
    condition: DependencyCondition = DependencyCondition.RUNNING


@dataclass(frozen=True, slots=True)
class ComfySpec:
    url: str = "http://127.0.0.1:8188"
    proxy_timeout_s: float = 30.0
    drain_timeout_s: float = 600.0
    busy_timeout_s: float = 300.0  # a probe timeout while the queue runs counts only after this long
    # None: the API's own rule (the token beyond loopback, where every request needs it; on loopback
    # every client is local). `token` also asks it of proxied reads on loopback.
    proxy_auth: ProxyAuth | None = None


@dataclass(frozen=True, slots=True)
class LogSpec:
    dir: Path
    max_size: int = 10 * 1024 * 1024  # 0 = never rotate
    backups: int = 5
    timestamps: bool = False


@dataclass(frozen=True, slots=True)
class ServiceSpec:
    name: str
    command: tuple[str, ...]
    cwd: str | None = None
    env: Mapping[str, str] = field(default_factory=dict)  # as written (expanded); secrets: never log these
    env_file: str | None = None
    autostart: bool = True
    depends_on: tuple[Dependency, ...] = ()
    restart: RestartSpec = field(default_factory=RestartSpec)
    stop: StopSpec = field(default_factory=StopSpec)
    start_period_s: float = 1.0  # up this long = `running`; an exit before is a failed start
    health: HealthSpec | None = None
    ports: tuple[int, ...] = ()
    comfy: ComfySpec | None = None
    line: int | None = None  # where the service is defined in the file, for messages


@dataclass(frozen=True, slots=True)
class ApiSpec:
    host: str = "127.0.0.1"
    port: int = 8765
    token: str | None = None  # None: the token file in the state directory

    @property
    def listen(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


@dataclass(frozen=True, slots=True)
class DiskCheckSpec:
    path: str
    min_free: int = 10 * 1024**3
    every_s: float = 300.0


@dataclass(frozen=True, slots=True)
class MemoryCheckSpec:
    max_percent: float = 80.0
    every_s: float = 60.0


@dataclass(frozen=True, slots=True)
class ChecksSpec:
    disk: tuple[DiskCheckSpec, ...] = ()
    memory: MemoryCheckSpec | None = None


@dataclass(frozen=True, slots=True)
class ReloadSpec:
    watch: bool = False
    poll_s: float = 1.0
    settle_s: float = 0.5  # the file must be unchanged this long before it is read


@dataclass(frozen=True, slots=True)
class Config:
    path: Path  # absolute path of the file this came from
    logs: LogSpec
    services: Mapping[str, ServiceSpec]  # in file order
    api: ApiSpec = field(default_factory=ApiSpec)
    checks: ChecksSpec = field(default_factory=ChecksSpec)
    reload: ReloadSpec = field(default_factory=ReloadSpec)
    state_dir: Path = Path(".orchestrator")  # resolved against the config's folder by the loader
    events_max: int = 1000
    status_every_s: float = 5.0  # resource sampling interval shared by every status reader
