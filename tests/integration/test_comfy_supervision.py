"""ComfyUI-aware supervision with the stand-in ComfyUI as a real child of a real supervisor:
ComfyUI-Manager restarts, the sampled queue and VRAM, drained restarts."""

from __future__ import annotations

import dataclasses
from functools import partial
from pathlib import Path

import anyio
import pytest

from orchestrator.comfy.client import QueueCounts
from orchestrator.comfy.model import MANAGER_RESTART, ComfyUI
from orchestrator.core.supervisor import Supervisor
from orchestrator.health.probe import ServiceProbe
from tests.support.comfy import comfy_service, control, free_port, get, supervising
from tests.support.helpers import config, system_of, wait_for

pytestmark = pytest.mark.anyio


def comfy_of(sup: Supervisor) -> ComfyUI:
    return system_of(sup).comfy


async def up(sup: Supervisor) -> int:
    """Wait until the stand-in answers; returns its pid."""
    comfy = comfy_of(sup)
    await wait_for(lambda: comfy.sample.reachable and sup.status("comfyui").state == "running", 10, "ComfyUI up")
    pid = sup.status("comfyui").pid
    assert pid is not None
    return pid


async def test_manager_restart_marker_restarts_at_once_without_an_attempt(tmp_path: Path) -> None:
    port = free_port()
    # A long cooldown and no restart budget: only a requested restart can bring it back, and at once.
    svc = comfy_service(tmp_path, port, attempts=0, cooldown_s=60.0)
    async with supervising(config(tmp_path, svc)) as sup:
        comfy = comfy_of(sup)
        old = await up(sup)
        await get(port, "/api/manager/reboot")  # what the Manager's Restart button calls
        await wait_for(lambda: sup.status("comfyui").pid not in (None, old), 10, "a new ComfyUI")
        st = sup.status("comfyui")
        assert st.restarts_by_reason == {"requested": 1} and st.attempts == 0
        assert st.reason in (MANAGER_RESTART, "running")
        assert not comfy.reboot_marker.exists()
        assert any(e.message == MANAGER_RESTART and e.fields.get("exit_code") == 0 for e in sup.events.since())
        await up(sup)


async def test_clean_exit_without_the_marker_is_an_ordinary_exit(tmp_path: Path) -> None:
    port = free_port()
    # failures=100: the exit, not the refused probes in between (3 in 0.3 s), must be what the supervisor
    # sees first; under Wine the exit was noticed after the probes had called it unhealthy
    async with supervising(config(tmp_path, comfy_service(tmp_path, port, failures=100))) as sup:
        await up(sup)
        await control(port, exit=0)
        await wait_for(lambda: sup.status("comfyui").state == "exited", 10, "exited")
        assert sup.status("comfyui").restarts == 0


async def test_stale_marker_from_an_earlier_run_is_not_a_request(tmp_path: Path) -> None:
    port = free_port()
    marker = tmp_path / "state" / "comfyui-session.reboot"
    marker.parent.mkdir(parents=True)
    marker.write_text("")
    async with supervising(config(tmp_path, comfy_service(tmp_path, port))) as sup:
        await up(sup)
        assert not marker.exists()
        await control(port, exit=0)
        await wait_for(lambda: sup.status("comfyui").state == "exited", 10, "exited")


async def test_sampler_keeps_queue_vram_and_ram_and_forgets_them_when_stopped(tmp_path: Path) -> None:
    port = free_port()
    async with supervising(config(tmp_path, comfy_service(tmp_path, port))) as sup:
        comfy = comfy_of(sup)
        await up(sup)
        await control(port, queue={"running": 1, "pending": 2})
        await wait_for(lambda: comfy.sample.queue == QueueCounts(1, 2), 5, "queue 1 running, 2 pending")
        sample = comfy.sample
        assert sample.reachable and sample.error is None and sample.ram_free == 41_231_686_041
        assert [(d.index, d.vram_total, d.vram_free) for d in sample.devices] == [(0, 25_756_696_576, 24_110_956_544)]
        await sup.stop("comfyui")
        assert not comfy.sample.reachable and comfy.sample.queue is None


async def test_slow_system_stats_keeps_the_last_devices_and_still_reads_the_queue(tmp_path: Path) -> None:
    port = free_port()
    async with supervising(config(tmp_path, comfy_service(tmp_path, port, timeout_s=0.3))) as sup:
        comfy = comfy_of(sup)
        await up(sup)
        await control(port, queue={"running": 1, "pending": 0}, stats_delay=5)
        await wait_for(lambda: (comfy.sample.error or "").startswith("/system_stats: timeout after"), 5, "a timeout")
        sample = comfy.sample
        assert sample.reachable and sample.queue == QueueCounts(1, 0) and len(sample.devices) == 1


