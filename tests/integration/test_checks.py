"""Disk and memory checks on this machine: thresholds it is sure to cross, warned once, recovered once."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path

import anyio
import psutil
import pytest

from orchestrator.api.metrics import build_registry
from orchestrator.config.spec import ChecksSpec, DiskCheckSpec, MemoryCheckSpec
from orchestrator.core.events import EventLog
from orchestrator.health.checks import CheckState, SystemChecks
from tests.support.helpers import config, supervising, system_of, wait_for

pytestmark = pytest.mark.anyio


@asynccontextmanager
async def checking(spec: ChecksSpec) -> AsyncIterator[tuple[SystemChecks, EventLog]]:
    events = EventLog()
    checks = SystemChecks(spec, events)
    async with anyio.create_task_group() as tg:
        tg.start_soon(checks.run)
        yield checks, events
        tg.cancel_scope.cancel()


async def several_readings(checks: SystemChecks, n: int = 5) -> None:
    """Wait until every check has been read at least n more times (each reading stamps last_checked)."""
    seen: dict[int, set[float]] = {i: set() for i in range(len(checks.statuses()))}

    def enough() -> bool:
        for i, st in enumerate(checks.statuses()):
            if st.last_checked is not None:
                seen[i].add(st.last_checked)
        return all(len(s) >= n for s in seen.values())

    await wait_for(enough, what=f"{n} readings of every check")


def kinds(events: EventLog) -> list[tuple[str, str]]:
    return [(e.kind, str(e.fields.get("check"))) for e in events.since()]


async def test_disk_and_memory_warn_once_and_recover_once(tmp_path: Path) -> None:
    total = psutil.disk_usage(str(tmp_path)).total
    spec = ChecksSpec(disk=(DiskCheckSpec(str(tmp_path), min_free=total + 1, every_s=0.02),),
                      memory=MemoryCheckSpec(max_percent=0, every_s=0.02))
    async with checking(spec) as (checks, events):
        await several_readings(checks)
        assert sorted(kinds(events)) == [("check_warning", "disk"), ("check_warning", "memory")]
        disk, memory = checks.statuses()
        assert disk.state is CheckState.WARNING and disk.ok is False and disk.value is not None
        assert 0 < disk.value <= total and disk.unit == "bytes"
        assert memory.state is CheckState.WARNING and memory.value is not None and 0 < memory.value <= 100
        warning = next(e for e in events.since() if e.fields.get("check") == "disk")
        assert warning.message.startswith(f"disk {tmp_path}: ") and "free (minimum " in warning.message

        checks.configure(ChecksSpec(disk=(DiskCheckSpec(str(tmp_path), min_free=0, every_s=0.02),),
                                    memory=MemoryCheckSpec(max_percent=100, every_s=0.02)))
        await several_readings(checks)
        assert sorted(kinds(events)) == [("check_recovered", "disk"), ("check_recovered", "memory"),
                                         ("check_warning", "disk"), ("check_warning", "memory")]
        assert all(st.state is CheckState.OK and st.ok for st in checks.statuses())


async def test_an_unreadable_disk_path_is_the_checks_state_not_a_crash(tmp_path: Path) -> None:
    missing = "F:\\" if sys.platform != "win32" else str(tmp_path / "missing")  # the production path on Linux
    spec = ChecksSpec(disk=(DiskCheckSpec(missing, every_s=0.02),
                            DiskCheckSpec(str(tmp_path), min_free=0, every_s=0.02)))
    async with checking(spec) as (checks, events):
        await several_readings(checks, 3)
        bad, good = checks.statuses()
        assert bad.state is CheckState.ERROR and bad.ok is None and bad.value is None
        assert bad.error is not None and bad.error.startswith("cannot read: ")
        assert good.state is CheckState.OK
        assert [e.kind for e in events.since()] == ["check_failed"]
        assert events.since()[0].message.startswith(f"disk {missing}: cannot read: ")


async def test_supervisor_status_carries_the_checks(tmp_path: Path) -> None:
    cfg = replace(config(tmp_path), checks=ChecksSpec(disk=(DiskCheckSpec(str(tmp_path), min_free=0),),
                                                      memory=MemoryCheckSpec(max_percent=100)))
    async with supervising(cfg) as sup:
        await wait_for(lambda: sup.system_status()["memory"]["last_checked"] is not None, what="memory read")
        await wait_for(lambda: sup.system_status()["disk"][0]["last_checked"] is not None, what="disk read")
        system = sup.system_status()
        assert system["disk"][0]["path"] == str(tmp_path) and system["disk"][0]["state"] == "ok"
        assert system["disk"][0]["threshold"] == 0 and system["disk"][0]["value"] > 0
        assert system["memory"]["state"] == "ok" and system["memory"]["threshold"] == 100
        assert system["disk"][0]["free_bytes"] == system["disk"][0]["value"]
        assert system["disk"][0]["min_free_bytes"] == 0
        assert system["memory"]["used_percent"] == system["memory"]["value"]
        assert system["memory"]["max_percent"] == 100
        registry = build_registry(sup)  # the metrics read the same readings
        free = registry.get_sample_value("orchestrator_disk_free_bytes", {"path": str(tmp_path)})
        assert free == system["disk"][0]["value"]
        assert registry.get_sample_value("orchestrator_memory_used_percent") is not None


async def test_a_reload_moves_a_threshold_and_the_check_recovers(tmp_path: Path) -> None:
    cfg = replace(config(tmp_path), checks=ChecksSpec(memory=MemoryCheckSpec(max_percent=0, every_s=60)))
    async with supervising(cfg) as sup:
        await wait_for(lambda: sup.system_status()["memory"]["state"] == "warning", what="memory warning")
        relaxed = replace(cfg, checks=ChecksSpec(memory=MemoryCheckSpec(max_percent=100)))
        result = await system_of(sup).reloader.reload(relaxed)
        assert result.ok, result.describe()
        await wait_for(lambda: sup.system_status()["memory"]["state"] == "ok", what="memory ok")
        assert [e.kind for e in sup.events.since() if e.kind.startswith("check_")] == [
            "check_warning", "check_recovered"]
