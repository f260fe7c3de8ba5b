"""Finding processes by their environment (platform/procenv.py): the raw /proc prefilter picks exactly
what the psutil scan picks, on real children with real environments."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Mapping
from functools import partial
from pathlib import Path

import psutil
import pytest

from orchestrator.platform.common import kill_marked
from orchestrator.platform.procenv import FULL_SCAN_EVERY_S, _in_window, matching_processes

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


NS_LAST_PID = Path("/proc/sys/kernel/ns_last_pid")


def _sleeper(env: Mapping[str, str]) -> subprocess.Popen[bytes]:
    base = {k: v for k, v in os.environ.items() if k not in (RUN, SVC)}
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], env={**base, **env})


@pytest.mark.skipif(not NS_LAST_PID.exists(), reason="no pid allocator position to read: every scan is full")
def test_an_incremental_scan_reads_only_the_processes_born_since_the_previous_one(run_id: str) -> None:
    # A selector that changes its mind shows which processes a scan read: each is read by the first scan
    # after its birth, then skipped until the next full scan (at most FULL_SCAN_EVERY_S later).
    picking = [False]
    required = {RUN: run_id, SVC: "web"}

    def select(env: Mapping[str, str]) -> bool:
        return picking[0] and _of(run_id, "web", env)

    def scan() -> set[int]:
        return {p.pid for p in matching_processes(select, required, incremental=True)}

    old = _sleeper(required)
    try:
        assert scan() == set()  # the first two scans of these markers are full: they read `old`, pick nothing
        assert scan() == set()
        picking[0] = True
        new = _sleeper(required)
        try:
            assert scan() == {new.pid}  # `old` was read by the previous scans
            assert scan() == {new.pid}  # a window reaches two scans back: `new` is read once more
            deadline = time.monotonic() + FULL_SCAN_EVERY_S + 10
            while (found := scan()) != {old.pid, new.pid}:
                assert found == set() and time.monotonic() < deadline, found  # both read before
                time.sleep(0.05)
        finally:
            new.kill()
            new.wait()
    finally:
        old.kill()
        old.wait()


@pytest.mark.parametrize(("after", "upto", "inside", "outside"), [
    (400, 600, [401, 500, 600], [200, 400, 601, 900]),
    (32500, 600, [32501, 32767, 300, 500, 600], [601, 900, 32000, 32500]),  # the cursor went past pid_max
])
def test_the_window_of_pids_handed_out_since_a_scan(
    after: int, upto: int, inside: list[int], outside: list[int]
) -> None:
    assert all(_in_window(pid, after, upto) for pid in inside)
    assert not any(_in_window(pid, after, upto) for pid in outside)