async def test_drained_restart_waits_for_the_queue_and_shows_draining(tmp_path: Path) -> None:
    port = free_port()
    async with supervising(config(tmp_path, comfy_service(tmp_path, port, drain_timeout_s=30))) as sup:
        old = await up(sup)
        await control(port, queue={"running": 1, "pending": 1})
        async with anyio.create_task_group() as tg:
            tg.start_soon(partial(sup.restart, "comfyui", drain=True))
            await wait_for(lambda: sup.status("comfyui").state == "draining", 5, "draining")
            await wait_for(lambda: "1 running, 1 pending" in sup.status("comfyui").reason, 5, "the queue in the reason")
            assert comfy_of(sup).draining and sup.status("comfyui").pid == old
            await control(port, queue={"running": 0, "pending": 0})
        st = sup.status("comfyui")
        assert st.pid not in (None, old) and st.state in ("starting", "running")
        assert st.restarts_by_reason == {"manual": 1} and not comfy_of(sup).draining
        drains = [e.message for e in sup.events.since() if e.kind == "comfy_drain"]
        assert drains[0].startswith("draining: new prompts refused") and drains[1].startswith("queue empty after")
        assert any("restarted by hand after drain: queue empty" in e.message for e in sup.events.since())


async def test_drain_gives_up_at_its_timeout_and_says_so(tmp_path: Path) -> None:
    port = free_port()
    async with supervising(config(tmp_path, comfy_service(tmp_path, port, drain_timeout_s=0.6))) as sup:
        old = await up(sup)
        await control(port, queue={"running": 1, "pending": 0})
        st = await sup.restart("comfyui", drain=True)
        assert st.pid not in (None, old)
        gave_up = [e for e in sup.events.since() if e.kind == "comfy_drain" and "gave up" in e.message]
        assert [e.message for e in gave_up] == ["drain gave up after 0.6s with 1 running, 0 pending; restarting anyway"]
        assert gave_up[0].to_dict()["kind"] == "comfy_drain"


async def test_a_stop_during_the_drain_ends_it_without_a_restart(tmp_path: Path) -> None:
    port = free_port()
    async with supervising(config(tmp_path, comfy_service(tmp_path, port, drain_timeout_s=30))) as sup:
        await up(sup)
        await control(port, queue={"running": 1, "pending": 0})
        async with anyio.create_task_group() as tg:
            tg.start_soon(partial(sup.restart, "comfyui", drain=True))
            await wait_for(lambda: sup.status("comfyui").state == "draining", 5, "draining")
            await sup.stop("comfyui")
        st = sup.status("comfyui")
        assert st.state == "stopped" and st.restarts == 0 and not comfy_of(sup).draining


async def test_two_drained_restarts_at_once_restart_once(tmp_path: Path) -> None:
    port = free_port()
    async with supervising(config(tmp_path, comfy_service(tmp_path, port, drain_timeout_s=30))) as sup:
        await up(sup)
        await control(port, queue={"running": 1, "pending": 0})
        async with anyio.create_task_group() as tg:
            tg.start_soon(partial(sup.restart, "comfyui", drain=True))
            tg.start_soon(partial(sup.restart, "comfyui", drain=True))
            await wait_for(lambda: sup.status("comfyui").state == "draining", 5, "draining")
            await control(port, queue={"running": 0, "pending": 0})
        assert sup.status("comfyui").restarts_by_reason == {"manual": 1}


async def test_drain_of_a_comfyui_that_refuses_connections_restarts_at_once(tmp_path: Path) -> None:
    port = free_port()
    async with supervising(config(tmp_path, comfy_service(tmp_path, port, drain_timeout_s=30))) as sup:
        old = await up(sup)
        await control(port, refuse=True)
        await wait_for(lambda: not comfy_of(sup).sample.reachable, 5, "connections refused")
        st = await sup.restart("comfyui", drain=True)
        assert st.pid not in (None, old)
        assert any(e.message == "nothing to drain: ComfyUI refuses connections" for e in sup.events.since())


def probe_of(sup: Supervisor) -> ServiceProbe:
    probe = sup.runner("comfyui").probe
    assert probe is not None
    return probe


async def healthy(sup: Supervisor) -> int:
    pid = await up(sup)
    await wait_for(lambda: sup.status("comfyui").health == "healthy", 10, "healthy")
    return pid


