"""The console of `orchestrator run`, captured: short `HH:MM:SS name  state (pid N)` lines, a restart
said once, `--log-format json` for a pipe, JSON lines in orchestrator.log either way, and `-v`
echoing the services' output as `name | line`."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.support.helpers import CHILDREN, POSIX_ONLY, read_file

PY = sys.executable
pytestmark = POSIX_ONLY  # SIGTERM to the supervisor


def run_and_capture(tmp: Path, *flags: str) -> tuple[str, str]:
    """Run a supervisor of `web` (prints ready) and `crash` (exits 1 at once, one restart), restart web
    by hand, stop it; the console's stdout and stderr."""
    argv = ", ".join(f"'{a}'" for a in (PY, "-u", str(CHILDREN / "ready_then_sleep.py")))
    crash = ", ".join(f"'{a}'" for a in (PY, "-u", str(CHILDREN / "exit_with.py"), 1))
    cfg = tmp / "supervisor.yaml"
    cfg.write_text("api: {listen: 127.0.0.1:0}\nlogs: {dir: ./logs}\nstate_dir: ./state\nservices:\n"
                   f"  web: {{command: [{argv}], start_period: 0.2s}}\n"
                   f"  crash: {{command: [{crash}], restart: {{policy: on-failure, attempts: 1, cooldown: 0s}}}}\n")
    out, err = tmp / "out", tmp / "err"
    with open(out, "wb") as o, open(err, "wb") as e:
        proc = subprocess.Popen([PY, "-m", "orchestrator", "run", *flags, "-c", str(cfg)], stdout=o, stderr=e)
    try:
        deadline = time.monotonic() + 20
        while "fatal" not in read_file(tmp / "logs" / "orchestrator.log") or "ready" not in read_file(
                tmp / "logs" / "web-stdout.log"):
            assert proc.poll() is None and time.monotonic() < deadline, read_file(err)
            time.sleep(0.05)
        restart = subprocess.run([PY, "-m", "orchestrator", "restart", "web", "-c", str(cfg)], capture_output=True,
                                 text=True, timeout=30)
        assert restart.returncode == 0, restart.stderr
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    return read_file(out), read_file(err)


def test_console_lines_are_short_and_say_each_thing_once(tmp_path: Path) -> None:
    out, err = run_and_capture(tmp_path)
    lines = err.splitlines()
    assert any(re.fullmatch(r"\d\d:\d\d:\d\d web   running \(pid \d+\)", line) for line in lines), err
    assert any(re.fullmatch(r"\d\d:\d\d:\d\d crash (backoff|starting): exited with code 1 during start period", line)
               for line in lines), err
    assert any(re.fullmatch(r"\d\d:\d\d:\d\d crash restart: \(attempt 1 of 1\)", line) for line in lines), err
    assert sum("restarted by hand" in line for line in lines) == 2  # stopping, then starting: no restart line
    assert max(len(line) for line in lines) < 120
    assert "dashboard: http://127.0.0.1:" in out and "in another terminal:" in out
    log = (tmp_path / "logs" / "orchestrator.log").read_text().splitlines()
    assert all(json.loads(line)["event"] for line in log)  # the file keeps JSON lines for machines
    assert " | " not in out  # no echo of the services' output without -v


def test_log_format_json_for_a_pipe(tmp_path: Path) -> None:
    _out, err = run_and_capture(tmp_path, "--log-format", "json")
    records = [json.loads(line) for line in err.splitlines()]
    assert any(r["event"] == "state_changed" and r["service"] == "web" and r["to_state"] == "running"
               for r in records)


def test_verbose_echoes_the_services_output(tmp_path: Path) -> None:
    out, _err = run_and_capture(tmp_path, "-v")
    assert "web   | ready\n" in out and "web   | got signal 15\n" in out
