"""Status and control from the CLI against a live `orchestrator run`: colours on a terminal only,
`-` for a service without a health check, `all` and several names, `restart --drain` refused on a
service that is not ComfyUI, reasons that say who started a service and which condition a start
waits for, events once each as `from → to`, and `reload` exiting 0 when a service that was already
fatal stays fatal."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

if sys.platform != "win32":  # pty needs termios: POSIX only, like every test here
    import pty

from tests.support.helpers import CHILDREN, POSIX_ONLY, free_port, read_file
from tests.support.terminal import output_on_a_terminal

PY = sys.executable
pytestmark = POSIX_ONLY  # SIGTERM to the supervisor, a pty for the terminal


def svc(name: str, script: str, *args: object, extra: str = "", period: str = "0.2s") -> str:
    argv = ", ".join(f"'{a}'" for a in (PY, "-u", str(CHILDREN / script), *args))
    return f"  {name}:\n    command: [{argv}]\n    start_period: {period}\n{extra}"


def services(hold: int, bad_period: str = "0.2s") -> str:
    """web (no probe); gate (a probe that never passes: nothing listens on `hold`, and its grace
    outlasts the test, so its health stays unknown); late (waits for
    gate to be healthy); bad (exits at once, no budget: fatal)."""
    return (svc("web", "ready_then_sleep.py")
            + svc("gate", "ready_then_sleep.py",
                  extra=f"    health: {{url: 'http://127.0.0.1:{hold}/', every: 0.2s, grace: 10m, action: none}}\n")
            + svc("late", "ready_then_sleep.py", extra="    autostart: false\n    depends_on: {gate: healthy}\n")
            + svc("after", "ready_then_sleep.py", extra="    autostart: false\n    depends_on: [web]\n")
            + svc("bad", "exit_with.py", 3, extra="    restart: {policy: on-failure, attempts: 0}\n",
                  period=bad_period))


class Live:
    def __init__(self, tmp: Path) -> None:
        self.hold = free_port()
        self.cfg = tmp / "supervisor.yaml"
        self.write()
        with open(tmp / "supervisor.out", "wb") as out:
            self.proc = subprocess.Popen([PY, "-m", "orchestrator", "run", "-c", str(self.cfg)], stdout=out,
                                         stderr=subprocess.STDOUT, start_new_session=True)
        self.out = tmp / "supervisor.out"
        deadline = time.monotonic() + 20
        while "api: http://" not in read_file(self.out):
            assert self.proc.poll() is None and time.monotonic() < deadline, read_file(self.out)
            time.sleep(0.02)
        self.url = read_file(self.out).split("api: ", 1)[1].split("\n", 1)[0]

    def write(self, bad_period: str = "0.2s") -> None:
        self.cfg.write_text(f"api: {{listen: 127.0.0.1:0}}\nlogs: {{dir: ./logs}}\nstate_dir: ./state\n"
                            f"services:\n{services(self.hold, bad_period)}")

    def cli(self, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        environ = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "ORCHESTRATOR_URL")}
        return subprocess.run([PY, "-m", "orchestrator", *args, "-c", str(self.cfg)], capture_output=True,
                              text=True, timeout=60, env={**environ, **(env or {})})

    def states(self) -> dict[str, dict[str, object]]:
        out = self.cli("status", "--json")
        assert out.returncode == 0, out.stderr
        return {s["name"]: s for s in json.loads(out.stdout)["services"]}

    def wait(self, check: object, what: str, timeout: float = 15) -> None:
        deadline = time.monotonic() + timeout
        while not check():  # type: ignore[operator]
            assert time.monotonic() < deadline, f"timed out waiting for {what}"
            time.sleep(0.05)


@pytest.fixture
def live(tmp_path: Path) -> Iterator[Live]:
    sup = Live(tmp_path)
    try:
        sup.wait(lambda: sup.states()["web"]["state"] == "running" and sup.states()["bad"]["state"] == "fatal",
                 "web running, bad fatal")
        yield sup
    finally:
        if sup.proc.poll() is None:
            sup.proc.send_signal(signal.SIGTERM)
        assert sup.proc.wait(timeout=30) == 0


def on_a_terminal(live: Live, *args: str, env: dict[str, str] | None = None) -> str:
    """The CLI's output when its stdout is a terminal (a pty), as a person would see it."""
    return output_on_a_terminal([PY, "-m", "orchestrator", *args, "-c", str(live.cfg)], env)


def test_status_colours_states_on_a_terminal_only_and_shows_no_probe_as_a_dash(live: Live) -> None:
    shown = on_a_terminal(live, "status")
    assert "\033[32mrunning" in shown and "\033[31mfatal" in shown
    assert "\033[" not in on_a_terminal(live, "status", env={"NO_COLOR": "1"})
    assert "\033[" not in on_a_terminal(live, "status", "--no-color")
    piped = live.cli("status")
    assert "\033[" not in piped.stdout
    rows = {line.split()[0]: line.split() for line in piped.stdout.splitlines()[1:] if line.strip()}
    assert rows["web"][2] == "-" and rows["gate"][2] == "unknown"