async def test_slow_probes_while_the_queue_runs_do_not_restart(tmp_path: Path) -> None:
    # grace_s 30 in these tests: grace ends at the first answer, so it only covers the stand-in's start
    # (with 0, a start slower than two 0.2 s probes under load became an unhealthy crash loop).
    port = free_port()
    svc = comfy_service(tmp_path, port, every_s=0.1, timeout_s=0.2, failures=2, grace_s=30.0)
    async with supervising(config(tmp_path, svc)) as sup:
        pid = await healthy(sup)
        await control(port, queue={"running": 1, "pending": 0})
        await wait_for(lambda: comfy_of(sup).sample.queue == QueueCounts(1, 0), 5, "the busy queue sampled")
        await control(port, stats_delay=30)
        failed = probe_of(sup).failed_total
        await wait_for(lambda: probe_of(sup).failed_total >= failed + 6, 10, "six probe timeouts")
        st = sup.status("comfyui")
        assert (st.pid, st.restarts, st.health) == (pid, 0, "healthy")
        assert st.health_detail is not None and st.health_detail.startswith("timeout after")
        assert comfy_of(sup).busy.excused_since is not None


async def test_slow_probes_count_once_the_busy_allowance_is_spent(tmp_path: Path) -> None:
    port = free_port()
    svc = comfy_service(tmp_path, port, every_s=0.1, timeout_s=0.2, failures=2, grace_s=30.0, busy_timeout_s=0.8)
    async with supervising(config(tmp_path, svc)) as sup:
        pid = await healthy(sup)
        await control(port, queue={"running": 1, "pending": 0})
        await wait_for(lambda: comfy_of(sup).sample.queue == QueueCounts(1, 0), 5, "the busy queue sampled")
        await control(port, stats_delay=30)
        first_failure = anyio.current_time()
        await wait_for(lambda: sup.status("comfyui").pid not in (None, pid), 10, "a restart")
        assert anyio.current_time() - first_failure >= 0.8
        assert sup.status("comfyui").restarts_by_reason == {"unhealthy": 1}
        assert any(e.message.startswith("unhealthy: timeout after 0.2s") for e in sup.events.since())


async def test_a_refused_connection_counts_even_while_the_queue_runs(tmp_path: Path) -> None:
    port = free_port()
    svc = comfy_service(tmp_path, port, every_s=0.1, timeout_s=0.5, failures=2, grace_s=30.0)
    async with supervising(config(tmp_path, svc)) as sup:
        pid = await healthy(sup)
        await control(port, queue={"running": 1, "pending": 3})
        await wait_for(lambda: comfy_of(sup).sample.queue == QueueCounts(1, 3), 5, "the busy queue sampled")
        await control(port, refuse=True)
        await wait_for(lambda: sup.status("comfyui").pid not in (None, pid), 10, "a restart")
        assert sup.status("comfyui").restarts_by_reason == {"unhealthy": 1}
        assert any(e.message == "unhealthy: connection refused (2 failed probes in a row)" for e in sup.events.since())
        await healthy(sup)


async def test_a_reload_that_restarts_comfyui_drains_its_queue_first(tmp_path: Path) -> None:
    port = free_port()
    svc = comfy_service(tmp_path, port, drain_timeout_s=30)
    async with supervising(config(tmp_path, svc)) as sup:
        old = await up(sup)
        await control(port, queue={"running": 1, "pending": 0})
        changed = dataclasses.replace(svc, env={"NEW_SETTING": "1"})  # env: a restart
        async with anyio.create_task_group() as tg:
            tg.start_soon(system_of(sup).reloader.reload, config(tmp_path, changed))
            await wait_for(lambda: sup.status("comfyui").state == "draining", 5, "draining")
            assert sup.status("comfyui").pid == old
            await control(port, queue={"running": 0, "pending": 0})
        await wait_for(lambda: sup.status("comfyui").pid not in (None, old), 10, "restarted by the reload")
        assert not comfy_of(sup).draining
        kinds = [e.kind for e in sup.events.since() if e.kind in ("comfy_drain", "reload_service")]
        assert kinds == ["comfy_drain", "comfy_drain", "reload_service"]


async def test_comfy_added_by_a_reload_gives_the_child_the_manager_session(tmp_path: Path) -> None:
    port = free_port()
    plain = dataclasses.replace(comfy_service(tmp_path, port), comfy=None)
    async with supervising(config(tmp_path, plain)) as sup:
        await wait_for(lambda: sup.status("comfyui").state == "running", 10, "running")
        assert comfy_of(sup).runner is None
        result = await system_of(sup).reloader.reload(config(tmp_path, comfy_service(tmp_path, port)))
        assert result.ok, result.describe()
        pid = await up(sup)
        await get(port, "/manager/reboot")
        await wait_for(lambda: sup.status("comfyui").pid not in (None, pid), 10, "a requested restart")
        assert sup.status("comfyui").restarts_by_reason == {"requested": 1}
