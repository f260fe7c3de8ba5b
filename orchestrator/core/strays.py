"""Strays: processes a service's tree left outside its process group and parent links (a daemon that
forked, called setsid and lost its parent), found by the markers every child's environment carries.

Rule: when a service's main process has exited and its group is gone, every process still carrying
that run's and that service's markers is killed before the exit counts (so a stop returns only when
they are gone, and a restart never adds one more). At start, every process that carries this state
directory's marker from another run, whose supervisor is gone, is killed before anything spawns,
whatever children.json says. It runs in a worker thread, once per exit of a service's main process
and once at start, and a restart waits for it (a stray may hold the port the next child binds).

Each scan names the markers a victim must carry (`required`), so on Linux it reads every process's
raw /proc environ and parses only those holding them (platform/procenv.py): 1.5 ms for 224 processes
on the 2-core dev box, against 9.1 ms through psutil's environ() of each (77 ms for 417 processes
measured earlier, under load). With psutil, a crash-looping service's restart cost 12 ms over a shell
loop respawning the same child; the scan was most of it (docs/benchmarks.md, issue 16).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from functools import partial
from pathlib import Path

import anyio

from orchestrator.platform import Platform
from orchestrator.platform.common import (
    OWNER_MARKER,
    RUN_MARKER,
    SERVICE_MARKER,
    STATE_MARKER,
    process_start_time,
    same_process_alive,
)

__all__ = ["STRAY_KILL_WAIT_S", "kill_earlier_runs", "kill_service_strays", "run_markers"]

STRAY_KILL_WAIT_S = 5.0  # after SIGKILL, how long we wait for the strays to be gone


def run_markers(run_id: str, state_dir: Path) -> dict[str, str]:
    """The variables every child of this run inherits (the service's own is added at its spawn)."""
    me = os.getpid()
    return {
        RUN_MARKER: run_id,
        STATE_MARKER: os.path.realpath(state_dir),
        OWNER_MARKER: f"{me} {process_start_time(me) or 0.0!r}",
    }


def _of_service(run_id: str, service: str, env: Mapping[str, str]) -> bool:
    return env.get(RUN_MARKER) == run_id and env.get(SERVICE_MARKER) == service


class _EarlierRuns:
    """Picks processes of this state directory's other runs whose supervisor is gone (or is us, in an
    earlier Supervisor of this same process)."""

    def __init__(self, run_id: str, state_dir: Path) -> None:
        self.run_id, self.state_dir = run_id, os.path.realpath(state_dir)
        self._owner_alive: dict[str, bool] = {}

    def __call__(self, env: Mapping[str, str]) -> bool:
        if env.get(STATE_MARKER) != self.state_dir or env.get(RUN_MARKER) in (None, self.run_id):
            return False
        owner = env.get(OWNER_MARKER, "")
        if owner not in self._owner_alive:
            self._owner_alive[owner] = _owner_alive(owner)
        return not self._owner_alive[owner]


def _owner_alive(owner: str) -> bool:
    pid_text, _, started = owner.partition(" ")
    try:
        pid, born = int(pid_text), float(started)
    except ValueError:
        return False  # every run of ours records one: without it, nothing alive vouches for the process
    return pid != os.getpid() and same_process_alive(pid, born)


async def kill_service_strays(platform: Platform, run_id: str, service: str) -> list[str]:
    select = partial(_of_service, run_id, service)
    required = {RUN_MARKER: run_id, SERVICE_MARKER: service}
    # The markers alone decide: what an earlier scan of this service read need not be read again.
    scan = partial(platform.kill_marked, select, STRAY_KILL_WAIT_S, required, incremental=True)
    return await anyio.to_thread.run_sync(scan)


async def kill_earlier_runs(platform: Platform, run_id: str, state_dir: Path) -> list[str]:
    select = _EarlierRuns(run_id, state_dir)
    return await anyio.to_thread.run_sync(platform.kill_marked, select, STRAY_KILL_WAIT_S,
                                          {STATE_MARKER: select.state_dir})
