"""Helpers for tests that run real children: paths of the child scripts, configs, waiting on conditions."""

from __future__ import annotations

import socket
import sys
import time
import weakref
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest

from orchestrator.app import System, build_system
from orchestrator.config.spec import Config, LogSpec, RestartPolicy, RestartSpec, ServiceSpec, StopSpec
from orchestrator.core.supervisor import Supervisor

CHILDREN = Path(__file__).resolve().parent.parent / "children"


def child(script: str, *args: object) -> tuple[str, ...]:
    return (sys.executable, "-u", str(CHILDREN / script), *(str(a) for a in args))


def service(name: str, command: tuple[str, ...], *, policy: str = "on-failure", attempts: int = 3,
            cooldown_s: float = 0.0, reset_after_s: float = 300.0, stop_timeout_s: float = 5.0,
            start_period_s: float = 0.2, **kw: Any) -> ServiceSpec:
    return ServiceSpec(
        name=name, command=command,
        restart=RestartSpec(RestartPolicy(policy), attempts, cooldown_s, reset_after_s),
        stop=StopSpec(stop_timeout_s, kw.pop("signal", "SIGTERM")),
        start_period_s=start_period_s, **kw,
    )


def config(tmp: Path, *services: ServiceSpec, max_size: int = 10 * 1024 * 1024, backups: int = 5) -> Config:
    return Config(
        path=tmp / "supervisor.yaml",
        logs=LogSpec(dir=tmp / "logs", max_size=max_size, backups=backups),
        services={s.name: s for s in services},
        state_dir=tmp / "state",
    )


async def wait_for(predicate: Callable[[], bool], timeout: float = 10.0, what: str = "condition") -> None:
    """Poll a cheap condition until it holds; fail with `what` at the deadline."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await anyio.sleep(0.01)


def read_file(path: Path) -> str:
    try:
        return path.read_text()
    except FileNotFoundError:
        return ""


def free_port() -> int:
    """A port nothing listens on right now (a child that restarts must find its URL unchanged)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


_SYSTEMS: weakref.WeakKeyDictionary[Supervisor, System] = weakref.WeakKeyDictionary()


def make_system(cfg: Config, **kw: Any) -> System:
    """The whole program but the API (app.build_system), remembered for system_of()."""
    system = build_system(cfg, **kw)
    _SYSTEMS[system.supervisor] = system
    return system


def system_of(sup: Supervisor) -> System:
    """The parts plugged into a supervisor made by make_system (its reloader, ComfyUI, probes)."""
    return _SYSTEMS[sup]


@asynccontextmanager
async def supervising(cfg: Config, **kw: Any) -> AsyncIterator[Supervisor]:
    """A running Supervisor (with everything app.build_system plugs in) for the block; shut down (every
    child gone) when it ends."""
    system = make_system(cfg, **kw)
    sup = system.supervisor
    async with anyio.create_task_group() as tg:
        await tg.start(system.run)
        try:
            yield sup
        finally:
            with anyio.move_on_after(30, shield=True):
                await sup.shutdown()


# Tests of POSIX signal semantics (SIGTERM handlers, /bin/sh, killpg); Windows has its own in tests/windows/.
POSIX_ONLY = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals, shells or permissions")
