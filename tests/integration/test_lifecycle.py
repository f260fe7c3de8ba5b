"""The supervisor core with real children: restarts, fatal, stops, grandchildren, dependencies."""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import psutil
import pytest

from orchestrator.config.spec import Config, Dependency
from orchestrator.core.supervisor import Supervisor
from tests.support.helpers import POSIX_ONLY, child, config, read_file, service, wait_for

pytestmark = pytest.mark.anyio


@asynccontextmanager
async def running(cfg: Config) -> AsyncIterator[Supervisor]:
    sup = Supervisor(cfg)
    async with anyio.create_task_group() as tg:
        await tg.start(sup.run)
        try:
            yield sup
        finally:
            with anyio.move_on_after(30):
                await sup.shutdown()


def spawn_times(sup: Supervisor, name: str) -> list[float]:
    return [t.at for t in sup.runner(name).machine.history if t.to.value == "starting"]


async def test_crash_loop_reaches_fatal_after_exactly_attempts_restarts_with_cooldown(tmp_path: Path) -> None:
    svc = service("crash", child("exit_with.py", 3), attempts=3, cooldown_s=0.3, start_period_s=0.05)
    async with running(config(tmp_path, svc)) as sup:
        await wait_for(lambda: sup.status("crash").state == "fatal", 10, "fatal")
        st = sup.status("crash")
        assert st.restarts == 3
        assert "exited with code 3" in st.reason and "gave up after 3" in st.reason
        times = spawn_times(sup, "crash")
        assert len(times) == 4
        gaps = [b - a for a, b in itertools.pairwise(times)]
        assert all(g >= 0.3 - 0.01 for g in gaps), gaps
        out = (tmp_path / "logs" / "crash-stdout.log").read_text()
        assert out.count("exit_with 3") == 4


async def test_a_restart_at_once_records_its_events_after_the_spawn_in_order(tmp_path: Path) -> None:
    # The next child does not wait for the records of the exit that restarts it (runner.feed).
    svc = service("blink", child("exit_with.py", 0), policy="always", attempts=2, start_period_s=0.0)
    async with running(config(tmp_path, svc)) as sup:
        runner = sup.runner("blink")
        seen: list[tuple[str, str, object, int | None]] = []  # kind, to_state, pid field, the runner's child
        sup.events.add_listener(lambda e: seen.append((e.kind, str(e.fields.get("to_state")), e.fields.get("pid"),
                                                       runner.child.pid if runner.child else None)))
        await wait_for(lambda: sup.status("blink").state == "fatal", 10, "fatal")
    running_pids = [pid for kind, to, pid, _ in seen if kind == "state_changed" and to == "running"]
    exits = [i for i, (kind, _, _, _) in enumerate(seen) if kind == "restart"]
    assert len(exits) == 2 and len(running_pids) == 3, seen
    for i, new in zip(exits, running_pids[1:], strict=True):
        # exit -> starting, the restart, the new pid running: each recorded once the new child was spawned
        assert seen[i - 1:i + 2] == [("state_changed", "starting", None, new), ("restart", "None", None, new),
                                     ("state_changed", "running", new, new)], seen


async def test_policy_never_leaves_exited_and_always_restarts_clean_exits(tmp_path: Path) -> None:
    never = service("never", child("exit_with.py", 1, 0.3), policy="never", start_period_s=0.05)
    always = service("always", child("exit_with.py", 0, 0.1), policy="always", attempts=2, start_period_s=0.05)
    onfail = service("onfail", child("exit_with.py", 0, 0.1), policy="on-failure", start_period_s=0.05)
    async with running(config(tmp_path, never, always, onfail)) as sup:
        await wait_for(lambda: sup.status("never").state == "exited", what="never exited")
        await wait_for(lambda: sup.status("always").state == "fatal", what="always gave up")
        await wait_for(lambda: sup.status("onfail").state == "exited", what="onfail exited")
        assert sup.status("never").exit_code == 1 and sup.status("never").restarts == 0
        assert sup.status("always").restarts == 2
        assert sup.status("onfail").restarts == 0 and sup.status("onfail").exit_code == 0


async def test_missing_command_is_fatal_while_neighbour_runs(tmp_path: Path) -> None:
    bad = service("bad", ("/nonexistent/bin/thing", "--flag"))
    badcwd = service("badcwd", child("ready_then_sleep.py"), cwd=str(tmp_path / "no-such-dir"))
    good = service("good", child("ready_then_sleep.py"))
    async with running(config(tmp_path, bad, badcwd, good)) as sup:
        await wait_for(lambda: sup.status("good").state == "running", what="good running")
        await wait_for(lambda: sup.status("bad").state == "fatal", what="bad fatal")
        assert "/nonexistent/bin/thing" in sup.status("bad").reason
        await wait_for(lambda: sup.status("badcwd").state == "fatal", what="badcwd fatal")
        assert "no-such-dir" in sup.status("badcwd").reason
        assert sup.status("good").pid is not None


