"""`orchestrator run` as a real process: signals, exit codes, and what a hard death leaves behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from tests.support.helpers import CHILDREN, POSIX_ONLY, read_file

PY = sys.executable

pytestmark = POSIX_ONLY  # SIGTERM, killpg and kill -9; tests/windows covers the Windows side


def write_config(tmp: Path, services: str, extra: str = "") -> Path:
    cfg = tmp / "supervisor.yaml"
    cfg.write_text(
        f"api: {{listen: 127.0.0.1:0}}\nlogs: {{dir: ./logs}}\nstate_dir: ./state\n{extra}services:\n{services}"
    )
    return cfg


def sleeper(name: str, *args: str) -> str:
    argv = ", ".join(f"'{a}'" for a in (PY, "-u", str(CHILDREN / "ready_then_sleep.py"), *args))
    return f"  {name}:\n    command: [{argv}]\n    start_period: 0.2s\n"


def start_supervisor(cfg: Path) -> subprocess.Popen[bytes]:
    with open(cfg.parent / "supervisor.out", "ab") as out:  # the Popen keeps its own copy of the fd
        return subprocess.Popen(
            [PY, "-m", "orchestrator", "run", "-c", str(cfg)],
            stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )


def wait_children(proc: subprocess.Popen[bytes], logs: list[Path], timeout: float = 15) -> list[psutil.Process]:
    """The supervisor's direct children, once each of these logs says `ready`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        kids = [k for k in psutil.Process(proc.pid).children() if _alive(k)]
        if len(kids) == len(logs) and all("ready" in read_file(log) for log in logs):
            return kids
        assert proc.poll() is None, (logs[0].parent.parent / "supervisor.out").read_text()
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {len(logs)} children of the supervisor")


def _alive(proc: psutil.Process) -> bool:
    try:
        return proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def test_check_reports_line_and_key_of_an_invalid_file_and_exits_1(tmp_path: Path) -> None:
    cfg = write_config(tmp_path, sleeper("a") + "    restart: {policy: sometimes}\n")
    out = subprocess.run([PY, "-m", "orchestrator", "check", "-c", str(cfg)], capture_output=True, text=True)
    assert out.returncode == 1
    assert f"{cfg}:" in out.stderr and "services.a.restart.policy" in out.stderr
    run = subprocess.run([PY, "-m", "orchestrator", "run", "-c", str(cfg)], capture_output=True, text=True)
    assert run.returncode == 1 and "services.a.restart.policy" in run.stderr


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_signal_stops_every_child_then_exits_0(tmp_path: Path, signum: int) -> None:
    cfg = write_config(tmp_path, sleeper("a") + sleeper("b"))
    proc = start_supervisor(cfg)
    try:
        kids = wait_children(proc, [tmp_path / "logs" / f"{n}-stdout.log" for n in "ab"])
        proc.send_signal(signum)
        assert proc.wait(timeout=20) == 0
        for kid in kids:
            assert not kid.is_running() or kid.status() == psutil.STATUS_ZOMBIE
        for name in ("a", "b"):  # each child got the graceful signal, not a kill
            assert "got signal 15" in (tmp_path / "logs" / f"{name}-stdout.log").read_text()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def test_kill_9_then_new_start_leaves_no_process_of_the_old_run(tmp_path: Path) -> None:
    pidfile = tmp_path / "grandchild.pid"
    script = CHILDREN / "spawn_grandchild.py"
    grand = f"  grand:\n    command: ['{PY}', '-u', '{script}', '{pidfile}', '--detach']\n    start_period: 0.2s\n"
    cfg = write_config(tmp_path, sleeper("a") + grand)
    first = start_supervisor(cfg)
    second = None
    try:
        wait_children(first, [tmp_path / "logs" / f"{n}-stdout.log" for n in ("a", "grand")])
        old = [psutil.Process(p.pid) for p in psutil.Process(first.pid).children(recursive=True)]
        old.append(psutil.Process(int(pidfile.read_text())))
        first.kill()  # SIGKILL: no cleanup of ours runs
        first.wait()
        pidfile.unlink()
        for log in (tmp_path / "logs").glob("*-stdout.log"):
            log.unlink()
        second = start_supervisor(cfg)
        wait_children(second, [tmp_path / "logs" / f"{n}-stdout.log" for n in ("a", "grand")])
        survivors = [p for p in old if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
        assert survivors == [], [p.cmdline() for p in survivors]
    finally:
        for proc in (first, second):
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                proc.wait(timeout=20)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the parent-death signal is Linux's")
def test_direct_children_die_with_a_hard_killed_supervisor(tmp_path: Path) -> None:
    proc = start_supervisor(write_config(tmp_path, sleeper("a") + sleeper("b")))
    kids = wait_children(proc, [tmp_path / "logs" / f"{n}-stdout.log" for n in "ab"])
    proc.kill()
    proc.wait()
    _gone, alive = psutil.wait_procs(kids, timeout=5)
    assert alive == [], [p.pid for p in alive]