def test_stop_start_restart_all_and_several_names(live: Live) -> None:
    stop = live.cli("stop", "all")
    assert stop.returncode == 0, stop.stderr
    assert [line.split(":")[0] for line in stop.stdout.splitlines()] == ["bad", "after", "late", "gate", "web"]
    assert {s["state"] for s in live.states().values()} <= {"stopped", "fatal"}
    start = live.cli("start", "web", "after")
    assert start.returncode == 0, start.stderr
    assert start.stdout.splitlines()[1] == "after: stopped: waiting for web to be running (now starting)"
    live.wait(lambda: live.states()["after"]["state"] == "running", "after started once web runs")
    restart = live.cli("restart", "all")
    assert restart.returncode == 0 and len(restart.stdout.splitlines()) == 5, restart.stderr
    web = live.states()["web"]  # the new child's figures on the first read, not `-` for status.every
    assert web["processes"] == 1 and isinstance(web["rss_bytes"], int) and web["rss_bytes"] > 0


def test_restart_drain_of_a_service_that_is_not_comfyui_is_refused(live: Live) -> None:
    pid = live.states()["web"]["pid"]
    out = live.cli("restart", "--drain", "web")
    assert out.returncode == 1
    assert out.stderr == ("error: web has no queue to drain: --drain is for the service with `comfy:`; "
                          "restart it without --drain\n")
    token = (live.cfg.parent / "state" / "api-token").read_text().strip()
    answer = httpx.post(f"{live.url}/api/system/web/restart?drain=true", headers={"Authorization": f"Bearer {token}"},
                        trust_env=False)
    assert answer.status_code == 409 and "no queue to drain" in answer.json()["error"]
    assert live.states()["web"]["pid"] == pid


def test_reasons_say_who_started_and_what_a_start_waits_for(live: Live) -> None:
    waiting = live.cli("start", "late")
    assert waiting.returncode == 0
    assert waiting.stdout == "late: stopped: waiting for gate to be healthy (now health unknown)\n"
    direct = live.cli("start", "after")  # web is running: nothing to wait for, not even for an instant
    assert direct.returncode == 0 and direct.stdout.startswith("after: starting (pid ")
    live.cli("stop", "web")
    assert live.cli("ignite").returncode == 0
    events = live.cli("events").stdout
    assert "web  stopped \u2192 starting: started by ignite" in events
    assert "web  stopped \u2192 starting: started by hand" not in events


def test_events_print_each_change_once_as_from_to(live: Live) -> None:
    assert live.cli("restart", "web").returncode == 0
    live.wait(lambda: live.states()["web"]["state"] == "running", "web running again")
    lines = [line for line in live.cli("events").stdout.splitlines() if "  web  " in line]
    assert sum("restarted by hand" in line for line in lines) == 1, lines
    assert any(line.endswith("web  running \u2192 stopping \u2192 starting: restarted by hand") for line in lines)
    bad = [line for line in live.cli("events").stdout.splitlines() if "  bad  " in line]
    assert any("starting \u2192 fatal: exited with code 3" in line for line in bad), bad


def test_reload_exits_0_when_a_service_that_was_fatal_stays_fatal(live: Live) -> None:
    live.write(bad_period="0.3s")  # an update of the fatal service: applied, and it stays fatal
    out = live.cli("reload")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "bad: update" in out.stdout and "reload done" in out.stdout
    assert live.states()["bad"]["state"] == "fatal"


def test_status_watch_redraws_in_place(live: Live) -> None:
    leader, follower = pty.openpty()
    environ = {k: v for k, v in os.environ.items() if k != "NO_COLOR"}
    proc = subprocess.Popen([PY, "-m", "orchestrator", "status", "--watch", "-c", str(live.cfg)], stdout=follower,
                            stderr=subprocess.DEVNULL, env=environ)
    os.close(follower)
    seen = b""
    try:
        deadline = time.monotonic() + 30
        # Two whole frames: the first, and the redraw 2 s later, read up to its end (a read can stop mid-frame).
        while seen.count(b"\033[H") < 2 or not seen.rsplit(b"\033[H", 1)[1].rstrip().endswith(b"\033[J"):
            assert time.monotonic() < deadline and proc.poll() is None, seen
            seen += os.read(leader, 65536)
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=10) == 130
        os.close(leader)
    frames = seen.decode().split("\033[H")[1:]
    assert all("NAME" in frame and "web" in frame and frame.rstrip().endswith("\033[J") for frame in frames[:2])
    assert "\033[2J" not in seen.decode()  # never blanked whole: no flicker


def test_signal_reaches_the_process_group_through_the_api(live: Live) -> None:
    pid = live.states()["web"]["pid"]
    sent = live.cli("signal", "web", "int")
    assert sent.returncode == 0 and sent.stdout.startswith(f"web: running (pid {pid})"), sent.stderr
    log = live.cfg.parent / "logs" / "web-stdout.log"
    live.wait(lambda: "got signal 2" in read_file(log), "web got SIGINT")  # ready_then_sleep says so, exits 0
    assert f"web  signal_sent: SIGINT sent by hand to pid {pid}" in live.cli("events").stdout
    stopped = live.cli("signal", "late", "TERM")
    assert stopped.returncode == 1 and stopped.stderr == "error: late is stopped: no process to signal\n"
    bad = live.cli("signal", "web", "NOPE")
    assert bad.returncode == 1 and bad.stderr.startswith("error: signal: expected one of")
    answer = httpx.post(f"{live.url}/api/system/web/signal?signal=SIGTERM", trust_env=False)
    assert answer.status_code == 401  # a mutation: the token is needed
