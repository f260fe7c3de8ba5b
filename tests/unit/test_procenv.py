"""Finding processes by their environment (platform/procenv.py): the raw /proc prefilter picks exactly
what the psutil scan picks, on real children with real environments."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator, Mapping
from functools import partial

import psutil
import pytest

from orchestrator.platform.common import kill_marked
from orchestrator.platform.procenv import matching_processes

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX process environments")

RUN, SVC = "TEST_PROCENV_RUN", "TEST_PROCENV_SERVICE"


def _of(run: str, service: str, env: Mapping[str, str]) -> bool:
    return env.get(RUN) == run and env.get(SVC) == service


@pytest.fixture
def run_id() -> str:
    return uuid.uuid4().hex


@pytest.fixture
def children(run_id: str) -> Iterator[dict[str, subprocess.Popen[bytes]]]:
    base = {k: v for k, v in os.environ.items() if k not in (RUN, SVC)}
    envs = {
        "web": {RUN: run_id, SVC: "web"},
        "webapp": {RUN: run_id, SVC: "webapp"},  # holds "SVC=web" as a substring: the selector decides
        "other-run": {RUN: uuid.uuid4().hex, SVC: "web"},
        # A marker behind 200 kB of environment (one string may hold 128 KiB): read past the first chunk.
        "big": {**{f"TEST_PROCENV_PAD{i}": "x" * 50_000 for i in range(4)}, RUN: run_id, SVC: "big"},
        "none": {},
    }
    procs = {name: subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], env={**base, **extra})
             for name, extra in envs.items()}  # Popen returns after the exec: the environment is in place
    yield procs
    for p in procs.values():
        if p.poll() is None:
            p.kill()
        p.wait()


def _picked(run_id: str, service: str, required: Mapping[str, str]) -> set[int]:
    return {p.pid for p in matching_processes(partial(_of, run_id, service), required)}


@pytest.mark.parametrize("service", ["web", "big", "webapp"])
def test_the_prefilter_picks_what_the_full_scan_picks(
    children: dict[str, subprocess.Popen[bytes]], run_id: str, service: str
) -> None:
    fast = _picked(run_id, service, {RUN: run_id, SVC: service})
    full = _picked(run_id, service, {})
    assert fast == full == {children[service].pid}


def test_no_process_holds_an_unknown_marker(children: dict[str, subprocess.Popen[bytes]], run_id: str) -> None:
    assert _picked(run_id, "db", {RUN: run_id, SVC: "db"}) == set()


def test_kill_marked_kills_the_picked_ones_only(children: dict[str, subprocess.Popen[bytes]], run_id: str) -> None:
    killed = kill_marked(partial(_of, run_id, "web"), 5.0, {RUN: run_id, SVC: "web"})
    assert len(killed) == 1 and f"pid {children['web'].pid} " in killed[0]
    assert not psutil.pid_exists(children["web"].pid)  # killed and reaped (it was our child)
    assert all(p.poll() is None for name, p in children.items() if name != "web")
