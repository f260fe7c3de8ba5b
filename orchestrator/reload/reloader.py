"""Carrying out a config reload on the running Supervisor: read, validate, plan, apply, record.

One reload at a time (a lock), and the file is read inside the lock, so two quick reloads end in the
state of the last file. An invalid file changes nothing. The work runs in the supervisor's task group:
a caller that goes away (an HTTP client hanging up) does not leave a reload half done.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import structlog

from orchestrator.config.envfile import env_fingerprint, read_env_file
from orchestrator.config.loader import load_config
from orchestrator.config.spec import Config, ServiceSpec
from orchestrator.core.machine import ALIVE_STATES, ProcessState
from orchestrator.core.runner import ServiceRunner
from orchestrator.core.supervisor import Supervisor
from orchestrator.errors import ConfigError, ConfigIssue
from orchestrator.reload.apply import apply_plan
from orchestrator.reload.plan import (
    EnvFingerprint,
    ReloadPlan,
    ServiceAction,
    effective_config,
    plan_reload,
)

__all__ = ["AppliedCallback", "BeforeStopHook", "ReloadResult", "Reloader", "file_signature"]

_log = structlog.get_logger("orchestrator.reload")

# Called after a reload was applied: (old config, new config, plan). Must not block; schedule slow work.
AppliedCallback = Callable[[Config, Config, ReloadPlan], None]
# Awaited before a service the plan restarts or removes is stopped (ComfyUI drains its queue here).
BeforeStopHook = Callable[["ServiceRunner"], Awaitable[None]]
FileSignature = tuple[int, int, int]  # mtime_ns, size, inode


@dataclass(frozen=True, slots=True)
class ReloadResult:
    ok: bool  # False: nothing was applied (invalid file) or applying went wrong (see `failures`)
    trigger: str  # signal, watch, api, ...
    dry_run: bool = False
    plan: ReloadPlan | None = None
    errors: tuple[ConfigIssue, ...] = ()  # the new file's problems; nothing was changed
    failures: tuple[str, ...] = ()  # problems while applying a valid file
    outcomes: dict[str, str] = field(default_factory=dict)  # service -> what happened to it

    def describe(self) -> str:
        if self.errors:
            return "invalid config, nothing changed:\n" + "\n".join(f"  {e}" for e in self.errors)
        lines = [self.plan.describe()] if self.plan is not None and self.plan.services else []
        lines += [f"{name}: {text}" for name, text in self.outcomes.items()]
        lines += [f"failed: {text}" for text in self.failures]
        return "\n".join(lines) or "nothing to do"

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "trigger": self.trigger,
            "dry_run": self.dry_run,
            "plan": self.plan.to_dict() if self.plan is not None else None,
            "errors": [_issue_dict(e) for e in self.errors],
            "failures": list(self.failures),
            "outcomes": dict(self.outcomes),
        }


class Reloader:
    """Reloads of one running Supervisor (built beside it by app.build_system); every trigger (SIGHUP,
    the API, the file watcher) ends in `reload()`."""

    def __init__(self, supervisor: Supervisor) -> None:
        self._sup = supervisor
        self._lock = anyio.Lock()
        self.on_applied: list[AppliedCallback] = []
        self.before_stop: list[BeforeStopHook] = []
        self._seen: FileSignature | None = file_signature(supervisor.config.path)
        self._applied = anyio.Event()  # set (and replaced) at each applied reload: watch may turn on
        self._plan_cache: tuple[FileSignature, Config | ConfigError] | None = None
        self.parsed_total = 0  # times the config file was parsed (plans reuse a parse of the same file)

    # -- triggers ------------------------------------------------------------------------------------
    async def reload(self, new_config: Config | None = None, *, trigger: str = "api",
                     dry_run: bool = False) -> ReloadResult:
        """Apply a new config (None: re-read the config file). Never raises; see ReloadResult."""
        if new_config is None:
            return await self.reload_from_disk(trigger=trigger, dry_run=dry_run)
        return await self.apply(new_config, trigger=trigger, dry_run=dry_run)

    async def reload_from_disk(self, *, trigger: str = "signal", dry_run: bool = False) -> ReloadResult:
        """Re-read the config file and apply it (or with `dry_run`, only plan it). Never raises."""
        return await self._detached(trigger, lambda: self._from_disk(trigger, dry_run))

    async def apply(self, new: Config, *, trigger: str = "api", dry_run: bool = False) -> ReloadResult:
        """Apply an already validated config."""

        async def locked() -> ReloadResult:
            async with self._lock:
                return await self._apply(new, trigger, dry_run)

        return await self._detached(trigger, locked)

    def plan(self, new: Config) -> ReloadPlan:
        """What applying `new` would do to the running services now (reads their env_files)."""
        spawned: dict[str, EnvFingerprint] = {}
        now: dict[str, EnvFingerprint] = {}
        errors: dict[str, str] = {}
        for name, spec in new.services.items():
            runner = self._sup.runners.get(name)
            if runner is None or runner.env_file_fingerprint is None or spec.env_file is None:
                continue
            spawned[name] = runner.env_file_fingerprint
            try:
                now[name] = env_fingerprint(read_env_file(spec.env_file))
            except (OSError, ValueError) as exc:
                errors[name] = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        return plan_reload(self._sup.config, new, env_at_spawn=spawned, env_now=now, env_errors=errors)

    async def watch(self) -> None:
        """With `reload.watch`, apply the file once it has changed and then stayed unchanged `settle`."""
        while True:
            settings = self._sup.config.reload
            if not settings.watch:  # sleep until a reload turns watching on: an idle supervisor stays idle
                await self._applied.wait()
                continue
            await anyio.sleep(settings.poll_s)
            if file_signature(self._sup.config.path) == self._seen:
                continue
            if await self._settled(self._sup.config.path):
                await self.reload_from_disk(trigger="watch")

    # -- the work ------------------------------------------------------------------------------------
    async def _detached(self, trigger: str, work: Callable[[], Awaitable[ReloadResult]]) -> ReloadResult:
        results: list[ReloadResult] = []
        done = anyio.Event()

        async def run() -> None:
            try:
                results.append(await work())
            finally:
                done.set()

        if not self._sup.background(run):
            return ReloadResult(False, trigger, failures=("the supervisor is not running",))
        await done.wait()
        return results[0] if results else ReloadResult(False, trigger, failures=("cancelled: shutting down",))

    async def _from_disk(self, trigger: str, dry_run: bool) -> ReloadResult:
        async with self._lock:
            path = self._sup.config.path
            if not dry_run:
                self._seen = file_signature(path)
            loaded = await (self._load_for_plan(path) if dry_run else self._load(path, file_signature(path)))
            if isinstance(loaded, ConfigError):
                return self._invalid(loaded.issues, trigger, dry_run)
            return await self._apply(loaded, trigger, dry_run)

    async def _load_for_plan(self, path: Path) -> Config | ConfigError:
        """The file parsed, or the parse of the same file before: `GET /api/reload/plan` is open without a
        token on loopback, so a page or a loop asking it again and again must not cost a parse each time.
        Keyed by (mtime_ns, size, inode); only plans use it, a real reload always reads the file."""
        signature = file_signature(path)
        if signature is not None and self._plan_cache is not None and self._plan_cache[0] == signature:
            return self._plan_cache[1]
        return await self._load(path, signature)

    async def _load(self, path: Path, signature: FileSignature | None) -> Config | ConfigError:
        self.parsed_total += 1
        loaded: Config | ConfigError
        try:
            loaded = await anyio.to_thread.run_sync(load_config, path, self._sup.environ)
        except ConfigError as exc:
            loaded = exc
        self._plan_cache = (signature, loaded) if signature is not None else None
        return loaded

    def _invalid(self, issues: list[ConfigIssue], trigger: str, dry_run: bool) -> ReloadResult:
        result = ReloadResult(False, trigger, dry_run, errors=tuple(issues))
        if not dry_run:
            self._sup.events.record(
                "config_error", f"reload ({trigger}): invalid config, nothing changed: {issues[0]}"
                + (f" (and {len(issues) - 1} more)" if len(issues) > 1 else ""),
                level="error", errors=[_issue_dict(i) for i in issues],
            )
        return result

    async def _apply(self, new: Config, trigger: str, dry_run: bool) -> ReloadResult:
        sup = self._sup
        if sup.shutting_down:
            return ReloadResult(False, trigger, dry_run, failures=("the supervisor is shutting down",))
        plan = self.plan(new)
        if dry_run:
            return ReloadResult(True, trigger, True, plan)
        old = sup.config
        restarted = plan.names(ServiceAction.RESTART)
        starts = {name for name in restarted if _starts_again(sup.runners[name], new.services[name])}
        sup.events.record("reload_planned", f"reload ({trigger}): {plan.summary()}", plan=plan.to_dict())
        try:
            outcomes, failures = await apply_plan(sup, plan, effective_config(old, new), starts, self.before_stop)
        except Exception as exc:  # a bug or an OS error mid-way: report it, keep the supervisor up
            _log.exception("reload_crashed")
            failures, outcomes = [f"{type(exc).__name__}: {exc}"], {}
        self._notify_applied(old, sup.config, plan)
        result = ReloadResult(not failures, trigger, False, plan, failures=tuple(failures), outcomes=outcomes)
        for item in plan.services:
            if item.action is not ServiceAction.KEEP:
                sup.events.record("reload_service", f"{item.describe()}: {outcomes.get(item.name, '?')}",
                                  service=item.name, action=item.action.value)
        if failures:
            sup.events.record("reload_failed", f"reload ({trigger}): {'; '.join(failures)}",
                              level="error", errors=list(failures))
        else:
            sup.events.record("reload", f"reload ({trigger}) done: {plan.summary()}", outcomes=outcomes)
        return result

    def _notify_applied(self, old: Config, new: Config, plan: ReloadPlan) -> None:
        self._applied.set()
        self._applied = anyio.Event()
        for callback in self.on_applied:
            try:
                callback(old, new, plan)
            except Exception:  # one broken listener must not stop the others
                _log.exception("reload_callback_failed", callback=getattr(callback, "__qualname__", "?"))

    async def _settled(self, path: os.PathLike[str]) -> bool:
        """Wait until the file has not changed for `settle`; False if it vanished meanwhile."""
        last = file_signature(path)
        stable_since = anyio.current_time()
        while True:
            settings = self._sup.config.reload
            if anyio.current_time() - stable_since >= settings.settle_s:
                return last is not None
            await anyio.sleep(min(settings.poll_s, max(settings.settle_s / 4, 0.01)))
            now = file_signature(path)
            if now != last:
                last, stable_since = now, anyio.current_time()


def _starts_again(runner: ServiceRunner, spec: ServiceSpec) -> bool:
    """After a restart-kind change: start again what was meant to run; a hand-stopped one stays stopped."""
    state = runner.state
    if state in ALIVE_STATES or state is ProcessState.BACKOFF or runner.waiting_for is not None:
        return True
    return state in (ProcessState.FATAL, ProcessState.EXITED) and spec.autostart


def file_signature(path: os.PathLike[str] | str) -> FileSignature | None:
    """What watch mode compares: modification time, size and inode (editors that replace the file)."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size, st.st_ino)


def _issue_dict(issue: ConfigIssue) -> dict[str, Any]:
    return issue._asdict() | {"text": str(issue)}
