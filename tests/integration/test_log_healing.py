"""Logs that heal, as a real `orchestrator run`: the log directory deleted or blocked while running,
an unusable one at start, and the modes of log, state and token files."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from tests.support.helpers import CHILDREN, POSIX_ONLY, free_port, read_file

pytestmark = POSIX_ONLY  # file modes, and `orchestrator run` stopped with SIGTERM

PY = sys.executable


def write_config(tmp: Path, port: int) -> Path:
    ticker = ", ".join(f"'{a}'" for a in (PY, "-u", str(CHILDREN / "tick_lines.py"), 100000, 0.01, 10))
    cfg = tmp / "supervisor.yaml"
    cfg.write_text(f"api: {{listen: 127.0.0.1:{port}}}\nlogs: {{dir: ./logs, max_size: 0}}\nstate_dir: ./state\n"
                   f"services:\n  ticker: {{command: [{ticker}], start_period: 0.2s}}\n")
    return cfg


def until(predicate: object, what: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


@contextmanager
def supervisor(tmp: Path) -> Iterator[tuple[httpx.Client, subprocess.Popen[bytes]]]:
    port = free_port()
    cfg = write_config(tmp, port)
    with open(tmp / "supervisor.out", "wb") as out:
        proc = subprocess.Popen([PY, "-m", "orchestrator", "run", "-c", str(cfg)], stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True, cwd=tmp)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", trust_env=False, timeout=10) as client:
            def running() -> bool:
                assert proc.poll() is None, read_file(tmp / "supervisor.out")
                try:
                    return bool(client.get("/api/status").json()["services"][0]["state"] == "running")
                except httpx.TransportError:
                    return False

            until(running, "the ticker running")
            until(lambda: "line 000005" in read_file(tmp / "logs" / "ticker-stdout.log"), "ticker output")
            yield client, proc
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def events(client: httpx.Client) -> list[dict[str, object]]:
    return list(client.get("/api/events").json()["events"])


def test_a_deleted_log_directory_is_recreated_with_an_event(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    with supervisor(tmp_path) as (client, _):
        assert (logs / "orchestrator.log").exists()
        shutil.rmtree(logs)
        until(lambda: "line " in read_file(logs / "ticker-stdout.log"), "the ticker's log recreated")
        until(lambda: (logs / "orchestrator.log").exists(), "orchestrator.log recreated")
        reopened = [e for e in events(client) if e["kind"] == "log_reopened"]
        assert {e["service"] for e in reopened} >= {"ticker"}
        assert any("orchestrator.log" in str(e["message"]) for e in reopened)
        for path in (logs / "ticker-stdout.log", logs / "orchestrator.log"):
            assert stat.S_IMODE(path.stat().st_mode) == 0o640, path
        assert stat.S_IMODE((tmp_path / "state").stat().st_mode) == 0o700
        assert stat.S_IMODE((tmp_path / "state" / "api-token").stat().st_mode) == 0o600
    assert "Traceback" not in read_file(tmp_path / "supervisor.out")


def test_a_blocked_log_directory_is_one_event_and_counted_drops(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    with supervisor(tmp_path) as (client, _):
        shutil.rmtree(logs)
        logs.write_text("a file where the directory was\n")  # nothing can be created there now

        def failed() -> bool:
            return any(e["kind"] == "log_write_failed" and e["service"] == "ticker" for e in events(client))

        until(failed, "the ticker's write failure reported")
        dropped = client.get("/api/metrics").text
        until(lambda: client.get("/api/metrics").text != dropped, "more dropped bytes counted")
        kinds = [(e["kind"], e["service"]) for e in events(client)]
        assert kinds.count(("log_write_failed", "ticker")) == 1
        logs.unlink()
        until(lambda: "line " in read_file(logs / "ticker-stdout.log"), "the ticker's log back")
    out = read_file(tmp_path / "supervisor.out")
    assert "Logging error" not in out and "Traceback" not in out, out[-3000:]


def test_an_unusable_log_directory_refuses_the_start_before_any_child(tmp_path: Path) -> None:
    (tmp_path / "logs").write_text("not a directory\n")
    cfg = write_config(tmp_path, free_port())
    r = subprocess.run([PY, "-m", "orchestrator", "run", "-c", str(cfg)], capture_output=True, text=True,
                       timeout=60, cwd=tmp_path)
    assert r.returncode == 1
    errors = [line for line in r.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "cannot write to the log directory" in errors[0] and "(logs.dir)" in errors[0]
    assert str(tmp_path / "logs") in errors[0]
    assert "Traceback" not in r.stderr + r.stdout and "state_changed" not in r.stderr + r.stdout


def test_a_token_file_readable_by_others_is_fixed_with_a_warning(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    (state / "api-token").write_text("a-token-from-before\n")
    os.chmod(state / "api-token", 0o644)
    with supervisor(tmp_path) as (client, _):
        assert stat.S_IMODE((state / "api-token").stat().st_mode) == 0o600
        warned = [e for e in events(client) if e["kind"] == "token_file_permissions"]
        assert len(warned) == 1 and "0644" in str(warned[0]["message"])