@POSIX_ONLY
async def test_stop_of_sigterm_ignoring_child_takes_the_timeout_and_leaves_nothing(tmp_path: Path) -> None:
    svc = service("stubborn", child("ignore_sigterm.py"), stop_timeout_s=0.5)
    async with running(config(tmp_path, svc)) as sup:
        await wait_for(lambda: "ready" in read_file(tmp_path / "logs" / "stubborn-stdout.log"), what="ready")
        pid = sup.status("stubborn").pid
        assert pid is not None
        t0 = time.monotonic()
        st = await sup.stop("stubborn")
        took = time.monotonic() - t0
        assert st.state == "stopped"
        assert 0.45 <= took < 3.0, took
        assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


@POSIX_ONLY
@pytest.mark.parametrize("detach", [False, True])
async def test_grandchild_does_not_survive_stop(tmp_path: Path, detach: bool) -> None:
    pidfile = tmp_path / "grandchild.pid"
    args = [pidfile, "--detach"] if detach else [pidfile]
    svc = service("parent", child("spawn_grandchild.py", *args), stop_timeout_s=0.5)
    async with running(config(tmp_path, svc)) as sup:
        await wait_for(lambda: pidfile.exists(), what="grandchild pid file")
        grandchild = psutil.Process(int(pidfile.read_text()))
        await sup.stop("parent")
        assert not grandchild.is_running() or grandchild.status() == psutil.STATUS_ZOMBIE


@POSIX_ONLY
async def test_shell_child_stop_frees_its_port_at_once(tmp_path: Path) -> None:
    portfile = tmp_path / "port"
    script = f"{' '.join(child('hold_port.py', portfile))}; echo never"
    svc = service("shell", ("/bin/sh", "-c", script), stop_timeout_s=2)
    async with running(config(tmp_path, svc)) as sup:
        await wait_for(lambda: bool(read_file(portfile)), what="port file")
        port = int(portfile.read_text())
        await sup.stop("shell")
        import socket

        with socket.socket() as s:  # would raise EADDRINUSE if anything of the tree still listened
            s.bind(("127.0.0.1", port))


async def test_dependency_order_start_and_reverse_stop(tmp_path: Path) -> None:
    db = service("db", child("ready_then_sleep.py"), start_period_s=0.3)
    web = service("web", child("ready_then_sleep.py"), depends_on=(Dependency("db"),))
    async with running(config(tmp_path, web, db)) as sup:
        await wait_for(lambda: sup.status("web").state == "running", what="web running")
        db_running = next(t.at for t in sup.runner("db").machine.history if t.to.value == "running")
        web_start = spawn_times(sup, "web")[0]
        assert web_start >= db_running
        await sup.shutdown()
        db_stop = sup.runner("db").machine.history[-1].at
        web_stop = sup.runner("web").machine.history[-1].at
        assert web_stop <= db_stop


@POSIX_ONLY
async def test_restart_by_hand_gives_a_new_pid_and_start_of_fatal_resets(tmp_path: Path) -> None:
    svc = service("svc", child("ready_then_sleep.py"))
    async with running(config(tmp_path, svc)) as sup:
        await wait_for(lambda: sup.status("svc").state == "running", what="running")
        old = sup.status("svc").pid
        st = await sup.restart("svc")
        assert st.pid is not None and st.pid != old
        assert st.restarts_by_reason == {"manual": 1}
        assert "got signal 15" in (tmp_path / "logs" / "svc-stdout.log").read_text()


async def test_child_environment_and_cwd(tmp_path: Path) -> None:
    envfile = tmp_path / ".env.local"
    envfile.write_text("FROM_FILE=file\nBOTH=file\n")
    code = "import os; print(os.environ['FROM_FILE'], os.environ['BOTH'], os.getcwd(), flush=True)"
    svc = service("env", (os.sys.executable, "-c", code), policy="never", start_period_s=0,
                  env={"BOTH": "env"}, env_file=str(envfile), cwd=str(tmp_path))
    async with running(config(tmp_path, svc)) as sup:
        await wait_for(lambda: sup.status("env").state == "exited", what="exited")
        assert (tmp_path / "logs" / "env-stdout.log").read_text().strip() == f"file env {tmp_path}"


@POSIX_ONLY
async def test_non_executable_command_is_fatal_naming_the_path(tmp_path: Path) -> None:
    script = tmp_path / "not-executable.sh"
    script.write_text("#!/bin/sh\necho hi\n")
    async with running(config(tmp_path, service("noexec", (str(script),)))) as sup:
        await wait_for(lambda: sup.status("noexec").state == "fatal", what="fatal")
        assert "permission denied" in sup.status("noexec").reason and str(script) in sup.status("noexec").reason


@POSIX_ONLY
async def test_child_starts_with_default_sigint_even_if_ours_is_ignored(tmp_path: Path) -> None:
    import signal

    code = "import signal; print(signal.getsignal(signal.SIGINT), flush=True)"
    svc = service("probe", (os.sys.executable, "-c", code), policy="never", start_period_s=0)
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)  # what a shell's `&` does to a background job
    try:
        async with running(config(tmp_path, svc)) as sup:
            await wait_for(lambda: sup.status("probe").state == "exited", what="exited")
    finally:
        signal.signal(signal.SIGINT, previous)
    # Python installs its KeyboardInterrupt handler only when SIGINT arrives at its default disposition.
    assert "default_int_handler" in (tmp_path / "logs" / "probe-stdout.log").read_text()
