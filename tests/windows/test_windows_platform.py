"""Windows only (skipped elsewhere; run by the GitHub workflow on windows-latest): Job Objects, CTRL_BREAK,
batch files, and Ctrl+Break to a real `python -m orchestrator run`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import anyio
import psutil
import pytest

from tests.support.helpers import CHILDREN, child, config, read_file, service, supervising, wait_for
from tests.support.wine import ALLOC_CONSOLE, CTRL_BREAK

pytestmark = [
    pytest.mark.skipif(sys.platform != "win32", reason="needs Windows"),
    pytest.mark.windows,
    pytest.mark.anyio,
]


def batch_file(tmp: Path, name: str, *lines: str) -> Path:
    path = tmp / name
    path.write_text("@echo off\r\n" + "\r\n".join(lines) + "\r\n", encoding="ascii")
    return path


def quoted(argv: tuple[str, ...]) -> str:
    return subprocess.list2cmdline(argv)


async def read_all(source: object, timeout: float = 15.0) -> bytes:
    out = b""
    with anyio.fail_after(timeout):
        while data := await source.read(1 << 16):  # type: ignore[attr-defined]
            out += data
    return out


def gone(pid: int) -> bool:
    try:
        return not psutil.Process(pid).is_running()
    except psutil.NoSuchProcess:
        return True


@pytest.mark.wine_lacks(*CTRL_BREAK)
async def test_stop_ends_a_cmd_python_tree_that_ignores_ctrl_break_through_the_job(tmp_path: Path) -> None:
    pidfile = tmp_path / "grandchild.pid"
    bat = batch_file(tmp_path, "tree.bat", quoted(child("ignore_break_tree.py", pidfile)))
    svc = service("tree", (str(bat),), stop_timeout_s=1.0, cwd=str(tmp_path))
    async with supervising(config(tmp_path, svc)) as sup:
        await wait_for(pidfile.exists, 20, "the grandchild's pid file")
        grandchild = int(pidfile.read_text())
        runner = sup.runner("tree")
        assert runner.child is not None
        pids = runner.child.job.pids()  # type: ignore[attr-defined]
        assert runner.child.pid in pids and grandchild in pids  # cmd.exe, python, python: all in the job
        t0 = time.monotonic()
        await sup.stop("tree")
        took = time.monotonic() - t0
        assert 0.9 <= took < 10, took  # CTRL_BREAK was ignored: the job ended it at stop.timeout
        await wait_for(lambda: gone(grandchild), 5, "the grandchild to be gone")


async def test_killing_the_supervisor_kills_the_whole_tree(tmp_path: Path) -> None:
    pidfile = tmp_path / "grandchild.pid"
    bat = batch_file(tmp_path, "tree.bat", quoted(child("ignore_break_tree.py", pidfile)))
    cfg = tmp_path / "supervisor.yaml"
    cfg.write_text("logs: {dir: ./logs}\nstate_dir: ./state\n"
                   f"services:\n  tree:\n    command: [{json.dumps(str(bat))}]\n")
    with (tmp_path / "console.txt").open("wb") as out:
        sup = subprocess.Popen([sys.executable, "-m", "orchestrator", "run", "-c", str(cfg)],
                               stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        await wait_for(pidfile.exists, 30, "the grandchild's pid file")
        grandchild = int(pidfile.read_text())
        tree = [p.pid for p in psutil.Process(sup.pid).children(recursive=True)]
        sup.kill()  # TerminateProcess: no cleanup of ours runs; only KILL_ON_JOB_CLOSE can act
        sup.wait()
        await wait_for(lambda: gone(grandchild) and all(gone(p) for p in tree), 10,
                       f"every process of the tree to be gone: {tree}, {grandchild}")
    finally:
        if sup.poll() is None:
            sup.kill()


@pytest.mark.wine_lacks(*CTRL_BREAK)
async def test_ctrl_break_reaches_a_python_child(tmp_path: Path) -> None:
    from orchestrator.platform.windows import WindowsPlatform

    platform = WindowsPlatform()
    c = await platform.spawn(child("on_break.py"), cwd=str(tmp_path), env=os.environ)
    with anyio.fail_after(15):
        first = await c.stdout.read(100)
    assert first.startswith(b"ready")
    platform.signal_tree(c, "SIGTERM")
    with anyio.fail_after(15):
        rc = await c.wait()
    assert rc == 0
    assert b"got SIGBREAK" in await read_all(c.stdout)
    assert not platform.tree_alive(c)


async def test_a_batch_file_ending_in_pause_does_not_hang(tmp_path: Path) -> None:
    from orchestrator.platform.windows import WindowsPlatform

    bat = batch_file(tmp_path, "run with space.bat", "echo hello %1", "pause")
    platform = WindowsPlatform()
    c = await platform.spawn([str(bat), "a&b"], cwd=str(tmp_path), env=os.environ)
    output = await read_all(c.stdout)
    with anyio.fail_after(15):
        assert await c.wait() == 0
    assert b'hello "a&b"' in output  # the argument arrived whole and quoted, `&` not run as a command
    assert b"Press any key" in output  # pause ran, read the null device and went on


@pytest.mark.wine_lacks(*CTRL_BREAK)
async def test_ctrl_break_to_a_batch_file_does_not_wait_on_its_prompt(tmp_path: Path) -> None:
    """cmd.exe asks "Terminate batch job (Y/N)?" after a Ctrl+Break; it reads the null device and ends."""
    from orchestrator.platform.windows import WindowsPlatform

    bat = batch_file(tmp_path, "comfy.bat", quoted(child("on_break.py")), "echo after", "pause")
    platform = WindowsPlatform()
    c = await platform.spawn([str(bat)], cwd=str(tmp_path), env=os.environ)
    with anyio.fail_after(15):
        assert (await c.stdout.read(100)).startswith(b"ready")
    platform.signal_tree(c, "SIGTERM")
    output = await read_all(c.stdout)
    with anyio.fail_after(15):
        await c.wait()
    assert b"got SIGBREAK" in output
    await wait_for(lambda: not platform.tree_alive(c), 5, "the batch tree to end")


@pytest.mark.wine_lacks(*ALLOC_CONSOLE)
async def test_ctrl_break_to_the_supervisor_is_a_graceful_shutdown(tmp_path: Path) -> None:
    from orchestrator.platform import winjob

    winjob.ensure_console()  # the event travels through a console we share with the supervisor
    cfg = tmp_path / "supervisor.yaml"
    script = json.dumps(str(CHILDREN / "on_break.py"))
    cfg.write_text(f"logs: {{dir: ./logs}}\nstate_dir: ./state\n"
                   f"services:\n  svc:\n    command: [{json.dumps(sys.executable)}, -u, {script}]\n")
    with (tmp_path / "console.txt").open("wb") as out:
        sup = subprocess.Popen([sys.executable, "-m", "orchestrator", "run", "-c", str(cfg)],
                               stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                               creationflags=subprocess.CREATE_NEW_PROCESS_GROUP)
    try:
        log = tmp_path / "logs" / "svc-stdout.log"
        await wait_for(lambda: "ready" in read_file(log), 30, "the service to start")
        os.kill(sup.pid, __import__("signal").CTRL_BREAK_EVENT)
        await wait_for(lambda: sup.poll() is not None, 30, "the supervisor to exit")
        assert sup.returncode == 0, read_file(tmp_path / "console.txt")
        assert "got SIGBREAK" in read_file(log)  # the service was stopped by us, gracefully
        assert "shutdown_requested" in read_file(tmp_path / "console.txt")
    finally:
        if sup.poll() is None:
            sup.kill()
