"""`orchestrator reload` and `orchestrator check --diff` against a real `python -m orchestrator run`."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.integration.test_reload import svc, write_config
from tests.support.helpers import free_port, read_file

PY = sys.executable
pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="SIGTERM ends the supervisor")


def cli(cfg: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([PY, "-m", "orchestrator", *args, "-c", str(cfg)], capture_output=True, text=True,
                          timeout=60)


def pids(cfg: Path) -> dict[str, object]:
    out = cli(cfg, "status", "--json")
    assert out.returncode == 0, out.stderr
    return {s["name"]: s["pid"] for s in json.loads(out.stdout)["services"]}


def pids_over_http(url: str) -> dict[str, object]:  # when the file is broken: the CLI would stop at it
    services = httpx.get(f"{url}/api/status", timeout=30, trust_env=False).json()["services"]
    return {s["name"]: s["pid"] for s in services}


def wait_until(check: object, what: str, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_reload_and_check_diff_from_the_cli(tmp_path: Path) -> None:
    cfg, api = tmp_path / "supervisor.yaml", {"listen": f"127.0.0.1:{free_port()}"}
    write_config(cfg, {"a": svc("COLOR", env={"COLOR": "red"}), "b": svc()}, api=api)
    with open(tmp_path / "supervisor.out", "wb") as out:
        proc = subprocess.Popen([PY, "-m", "orchestrator", "run", "-c", str(cfg)], stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_until(lambda: "api: http://" in read_file(tmp_path / "supervisor.out"), "the API")
        wait_until(lambda: all(pids(cfg).values()), "both children")
        before = pids(cfg)
        write_config(cfg, {"a": svc("COLOR", env={"COLOR": "blue"}), "b": svc(), "c": svc()}, api=api)

        diff = cli(cfg, "check", "--diff")
        assert diff.returncode == 0, diff.stderr
        assert diff.stdout.splitlines()[2:] == [
            "  a: restart (env changed: COLOR)", "  b: keep", "  c: add",
            "dry run, nothing changed: 1 add, 1 restart, 1 keep"]
        assert pids(cfg) == before

        done = cli(cfg, "reload")
        assert done.returncode == 0, done.stderr
        after = pids(cfg)
        assert after["b"] == before["b"] and after["a"] != before["a"] and after["c"]
        lines = done.stdout.splitlines()
        assert lines[0] == f"  a: restart (env changed: COLOR) -> restarted (pid {before['a']} -> {after['a']})"
        assert lines[1] == "  b: keep" and lines[3] == "reload done: 1 add, 1 restart, 1 keep"
        assert lines[2] in (f"  c: add -> added, {state}, pid {after['c']}" for state in ("starting", "running"))
        assert "blue" not in done.stdout + read_file(tmp_path / "supervisor.out")

        text = write_config(cfg, {"a": svc(stop={"timeout": "forever"})}, api=api)
        line = next(i for i, t in enumerate(text.splitlines(), 1) if "forever" in t)
        bad = cli(cfg, "reload")
        assert bad.returncode == 1 and bad.stdout == ""
        assert bad.stderr.splitlines() == [  # the CLI reads only state_dir and api: the supervisor says it
            "error: invalid config, nothing changed",
            f"  {cfg}:{line}: services.a.stop.timeout: expected a duration like 15s, 500ms, 5m or 1h, got 'forever'"]
        assert pids_over_http(f"http://{api['listen']}") == after
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
        write_config(cfg, {"a": svc()}, api=api)
        gone = cli(cfg, "reload")
        assert gone.returncode == 1 and gone.stderr.startswith("error: no supervisor answering at http://127.0.0.1:")
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
