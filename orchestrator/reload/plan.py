"""What a config reload would do, as data: a pure comparison of the running config with a new one.

Per service one action: `add`, `remove`, `restart` (what defines the process changed: command, cwd,
env, env_file path or the env_file's variables), `update` (only supervision settings changed: applied
in place, same pid) or `keep`. Global sections are either applied in place, rebind the API, or need a
full restart of the supervisor. Messages name environment variables, never their values.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from orchestrator.config.spec import ApiSpec, Config, ServiceSpec

__all__ = [
    "EnvFingerprint",
    "GlobalChange",
    "GlobalEffect",
    "ReloadPlan",
    "ServiceAction",
    "ServicePlan",
    "effective_config",
    "plan_reload",
]

EnvFingerprint = Mapping[str, str]  # variable name -> digest of its value (envfile.env_fingerprint)

# Supervision settings: the runner applies them to the live process. Any other field (including ones
# added to ServiceSpec later) defines the process and restarts it: the safe default.
UPDATE_FIELDS = ("autostart", "depends_on", "restart", "stop", "start_period_s", "health", "ports", "comfy")
IGNORED_FIELDS = ("name", "line")  # `line` moves whenever the lines above it change
# Config fields applied in place by the reloader; `path`/`services` are handled apart; the rest
# (state_dir and anything unknown) need a full restart.
APPLIED_GLOBALS = {"logs": "logs", "checks": "checks", "reload": "reload", "events_max": "events.max",
                   "status_every_s": "status.every"}  # fmt: skip


class ServiceAction(StrEnum):
    ADD = "add"
    REMOVE = "remove"
    RESTART = "restart"
    UPDATE = "update"
    KEEP = "keep"


class GlobalEffect(StrEnum):
    APPLY = "apply"  # in place
    REBIND = "rebind"  # the API listens anew once the reload has been answered
    FULL_RESTART = "full_restart"  # kept as it is until the supervisor is restarted


@dataclass(frozen=True, slots=True)
class ServicePlan:
    name: str
    action: ServiceAction
    reasons: tuple[str, ...] = ()  # what changed: "env changed: NODE_ENV", "health changed: grace"
    autostart: bool = True  # for `add`: whether it is started

    def describe(self) -> str:
        details = list(self.reasons)
        if self.action is ServiceAction.ADD and not self.autostart:
            details.append("autostart: false, not started")
        return f"{self.name}: {self.action.value}" + (f" ({'; '.join(details)})" if details else "")

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "action": self.action.value, "reasons": list(self.reasons), "text": self.describe()}


@dataclass(frozen=True, slots=True)
class GlobalChange:
    key: str  # "logs", "api.listen", "state_dir", ...
    effect: GlobalEffect
    detail: str  # what changed; never a secret

    def describe(self) -> str:
        how = {
            GlobalEffect.APPLY: "applied in place",
            GlobalEffect.REBIND: "the API rebinds after answering",
            GlobalEffect.FULL_RESTART: "needs a full restart of the supervisor, kept as it is",
        }[self.effect]
        return f"{self.key}: {how} ({self.detail})"

    def to_dict(self) -> dict[str, Any]:
        return {"key": self.key, "effect": self.effect.value, "detail": self.detail, "text": self.describe()}


@dataclass(frozen=True, slots=True)
class ReloadPlan:
    services: tuple[ServicePlan, ...]  # removed ones in the old file's order, then the new file's order
    globals: tuple[GlobalChange, ...] = ()
    warnings: tuple[str, ...] = ()

    def names(self, action: ServiceAction) -> tuple[str, ...]:
        return tuple(s.name for s in self.services if s.action is action)

    def service(self, name: str) -> ServicePlan:
        return next(s for s in self.services if s.name == name)

    @property
    def changes_anything(self) -> bool:
        return bool(self.globals) or any(s.action is not ServiceAction.KEEP for s in self.services)

    def summary(self) -> str:
        counts = [f"{len(self.names(a))} {a.value}" for a in ServiceAction if self.names(a)]
        text = ", ".join(counts) or "no services"
        return text + (f"; {len(self.globals)} global change(s)" if self.globals else "")

    def describe(self) -> str:
        """One line per service, then one per global change and warning."""
        lines = [s.describe() for s in self.services]
        lines += [g.describe() for g in self.globals]
        lines += [f"warning: {w}" for w in self.warnings]
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {
            "summary": self.summary(),
            "services": [s.to_dict() for s in self.services],
            "globals": [g.to_dict() for g in self.globals],
            "warnings": list(self.warnings),
        }


def plan_reload(
    old: Config,
    new: Config,
    *,
    env_at_spawn: Mapping[str, EnvFingerprint] | None = None,
    env_now: Mapping[str, EnvFingerprint] | None = None,
    env_errors: Mapping[str, str] | None = None,
) -> ReloadPlan:
    """Compare two configs. `env_at_spawn`: per service, the env_file as its running child got it;
    `env_now`: the same files read now; `env_errors`: services whose env_file cannot be read now."""
    at_spawn, now, errors = env_at_spawn or {}, env_now or {}, env_errors or {}
    services = [ServicePlan(name, ServiceAction.REMOVE) for name in old.services if name not in new.services]
    warnings: list[str] = []
    for name, spec in new.services.items():
        before = old.services.get(name)
        if before is None:
            services.append(ServicePlan(name, ServiceAction.ADD, autostart=spec.autostart))
            continue
        restart = _process_changes(before, spec)
        if not restart and spec.env_file is not None and name in errors:
            warnings.append(f"{name}: env_file cannot be read ({errors[name]}); the running process is kept")
        elif not restart and name in at_spawn and name in now and at_spawn[name] != now[name]:
            restart = [f"env_file changed: {_changed_keys(at_spawn[name], now[name])}"]
        if restart:
            services.append(ServicePlan(name, ServiceAction.RESTART, tuple(restart + _update_changes(before, spec))))
        elif updates := _update_changes(before, spec):
            services.append(ServicePlan(name, ServiceAction.UPDATE, tuple(updates)))
        else:
            services.append(ServicePlan(name, ServiceAction.KEEP))
    return ReloadPlan(tuple(services), _global_changes(old, new), tuple(warnings))


def effective_config(old: Config, new: Config) -> Config:
    """The config that is in force after applying `new`: settings that need a full restart keep their
    running value (so the next plan still lists them)."""
    kept = {f.name: getattr(old, f.name) for f in dataclasses.fields(Config)
            if f.name not in ("path", "services", "api", *APPLIED_GLOBALS)}  # fmt: skip
    return dataclasses.replace(new, **kept)


def _process_changes(old: ServiceSpec, new: ServiceSpec) -> list[str]:
    reasons = []
    for f in dataclasses.fields(ServiceSpec):
        if f.name in UPDATE_FIELDS or f.name in IGNORED_FIELDS:
            continue
        before, after = getattr(old, f.name), getattr(new, f.name)
        if before == after:
            continue
        if f.name == "env":
            reasons.append(f"env changed: {_changed_keys(before, after)}")
        else:
            reasons.append(f"{_yaml_key(f.name)} changed")
    if (old.comfy is None) != (new.comfy is None):  # ComfyUI's child gets its own environment
        reasons.append("comfy " + ("added" if new.comfy is not None else "removed"))
    return reasons


def _update_changes(old: ServiceSpec, new: ServiceSpec) -> list[str]:
    reasons = []
    for name in UPDATE_FIELDS:
        before, after = getattr(old, name), getattr(new, name)
        if before == after or (name == "comfy" and (before is None) != (after is None)):
            continue
        if dataclasses.is_dataclass(before) and dataclasses.is_dataclass(after):
            keys = [_yaml_key(f.name) for f in dataclasses.fields(before)
                    if getattr(before, f.name) != getattr(after, f.name)]  # fmt: skip
            reasons.append(f"{_yaml_key(name)} changed: {', '.join(keys)}")
        elif before is None or after is None:
            reasons.append(f"{_yaml_key(name)} {'added' if before is None else 'removed'}")
        else:
            reasons.append(f"{_yaml_key(name)} changed")
    return reasons


def _global_changes(old: Config, new: Config) -> tuple[GlobalChange, ...]:
    changes: list[GlobalChange] = []
    for f in dataclasses.fields(Config):
        before, after = getattr(old, f.name), getattr(new, f.name)
        if f.name in ("path", "services") or before == after:
            continue
        if f.name == "api":
            changes += _api_changes(before, after)
        elif f.name in APPLIED_GLOBALS:
            changes.append(GlobalChange(APPLIED_GLOBALS[f.name], GlobalEffect.APPLY, _detail(before, after)))
        else:
            changes.append(GlobalChange(f.name, GlobalEffect.FULL_RESTART, _detail(before, after)))
    return tuple(changes)


def _api_changes(old: ApiSpec, new: ApiSpec) -> list[GlobalChange]:
    changes = []
    if old.listen != new.listen:
        changes.append(GlobalChange("api.listen", GlobalEffect.REBIND, f"{old.listen} -> {new.listen}"))
    if old.token != new.token:  # the value is a secret: say only that it changed
        changes.append(GlobalChange("api.token", GlobalEffect.APPLY, "changed"))
    for f in dataclasses.fields(ApiSpec):
        if f.name not in ("host", "port", "token") and getattr(old, f.name) != getattr(new, f.name):
            changes.append(GlobalChange(f"api.{f.name}", GlobalEffect.FULL_RESTART, "changed"))
    return changes


def _detail(before: Any, after: Any) -> str:
    if dataclasses.is_dataclass(before) and dataclasses.is_dataclass(after):
        keys = [_yaml_key(f.name) for f in dataclasses.fields(before)
                if getattr(before, f.name) != getattr(after, f.name)]  # fmt: skip
        return "changed: " + ", ".join(keys)
    return f"{before} -> {after}"


def _changed_keys(before: Mapping[str, str], after: Mapping[str, str]) -> str:
    """The names of the variables added, removed or given another value; never a value."""
    keys = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
    return ", ".join(keys) if keys else "(same variables)"


def _yaml_key(field_name: str) -> str:
    """The key as written in the file: `grace_s` is `grace`, `start_period_s` is `start_period`."""
    return field_name.removesuffix("_s")
