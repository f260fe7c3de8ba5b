"""Applying a ReloadPlan to the running Supervisor, in dependency order, for reloader.py.

Stops first (what the plan removes or restarts, dependants before what they depend on), then the new
specs go in place (`update` and `keep` runners keep their child), then the global settings, then the
new runners, then the starts (each after its dependencies, through the Supervisor's own start).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

from orchestrator.config.spec import Config
from orchestrator.core.machine import IDLE_STATES, ProcessState
from orchestrator.core.runner import ServiceRunner
from orchestrator.core.supervisor import Supervisor
from orchestrator.reload.plan import ReloadPlan, ServiceAction

__all__ = ["apply_plan"]

Hook = Callable[["ServiceRunner"], Awaitable[None]]


async def apply_plan(
    sup: Supervisor, plan: ReloadPlan, new: Config, starts: set[str], before_stop: Sequence[Hook]
) -> tuple[dict[str, str], list[str]]:
    """Carry out `plan`; `starts`: the restarted services to start again. Returns outcomes, failures."""
    removed, restarted = plan.names(ServiceAction.REMOVE), plan.names(ServiceAction.RESTART)
    pids = {name: sup.runners[name].machine.pid for name in restarted}
    fatal_before = {name for name, r in sup.runners.items() if r.state is ProcessState.FATAL}
    rewait = _waits_to_redo(sup, plan, new)  # still waiting on the old dependencies: wait anew
    for name in (*removed, *restarted):
        if sup.runners[name].state not in IDLE_STATES:
            for hook in before_stop:
                await hook(sup.runners[name])
    await sup.stop_many([*removed, *restarted, *rewait], "config reload")
    failures = [f"{n}: did not stop ({sup.runners[n].state.value})" for n in (*removed, *restarted)
                if sup.runners[n].state not in IDLE_STATES]  # fmt: skip
    for name in removed:
        await sup.remove_runner(name)
    _adopt(sup, plan, new)
    started = set()
    for name, spec in new.services.items():
        added = plan.service(name).action is ServiceAction.ADD
        if (added and spec.autostart) or name in starts or name in rewait:
            await sup.start(name, "started by reload")
            started.add(name)
    outcomes = {item.name: _outcome(sup, item.name, item.action, pids.get(item.name), item.name in starts)
                for item in plan.services if item.action is not ServiceAction.KEEP}  # fmt: skip
    # Only the failures this reload caused: a service fatal before it and not started by it stays
    # fatal, and that is not the reload's doing (its outcome still says so).
    failures += [f"{name}: {sup.runners[name].machine.reason}" for name in outcomes
                 if name in sup.runners and sup.runners[name].state is ProcessState.FATAL
                 and (name in started or name not in fatal_before)]  # fmt: skip
    return outcomes, failures


def _waits_to_redo(sup: Supervisor, plan: ReloadPlan, new: Config) -> list[str]:
    return [name for name in plan.names(ServiceAction.UPDATE)
            if sup.runners[name].waiting_for is not None
            and sup.runners[name].spec.depends_on != new.services[name].depends_on]  # fmt: skip


def _adopt(sup: Supervisor, plan: ReloadPlan, new: Config) -> None:
    """Swap in the new specs and global settings; add the new runners; keep the file's order."""
    old = sup.config
    for item in plan.services:
        if item.action in (ServiceAction.RESTART, ServiceAction.UPDATE, ServiceAction.KEEP):
            runner = sup.runners[item.name]
            had_health = runner.spec.health is not None
            runner.reconfigure(new.services[item.name])
            if not had_health and runner.spec.health is not None and runner.probe is not None:
                runner.start_child_helper(runner.probe.start)  # the running child gets probed too
    sup.config = new
    if new.logs != old.logs:
        for runner in sup.runners.values():
            runner.reconfigure_logs(new.logs)
    if new.events_max != old.events_max:
        sup.events.resize(new.events_max)
    for name in plan.names(ServiceAction.ADD):
        sup.add_runner(new.services[name])
    ordered = [sup.runners[name] for name in new.services]
    sup.runners.clear()
    sup.runners.update((runner.name, runner) for runner in ordered)


def _outcome(sup: Supervisor, name: str, action: ServiceAction, old_pid: int | None, started: bool) -> str:
    if action is ServiceAction.REMOVE:
        return "stopped and removed"
    runner = sup.runners[name]
    pid, state = runner.machine.pid, runner.state
    if runner.waiting_for is not None:
        now = f"waiting for {runner.waiting_for}"
    elif state is ProcessState.FATAL:
        now = f"fatal: {runner.machine.reason}"
    else:
        now = state.value + (f", pid {pid}" if pid is not None else "")
    if action is ServiceAction.ADD:
        return ("added, " + now) if runner.spec.autostart else "added, not started (autostart: false)"
    if action is ServiceAction.UPDATE:
        return f"updated in place ({now})"
    if not started:
        return f"new settings apply at its next start ({now})"
    return f"restarted (pid {old_pid} -> {pid})" if old_pid is not None and pid is not None else f"restarted ({now})"
