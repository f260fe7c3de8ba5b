"""The exception tree. Every error the supervisor raises on purpose is an OrchestratorError."""

from __future__ import annotations

from typing import NamedTuple

__all__ = [
    "ConfigError",
    "ConfigIssue",
    "InvalidTransition",
    "OrchestratorError",
    "SpawnError",
    "UnknownServiceError",
]


class OrchestratorError(Exception):
    """Root of the errors we raise deliberately."""


class ConfigIssue(NamedTuple):
    """One problem in a config file: where it is and what was expected. A NamedTuple, not a dataclass:
    the CLI imports this module for every command, and `dataclasses` (with `inspect`) is its dearest import."""

    file: str
    line: int | None  # 1-based; None when the problem has no single place (a dependency cycle)
    key_path: str  # "services.panel.restart.cooldown"
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line is not None else self.file
        key = f" {self.key_path}:" if self.key_path else ""
        return f"{where}:{key} {self.message}"


class ConfigError(OrchestratorError):
    """A config file that cannot be used; carries every issue found, not just the first."""

    def __init__(self, issues: list[ConfigIssue]) -> None:
        self.issues = list(issues)
        super().__init__("\n".join(str(i) for i in self.issues) or "invalid config")


class UnknownServiceError(OrchestratorError):
    def __init__(self, name: str, known: list[str]) -> None:
        self.name = name
        self.known = sorted(known)
        super().__init__(f"no service named {name!r}; known: {', '.join(self.known) or '(none)'}")


class InvalidTransition(OrchestratorError):
    """An event the state machine cannot take in its current state; the machine is unchanged."""

    def __init__(self, state: str, event: str) -> None:
        self.state = state
        self.event = event
        super().__init__(f"can't handle {event} in state {state}")


class SpawnError(OrchestratorError):
    """A child could not be started: missing executable or cwd, permission denied, ..."""

    def __init__(self, name: str, reason: str) -> None:
        self.name = name
        self.reason = reason
        super().__init__(f"{name}: {reason}")
