"""Resource figures of whole process trees, sampled on demand and shared by every reader."""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

import anyio
import pytest

from tests.support.helpers import child, config, read_file, service, supervising, wait_for
from tests.support.wine import TCP_OWNER

pytestmark = pytest.mark.anyio


@pytest.mark.wine_lacks(*TCP_OWNER)
async def test_a_child_with_a_listening_grandchild(tmp_path: Path) -> None:
    portfile = tmp_path / "port"
    parent = f"import subprocess, sys; subprocess.Popen({list(child('hold_port.py', portfile))!r}).wait()"
    shell = service("shell", (sys.executable, "-c", parent))  # a parent whose child listens
    spin = service("spin", (sys.executable, "-c", "while True: pass"))
    cfg = replace(config(tmp_path, shell, spin), status_every_s=0.1)
    async with supervising(cfg) as sup:
        await wait_for(lambda: bool(read_file(portfile)), what="port file")
        await sup.resources.refresh()
        st = sup.status("shell")
        assert st.processes == 2 and st.rss_bytes > 1024 * 1024 and st.ports == [int(portfile.read_text())]
        await wait_for(lambda: sup.status("spin").cpu_percent > 10, what="busy child's CPU")  # refreshed by reads
        assert sup.status("spin").cpu_seconds > 0 and sup.status("spin").processes == 1
        st = await sup.stop("shell")
        assert (st.processes, st.rss_bytes, st.ports) == (0, 0, [])


async def test_sampling_is_shared_and_at_most_once_per_interval(tmp_path: Path) -> None:
    svc = service("sleeper", child("ready_then_sleep.py"))
    async with supervising(replace(config(tmp_path, svc), status_every_s=60)) as sup:
        await wait_for(lambda: sup.runner("sleeper").child is not None, what="spawned")  # no status read yet
        assert sup.resources.samples == 0
        async with anyio.create_task_group() as tg:  # ten readers at once: one sample
            for _ in range(10):
                tg.start_soon(sup.resources.refresh)
        assert sup.resources.samples == 1 and sup.status("sleeper").processes == 1
        for _ in range(100):
            sup.statuses()
            await sup.resources.refresh()
        assert sup.resources.samples == 1  # fresh for 60 s: nobody samples again
        sup.resources.every_s = 0.01  # now old: a plain status read has them refreshed in the background
        await wait_for(lambda: sup.status("sleeper").processes == 1 and sup.resources.samples > 1,
                       what="a background sample after a read of old figures")


async def test_a_child_spawned_between_walks_gets_its_own_figures_without_a_walk(tmp_path: Path) -> None:
    """A start between two walks over the machine (a status read every 10 ms during an ignite of 100
    services walked it at every read): the new child's root process is sampled alone, at once; its
    descendants join at the next walk, once the figures are `status.every` old."""
    pidfile = tmp_path / "grandchild.pid"
    first = service("first", child("ready_then_sleep.py"))
    later = service("later", child("spawn_grandchild.py", pidfile), autostart=False)
    async with supervising(replace(config(tmp_path, first, later), status_every_s=60)) as sup:
        await wait_for(lambda: sup.runner("first").child is not None, what="first spawned")
        await sup.resources.refresh()
        assert (sup.resources.samples, sup.resources.root_samples) == (1, 0)
        await sup.start("later")
        await wait_for(lambda: bool(read_file(pidfile)), what="grandchild started")
        await sup.resources.refresh()
        st = sup.status("later")
        assert (sup.resources.samples, sup.resources.root_samples) == (1, 1)
        assert st.pid is not None and st.processes == 1 and st.rss_bytes > 1024 * 1024
        await sup.resources.refresh()  # fresh now: nothing sampled again
        assert (sup.resources.samples, sup.resources.root_samples) == (1, 1)
        sup.resources.every_s = 0.01  # old: the next read walks the machine and finds the grandchild
        await anyio.sleep(0.02)
        await sup.resources.refresh()
        assert sup.resources.samples == 2 and sup.status("later").processes == 2
