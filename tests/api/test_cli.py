"""The CLI against a live supervisor: `orchestrator run` as a real process, driven by `orchestrator status`,
`stop`, `start`, `restart`, `ignite`, `logs`, `events`; then SIGTERM, and nothing left behind."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from orchestrator.api.token import token_path
from tests.support.helpers import CHILDREN, free_port, read_file

PY = sys.executable
POSIX_ONLY = pytest.mark.skipif(sys.platform == "win32", reason="SIGTERM to the supervisor")


def write_config(tmp: Path, port: int) -> Path:
    def svc(name: str, script: str, *args: str, extra: str = "") -> str:
        argv = ", ".join(f"'{a}'" for a in (PY, "-u", str(CHILDREN / script), *args))
        return f"  {name}:\n    command: [{argv}]\n    start_period: 0.2s\n{extra}"

    cfg = tmp / "supervisor.yaml"
    cfg.write_text(
        f"api: {{listen: 127.0.0.1:{port}}}\nlogs: {{dir: ./logs}}\nstate_dir: ./state\nservices:\n"
        + svc("web", "ready_then_sleep.py")
        + svc("counter", "count_lines.py", "300", extra="    restart: {policy: never}\n")
        + svc("spare", "ready_then_sleep.py", extra="    autostart: false\n")
    )
    return cfg


def cli(cfg: Path, *args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run([PY, "-m", "orchestrator", *args, "-c", str(cfg)], capture_output=True, text=True,
                          timeout=timeout)


@pytest.fixture
def supervisor(tmp_path: Path) -> Iterator[tuple[Path, subprocess.Popen[bytes]]]:
    cfg = write_config(tmp_path, free_port())
    out = open(tmp_path / "supervisor.out", "wb")  # noqa: SIM115 - the Popen keeps its own copy
    proc = subprocess.Popen([PY, "-m", "orchestrator", "run", "-c", str(cfg)], stdout=out, stderr=subprocess.STDOUT,
                            start_new_session=True)
    out.close()
    try:
        wait_api(tmp_path, proc)
        yield cfg, proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)


def wait_api(tmp: Path, proc: subprocess.Popen[bytes], timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while "api: http://" not in read_file(tmp / "supervisor.out"):
        assert proc.poll() is None, read_file(tmp / "supervisor.out")
        assert time.monotonic() < deadline, "the supervisor did not print its API address"
        time.sleep(0.02)


def wait_until(check: object, what: str, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def states(cfg: Path) -> dict[str, dict[str, object]]:
    out = cli(cfg, "status", "--json")
    assert out.returncode == 0, out.stderr
    return {s["name"]: s for s in json.loads(out.stdout)["services"]}


@POSIX_ONLY
def test_cli_drives_a_live_supervisor_and_sigterm_ends_it_cleanly(
    supervisor: tuple[Path, subprocess.Popen[bytes]], tmp_path: Path
) -> None:
    cfg, proc = supervisor
    assert f"api: {_url(cfg)}\n" in read_file(tmp_path / "supervisor.out")
    wait_until(lambda: states(cfg)["web"]["state"] == "running", "web running")
    wait_until(lambda: states(cfg)["counter"]["state"] == "exited", "counter done")

    table = cli(cfg, "status")
    assert table.returncode == 0 and table.stdout.splitlines()[0].split()[:3] == ["NAME", "STATE", "HEALTH"]
    rows = {line.split()[0]: line.split() for line in table.stdout.splitlines()[1:]}
    assert rows["web"][1] == "running" and rows["spare"][1] == "stopped" and rows["counter"][1] == "exited"

    web_pid = states(cfg)["web"]["pid"]
    assert isinstance(web_pid, int)
    stop = cli(cfg, "stop", "web")
    assert stop.returncode == 0 and stop.stdout.startswith("web: stopped"), stop.stdout + stop.stderr
    assert not psutil.pid_exists(web_pid) or psutil.Process(web_pid).status() == psutil.STATUS_ZOMBIE
    start = cli(cfg, "start", "web", "spare")
    assert start.returncode == 0 and start.stdout.count("(pid ") == 2, start.stdout + start.stderr
    restart = cli(cfg, "restart", "spare")
    assert restart.returncode == 0 and restart.stdout.startswith("spare: ")

    cli(cfg, "stop", "spare")
    ignite = cli(cfg, "ignite")
    assert ignite.returncode == 0 and "spare" in ignite.stdout
    wait_until(lambda: states(cfg)["spare"]["state"] == "running", "spare ignited")

    logs = cli(cfg, "logs", "counter", "-n", "3")
    assert logs.returncode == 0 and [line[:9] for line in logs.stdout.splitlines()] == [
        "000000297", "000000298", "000000299"]
    events = cli(cfg, "events")
    assert events.returncode == 0 and "web  running → stopping: stopped by hand" in events.stdout

    kids = psutil.Process(proc.pid).children(recursive=True)
    assert len(kids) == 2  # web and spare
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 0
    assert [k.pid for k in kids if _alive(k)] == []
    gone = cli(cfg, "status")
    assert gone.returncode == 1
    assert gone.stderr.strip() == (f"error: no supervisor answering at {_url(cfg)} "
                                   "(is `orchestrator run` running?)")


@POSIX_ONLY
def test_cli_errors_are_one_line_and_exit_1(supervisor: tuple[Path, subprocess.Popen[bytes]], tmp_path: Path) -> None:
    cfg, _ = supervisor
    wait_until(lambda: states(cfg)["web"]["state"] == "running", "web running")
    pid = states(cfg)["web"]["pid"]
    typo = cli(cfg, "stop", "web", "wbe")
    assert typo.returncode == 1 and typo.stdout == ""
    assert typo.stderr == "error: no service named 'wbe'; known: web, counter, spare\n"
    assert states(cfg)["web"]["pid"] == pid  # all or nothing: web was not stopped for the typo
    bad = cli(cfg, "logs", "web", "-n", "20000")
    assert bad.returncode == 1
    assert bad.stderr == "error: lines: expected a whole number from 0 to 10000, got '20000'\n"
    token_path(tmp_path / "state").write_text("not-the-token\n")  # the supervisor keeps the one it read
    refused = cli(cfg, "stop", "web")
    assert refused.returncode == 1 and len(refused.stderr.splitlines()) == 1
    assert "wrong token" in refused.stderr and str(token_path(tmp_path / "state")) in refused.stderr
    assert states(cfg)["web"]["pid"] == pid


@POSIX_ONLY
def test_logs_follow_prints_lines_as_they_come(supervisor: tuple[Path, subprocess.Popen[bytes]]) -> None:
    cfg, _ = supervisor
    wait_until(lambda: states(cfg)["web"]["state"] == "running", "web running")
    with subprocess.Popen([PY, "-m", "orchestrator", "logs", "web", "-f", "-c", str(cfg)],
                          stdout=subprocess.PIPE, text=True) as follower:
        try:
            assert follower.stdout is not None
            assert follower.stdout.readline() == "ready\n"
            cli(cfg, "restart", "web")  # the old child says goodbye, the new one says ready: followed live
            assert follower.stdout.readline() == "got signal 15\n"
            assert follower.stdout.readline() == "ready\n"
        finally:
            follower.send_signal(signal.SIGINT)
            assert follower.wait(timeout=10) == 130


def _url(cfg: Path) -> str:
    port = cfg.read_text().split("127.0.0.1:")[1].split("}")[0]
    return f"http://127.0.0.1:{port}"


def _alive(proc: psutil.Process) -> bool:
    try:
        return proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def test_cli_without_a_supervisor_says_so(tmp_path: Path) -> None:
    cfg = write_config(tmp_path, free_port())
    for args in (["status"], ["stop", "web"], ["logs", "web", "-f"], ["events"], ["ignite"]):
        out = cli(cfg, *args)
        assert out.returncode == 1, args
        assert out.stderr == f"error: no supervisor answering at {_url(cfg)} (is `orchestrator run` running?)\n"
    with httpx.Client(trust_env=False) as client, pytest.raises(httpx.ConnectError):
        client.get(_url(cfg) + "/api/health")


def _requests(cfg: Path, tmp_path: Path) -> dict[str, float]:
    """The API's own request counter by route (all methods and statuses summed), from /metrics."""
    token = token_path(tmp_path / "state").read_text().strip()
    text = httpx.get(f"{_url(cfg)}/api/metrics", headers={"Authorization": f"Bearer {token}"}).text
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("orchestrator_http_requests_total{"):
            route = line.split('route="', 1)[1].split('"', 1)[0]
            out[route] = out.get(route, 0.0) + float(line.rsplit(" ", 1)[1])
    return out


@POSIX_ONLY
def test_stop_of_one_service_is_one_request(supervisor: tuple[Path, subprocess.Popen[bytes]], tmp_path: Path) -> None:
    """Issue 16: `stop NAME` is the POST alone (it was a GET /api/status first); a typo still names the
    services in the file's order (the 404 then asks for them)."""
    cfg, _ = supervisor
    wait_until(lambda: states(cfg)["web"]["state"] == "running", "web running")
    before = _requests(cfg, tmp_path)
    stop = cli(cfg, "stop", "web")
    assert stop.returncode == 0 and stop.stdout.startswith("web: stopped"), stop.stdout + stop.stderr
    after = _requests(cfg, tmp_path)
    grew = {route: after[route] - before.get(route, 0.0) for route in after if after[route] != before.get(route)}
    assert grew == {"/api/system/{name}/stop": 1.0, "/api/metrics": 1.0}  # the stop, and the first metrics read
    typo = cli(cfg, "stop", "wbe")
    assert typo.returncode == 1 and typo.stdout == ""
    assert typo.stderr == "error: no service named 'wbe'; known: web, counter, spare\n"
