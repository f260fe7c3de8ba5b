"""Nothing escapes: a service's daemon (double fork, setsid, even closed fds) is gone after `stop`,
after SIGTERM to the supervisor, and after SIGKILL of the supervisor plus a new start (real CLI)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from tests.integration.test_cli_run import start_supervisor, write_config
from tests.support.helpers import CHILDREN, free_port, read_file

PY = sys.executable

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the subreaper and /proc environ")


def _daemon_service(tmp: Path, flag: str) -> Path:
    args = ", ".join(f"'{a}'" for a in (PY, "-u", CHILDREN / "double_fork.py", tmp / "daemon.pid", flag) if a)
    cfg = write_config(tmp, f"  d:\n    command: [{args}]\n    start_period: 0.2s\n    stop: {{timeout: 2s}}\n")
    cfg.write_text(cfg.read_text().replace("127.0.0.1:0", f"127.0.0.1:{free_port()}"))  # the CLI needs it
    return cfg


def _daemon(tmp: Path, timeout: float = 15) -> psutil.Process:
    pidfile = tmp / "daemon.pid"
    deadline = time.monotonic() + timeout
    while not read_file(pidfile):
        assert time.monotonic() < deadline, "the daemon never wrote its pid"
        time.sleep(0.02)
    return psutil.Process(int(pidfile.read_text()))


def _alive(proc: psutil.Process) -> bool:
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _ctl(cfg: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([PY, "-m", "orchestrator", *args, "-c", str(cfg)], capture_output=True, text=True,
                          timeout=60)


def _start(tmp: Path, cfg: Path) -> tuple[subprocess.Popen[bytes], psutil.Process]:
    log = tmp / "logs" / "d-stdout.log"
    with contextlib.suppress(FileNotFoundError):
        log.unlink()
    sup = start_supervisor(cfg)
    deadline = time.monotonic() + 15
    while "ready" not in read_file(log):  # the service prints it once its daemon wrote its pid
        assert sup.poll() is None and time.monotonic() < deadline, read_file(tmp / "supervisor.out")
        time.sleep(0.02)
    daemon = _daemon(tmp)
    service = [k.pid for k in psutil.Process(sup.pid).children() if k.pid != daemon.pid]
    # Out of the service's session and group (and, as subreaper, the supervisor's child, not the service's).
    assert all(os.getsid(daemon.pid) != os.getsid(pid) for pid in [sup.pid, *service])
    return sup, daemon


def _end(procs: list[subprocess.Popen[bytes]], daemons: list[psutil.Process]) -> None:
    for sup in procs:
        if sup.poll() is None:
            sup.send_signal(signal.SIGTERM)
            sup.wait(timeout=60)
    for d in daemons:  # only reached when the test already failed: leave the machine clean
        with contextlib.suppress(psutil.Error):
            d.kill()


FLAGS = pytest.mark.parametrize("flag", ["", "--close-fds"], ids=["setsid", "closed-fds-setsid-twice"])


@FLAGS
def test_stop_returns_with_the_daemon_gone(tmp_path: Path, flag: str) -> None:
    cfg = _daemon_service(tmp_path, flag)
    sup, daemon = _start(tmp_path, cfg)
    try:
        out = _ctl(cfg, "stop", "d")
        assert out.returncode == 0, out
        assert not _alive(daemon), "the daemon outlived the stop"  # at once: stop returned
    finally:
        _end([sup], [daemon])


@pytest.mark.parametrize("flag", ["", "--close-fds", "--clear-env"],
                         ids=["setsid", "closed-fds-setsid-twice", "cleared-environment"])
def test_sigterm_to_the_supervisor_leaves_no_daemon(tmp_path: Path, flag: str) -> None:
    # The cleared environment carries no marker: the subreaper adopted it, and shutdown kills what it adopted.
    cfg = _daemon_service(tmp_path, flag)
    sup, daemon = _start(tmp_path, cfg)
    try:
        sup.send_signal(signal.SIGTERM)
        assert sup.wait(timeout=60) == 0
        assert not _alive(daemon), "the daemon outlived the supervisor"
    finally:
        _end([sup], [daemon])


@FLAGS
def test_sigkill_of_the_supervisor_then_a_new_start_leaves_no_daemon_of_the_old_run(
    tmp_path: Path, flag: str
) -> None:
    cfg = _daemon_service(tmp_path, flag)
    first, old = _start(tmp_path, cfg)
    daemons, procs = [old], [first]
    try:
        first.kill()
        first.wait()
        assert _alive(old)  # nothing of ours ran: the daemon is an orphan of init now
        (tmp_path / "state" / "children.json").unlink()  # found whatever the record says (here: none)
        (tmp_path / "daemon.pid").unlink()
        second, new = _start(tmp_path, cfg)  # its start scan must find the old daemon by its marker
        procs.append(second)
        daemons.append(new)
        deadline = time.monotonic() + 10
        while _alive(old) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert not _alive(old), "the old run's daemon survived a new start"
        assert _alive(new)
    finally:
        _end(procs, daemons)


def test_each_restart_leaves_no_daemon_behind(tmp_path: Path) -> None:
    cfg = _daemon_service(tmp_path, "")
    sup, daemon = _start(tmp_path, cfg)
    daemons = [daemon]
    try:
        for _ in range(3):
            (tmp_path / "daemon.pid").unlink()
            out = _ctl(cfg, "restart", "d")
            assert out.returncode == 0, out
            daemons.append(_daemon(tmp_path))
        left = [d.pid for d in daemons[:-1] if _alive(d)]
        assert left == [], f"{len(left)} daemon(s) of earlier children still running"
    finally:
        _end([sup], daemons)


def test_a_daemon_that_ends_by_itself_leaves_no_zombie(tmp_path: Path) -> None:
    # As subreaper the supervisor is the daemon's parent: it must collect the exit status (ADOPTED_REAP_S).
    cfg = _daemon_service(tmp_path, "--exit-soon")
    sup, daemon = _start(tmp_path, cfg)
    try:
        deadline = time.monotonic() + 20
        while psutil.pid_exists(daemon.pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not psutil.pid_exists(daemon.pid), f"pid {daemon.pid} is still {daemon.status()}"
    finally:
        _end([sup], [daemon])
