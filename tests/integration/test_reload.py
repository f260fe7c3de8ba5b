"""Config reload on a real supervisor with real children: what changed moves, the rest keeps its pid."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import psutil
import pytest
import yaml

from orchestrator.config.loader import load_config
from orchestrator.core.supervisor import Supervisor
from orchestrator.reload.plan import ServiceAction
from tests.support.helpers import child, free_port, make_system, read_file, system_of, wait_for

pytestmark = pytest.mark.anyio


def svc(*names: str, tick: float | None = None, slow_stop: float = 0.0, **extra: Any) -> dict[str, Any]:
    args = [*(["--tick", str(tick)] if tick is not None else []), "--slow-stop", str(slow_stop), *names]
    return {"command": list(child("env_ticker.py", *args)), "start_period": "100ms",
            "restart": {"cooldown": 0}, "stop": {"timeout": "5s"}, **extra}


def write_config(path: Path, services: dict[str, Any], **top: Any) -> str:
    """Write atomically (as careful editors do) and return the text."""
    text = yaml.safe_dump({"logs": {"dir": "logs"}, "state_dir": "state", **top, "services": services},
                          sort_keys=False)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
    return text


@asynccontextmanager
async def running(path: Path) -> AsyncIterator[Supervisor]:
    system = make_system(load_config(path))
    sup = system.supervisor
    async with anyio.create_task_group() as tg:
        await tg.start(system.run)
        try:
            await wait_for(lambda: all(s.state == "running" for s in sup.statuses()), 10, "all running")
            yield sup
        finally:
            with anyio.move_on_after(30):
                await sup.shutdown()


def pids(sup: Supervisor) -> dict[str, int | None]:
    return {s.name: s.pid for s in sup.statuses()}


async def all_running(sup: Supervisor, *names: str) -> None:
    await wait_for(lambda: all(sup.status(n).state == "running" for n in names), 10, f"{names} running")


def kinds(sup: Supervisor) -> list[str]:
    return [e.kind for e in sup.events.since(0)]


async def test_env_change_restarts_only_that_service(tmp_path: Path) -> None:
    path = tmp_path / "supervisor.yaml"
    write_config(path, {"a": svc("COLOR", env={"COLOR": "red"}), "b": svc(tick=0.05)})
    async with running(path) as sup:
        await all_running(sup, "a", "b")
        before = pids(sup)
        write_config(path, {"a": svc("COLOR", env={"COLOR": "blue"}), "b": svc(tick=0.05)})
        result = await system_of(sup).reloader.reload()
        assert result.ok, result.describe()
        assert result.plan is not None and result.plan.service("a").describe() == "a: restart (env changed: COLOR)"
        await all_running(sup, "a")
        after = pids(sup)
        assert after["b"] == before["b"] and after["a"] != before["a"]
        assert not psutil.pid_exists(before["a"] or 0)
        assert result.outcomes["a"] == f"restarted (pid {before['a']} -> {after['a']})"
        # "running" comes after start_period (100 ms); a child slow to start under load prints later.
        await wait_for(lambda: "COLOR=blue" in read_file(tmp_path / "logs" / "a-stdout.log"), what="the new env")
        assert sup.runner("a").spec.env == {"COLOR": "blue"}
        assert {"reload_planned", "reload_service", "reload"} <= set(kinds(sup))
        assert all("blue" not in str(e.to_dict()) for e in sup.events.since(0))
        # b's log kept flowing: its ticks continue in order after the reload
        ticks = [line for line in read_file(tmp_path / "logs" / "b-stdout.log").splitlines() if "tick" in line]
        count = len(ticks)
        await wait_for(lambda: read_file(tmp_path / "logs" / "b-stdout.log").count("tick") > count + 2)
        ticks = [line for line in read_file(tmp_path / "logs" / "b-stdout.log").splitlines() if "tick" in line]
        assert ticks == [f"tick {i}" for i in range(1, len(ticks) + 1)]


async def test_supervision_change_updates_in_place_with_the_same_pid(tmp_path: Path) -> None:
    path = tmp_path / "supervisor.yaml"
    # A probe that would fail is harmless: action none and a long grace.
    health = {"url": "http://127.0.0.1:9/health", "grace": "5m", "action": "none"}
    write_config(path, {"a": svc(health=health), "b": svc()})
    async with running(path) as sup:
        before = pids(sup)
        write_config(path, {"a": svc(health={**health, "grace": "10m"}, restart={"attempts": 7, "cooldown": 0}),
                            "b": svc()})
        result = await system_of(sup).reloader.reload()
        assert result.ok, result.describe()
        assert result.plan is not None
        assert result.plan.service("a").describe() == "a: update (restart changed: attempts; health changed: grace)"
        assert pids(sup) == before
        runner = sup.runner("a")
        assert runner.spec.health is not None and runner.spec.health.grace_s == 600.0
        assert runner.machine.restart_spec.attempts == 7
        assert result.outcomes == {"a": f"updated in place (running, pid {before['a']})"}


async def test_added_service_starts_after_its_new_dependency_and_removed_one_leaves_nothing(tmp_path: Path) -> None:
    path = tmp_path / "supervisor.yaml"
    gone_cmd = list(child("spawn_grandchild.py", tmp_path / "grandchild.pid"))
    write_config(path, {"a": svc(), "gone": svc(command=gone_cmd, stop={"timeout": "300ms"})})
    async with running(path) as sup:
        await all_running(sup, "a", "gone")
        gone = psutil.Process(sup.status("gone").pid or 0)
        await wait_for(lambda: (tmp_path / "grandchild.pid").exists(), what="grandchild pid")
        tree = [gone, *gone.children(recursive=True)]
        assert len(tree) == 2
        before = pids(sup)
        write_config(path, {"a": svc(), "web": svc(depends_on=["db"]), "db": svc(start_period="300ms")})
        result = await system_of(sup).reloader.reload()
        assert result.ok, result.describe()
        assert result.plan is not None
        assert result.plan.describe().splitlines()[:4] == ["gone: remove", "a: keep", "web: add", "db: add"]
        assert list(sup.runners) == ["a", "web", "db"]
        assert result.outcomes["gone"] == "stopped and removed"
        assert not any(p.is_running() and p.status() != psutil.STATUS_ZOMBIE for p in tree)
        await all_running(sup, "web", "db")
        assert pids(sup)["a"] == before["a"]
        db, web = sup.runner("db").machine, sup.runner("web").machine
        assert db.running_since is not None and web.spawned_at is not None
        assert web.spawned_at >= db.running_since  # web waited for db to be running


async def test_invalid_edit_changes_nothing_and_reports_line_and_key(tmp_path: Path) -> None:
    path = tmp_path / "supervisor.yaml"
    write_config(path, {"a": svc(), "b": svc()})
    async with running(path) as sup:
        before, config = pids(sup), sup.config
        text = write_config(path, {"a": svc(restart={"cooldown": "soon"}), "c": svc()})
        line = next(i for i, t in enumerate(text.splitlines(), 1) if "cooldown: soon" in t)
        result = await system_of(sup).reloader.reload()
        assert not result.ok and result.plan is None
        assert [(e.line, e.key_path) for e in result.errors] == [(line, "services.a.restart.cooldown")]
        assert f"{path}:{line}: services.a.restart.cooldown:" in result.describe()
        assert sup.config is config and pids(sup) == before and list(sup.runners) == ["a", "b"]
        event = sup.events.since(0)[-1]
        assert event.kind == "config_error" and f":{line}:" in event.message
        assert result.to_dict()["errors"][0]["key_path"] == "services.a.restart.cooldown"


async def test_env_file_content_change_restarts_its_service(tmp_path: Path) -> None:
    path, env_file = tmp_path / "supervisor.yaml", tmp_path / ".env.local"
    env_file.write_text("API_KEY=one\nMODE=x\n")
    write_config(path, {"a": svc("API_KEY", env_file=".env.local"), "b": svc()})
    async with running(path) as sup:
        before = pids(sup)
        nothing = await system_of(sup).reloader.reload()
        assert nothing.plan is not None and not nothing.plan.changes_anything and pids(sup) == before
        env_file.write_text("API_KEY=two\nMODE=x\n")
        result = await system_of(sup).reloader.reload()
        assert result.plan is not None
        assert result.plan.service("a").describe() == "a: restart (env_file changed: API_KEY)"
        await all_running(sup, "a")
        assert pids(sup)["b"] == before["b"] and pids(sup)["a"] != before["a"]
        await wait_for(lambda: "API_KEY=two" in read_file(tmp_path / "logs" / "a-stdout.log"), what="the new env_file")
        assert "two" not in result.describe() and "one" not in str(result.to_dict())


async def test_logs_change_reopens_at_the_new_dir_without_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "supervisor.yaml"
    write_config(path, {"a": svc(tick=0.02)})
    async with running(path) as sup:
        old_log, new_log = tmp_path / "logs" / "a-stdout.log", tmp_path / "logs2" / "a-stdout.log"
        await wait_for(lambda: "tick 2" in read_file(old_log))
        before = pids(sup)
        write_config(path, {"a": svc(tick=0.02)}, logs={"dir": "logs2", "max_size": "1MB"})
        result = await system_of(sup).reloader.reload()
        assert result.ok and result.plan is not None
        assert [g.describe() for g in result.plan.globals] == ["logs: applied in place (changed: dir, max_size)"]
        await wait_for(lambda: "tick" in read_file(new_log), what="ticks in the new dir")
        assert pids(sup) == before
        old_ticks = [int(t.split()[1]) for t in read_file(old_log).splitlines() if t.startswith("tick")]
        new_ticks = [int(t.split()[1]) for t in read_file(new_log).splitlines() if t.startswith("tick")]
        assert old_ticks + new_ticks == list(range(1, len(old_ticks) + len(new_ticks) + 1))  # none lost
        assert sup.config.logs.dir == tmp_path / "logs2"


async def test_two_quick_reloads_end_in_the_state_of_the_last_file(tmp_path: Path) -> None:
    path = tmp_path / "supervisor.yaml"
    write_config(path, {"a": svc("V", env={"V": "0"}, slow_stop=0.3)})
    async with running(path) as sup:
        write_config(path, {"a": svc("V", env={"V": "1"}, slow_stop=0.3)})
        results = []
        async with anyio.create_task_group() as tg:
            first_pid = sup.status("a").pid
            tg.start_soon(lambda: _collect(sup, results))
            # Under way: stopping (slow_stop holds it there for 0.3 s after the stop signal), or already
            # past it where no signal reaches the child (Wine ends the Job at once) and a new pid runs.
            await wait_for(lambda: sup.status("a").state == "stopping" or sup.status("a").pid != first_pid,
                           what="first reload under way")
            write_config(path, {"a": svc("V", env={"V": "2"}, slow_stop=0.3), "b": svc()})
            tg.start_soon(lambda: _collect(sup, results))
        assert all(r.ok for r in results), [r.describe() for r in results]
        first, second = (r.plan.to_dict()["summary"] for r in results if r.plan is not None)
        assert (first, second) == ("1 restart", "1 add, 1 restart")  # one after the other, each its file
        await all_running(sup, "a", "b")
        assert sup.runner("a").spec.env == {"V": "2"} and list(sup.runners) == ["a", "b"]
        await wait_for(lambda: read_file(tmp_path / "logs" / "a-stdout.log").splitlines()[-2:] == ["V=2", "ready"],
                       what="the last child's output")


async def _collect(sup: Supervisor, results: list[Any]) -> None:
    results.append(await system_of(sup).reloader.reload())


async def test_watch_applies_an_edit_and_ignores_a_half_written_file(tmp_path: Path) -> None:
    path = tmp_path / "supervisor.yaml"
    watch = {"watch": True, "poll": "20ms", "settle": "300ms"}
    write_config(path, {"a": svc("V", env={"V": "0"}), "b": svc()}, reload=watch)
    async with running(path) as sup:
        before = pids(sup)
        full = write_config(path, {"a": svc("V", env={"V": "1"}), "b": svc()}, reload=watch)
        await wait_for(lambda: "reload" in kinds(sup), what="the watcher's reload")
        await all_running(sup, "a")
        assert pids(sup)["b"] == before["b"] and pids(sup)["a"] != before["a"]
        # Half written and invalid: reported once it settles, nothing changes.
        mid = pids(sup)
        path.write_text(full.replace("V: '1'", "V: '2'")[: full.index("b:") + 3] + "\n  [oops")
        await wait_for(lambda: "config_error" in kinds(sup), what="the config error")
        assert pids(sup) == mid and kinds(sup).count("config_error") == 1
        # Half written but valid (b missing), then complete: only the complete file is applied.
        half = write_config(path, {"a": svc("V", env={"V": "3"})}, reload=watch)
        write_config(path, {"a": svc("V", env={"V": "3"}), "b": svc()}, reload=watch)
        assert len(half) < path.stat().st_size
        await wait_for(lambda: kinds(sup).count("reload") == 2, what="the second reload")
        assert pids(sup)["b"] == before["b"] and sup.runner("a").spec.env == {"V": "3"}
        assert not any(e.kind == "reload_service" and e.service == "b" for e in sup.events.since(0))


async def test_dropped_dependency_releases_a_waiting_service(tmp_path: Path) -> None:
    path = tmp_path / "supervisor.yaml"
    write_config(path, {"slow": svc(start_period="30s"), "w": svc(depends_on=["slow"])})
    system = make_system(load_config(path))
    sup = system.supervisor
    async with anyio.create_task_group() as tg:
        await tg.start(system.run)
        try:
            await wait_for(lambda: sup.status("w").waiting_for is not None and sup.status("slow").pid is not None)
            slow_pid = sup.status("slow").pid
            write_config(path, {"slow": svc(start_period="30s"), "w": svc()})
            result = await system_of(sup).reloader.reload()
            assert result.plan is not None and result.plan.service("w").describe() == "w: update (depends_on changed)"
            await all_running(sup, "w")
            assert sup.status("slow").state == "starting" and sup.status("slow").pid == slow_pid
        finally:
            with anyio.move_on_after(30):
                await sup.shutdown()


async def test_health_added_in_place_probes_the_running_child(tmp_path: Path) -> None:
    path, port = tmp_path / "supervisor.yaml", free_port()
    server = {"command": list(child("health_server.py", port)), "start_period": "100ms"}
    write_config(path, {"web": server})
    async with running(path) as sup:
        before = pids(sup)
        health = {"url": f"http://127.0.0.1:{port}/health", "every": "50ms", "grace": "10s"}
        write_config(path, {"web": {**server, "health": health}})
        result = await system_of(sup).reloader.reload()
        assert result.plan is not None and result.plan.service("web").describe() == "web: update (health added)"
        await wait_for(lambda: sup.status("web").health == "healthy", what="the new probe's verdict")
        assert pids(sup) == before


async def test_a_service_that_cannot_start_makes_the_reload_fail_and_says_why(tmp_path: Path) -> None:
    path = tmp_path / "supervisor.yaml"
    write_config(path, {"a": svc()})
    async with running(path) as sup:
        before = pids(sup)
        write_config(path, {"a": svc(), "broken": {"command": ["/nonexistent/program"]}})
        result = await system_of(sup).reloader.reload()
        assert not result.ok and result.plan is not None and result.plan.names(ServiceAction.ADD) == ("broken",)
        assert len(result.failures) == 1 and result.failures[0].startswith("broken: ")
        assert "/nonexistent/program" in result.failures[0]
        assert result.outcomes["broken"].startswith("added, fatal: ")
        event = sup.events.since(0)[-1]
        assert event.kind == "reload_failed" and event.fields["errors"] == list(result.failures)
        assert pids(sup)["a"] == before["a"] and sup.status("broken").state == "fatal"
