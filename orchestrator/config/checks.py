"""The checks that need every service at once: dependencies, ports, the single ComfyUI."""

from __future__ import annotations

from collections.abc import Mapping

from orchestrator.config.read import Reader
from orchestrator.config.spec import DependencyCondition, RestartPolicy, ServiceSpec

__all__ = ["check_services"]


def check_services(r: Reader, services: Mapping[str, ServiceSpec]) -> None:
    _check_dependencies(r, services)
    _check_cycles(r, services)
    _check_ports(r, services)
    comfy = [name for name, spec in services.items() if spec.comfy is not None]
    if len(comfy) > 1:
        found = ", ".join(comfy[:-1]) + f" and {comfy[-1]}"
        for name in comfy[1:]:
            r.issue(("services", name, "comfy"), f"at most one service may carry comfy:, found in {found}")


def _check_dependencies(r: Reader, services: Mapping[str, ServiceSpec]) -> None:
    for name, spec in services.items():
        for dep in spec.depends_on:
            where = ("services", name, "depends_on")
            if dep.name == name:
                r.issue(where, f"{name!r} cannot depend on itself")
            elif dep.name not in services:
                r.issue(
                    where, f"depends on {dep.name!r}, which is not a service; known: {', '.join(services)}"
                )
            elif dep.condition is DependencyCondition.HEALTHY and services[dep.name].health is None:
                r.issue(where, f"waits for {dep.name!r} to be healthy, but {dep.name!r} has no health check")
            elif (dep.condition is DependencyCondition.COMPLETED
                  and services[dep.name].restart.policy is RestartPolicy.ALWAYS):
                r.issue(where, f"waits for {dep.name!r} to complete (exit 0), but {dep.name!r} has restart "
                        "policy always: it is restarted at every exit and never completes")


def _check_cycles(r: Reader, services: Mapping[str, ServiceSpec]) -> None:
    reported: set[frozenset[str]] = set()
    done: set[str] = set()

    def visit(name: str, trail: list[str]) -> None:
        if name in trail:
            cycle = [*trail[trail.index(name) :], name]
            if frozenset(cycle) not in reported:
                reported.add(frozenset(cycle))
                r.issue(("services", cycle[0], "depends_on"), f"dependency cycle: {' -> '.join(cycle)}")
            return
        if name in done or name not in services:
            return
        for dep in services[name].depends_on:
            if dep.name != name:  # self-dependency has its own message
                visit(dep.name, [*trail, name])
        done.add(name)

    for name in services:
        visit(name, [])


def _check_ports(r: Reader, services: Mapping[str, ServiceSpec]) -> None:
    owner: dict[int, str] = {}
    for name, spec in services.items():
        for port in spec.ports:
            if port in owner:
                r.issue(
                    ("services", name, "ports"), f"port {port} is already declared by service {owner[port]!r}"
                )
            else:
                owner.setdefault(port, name)
