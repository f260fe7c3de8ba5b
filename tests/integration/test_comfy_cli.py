"""The whole program with ComfyUI, as in production: `orchestrator run` on a YAML file with `comfy:`, the
stand-in ComfyUI as its child, and `orchestrator restart comfyui --drain` waiting for the queue."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.support.helpers import CHILDREN, free_port, read_file

PY = sys.executable
pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="SIGTERM ends the supervisor")


def write_config(tmp: Path, api_port: int, comfy_port: int) -> Path:
    argv = ", ".join(f"'{a}'" for a in (PY, "-u", str(CHILDREN / "fake_comfy.py"), str(tmp / "comfy.port"),
                                         "--port", str(comfy_port)))
    cfg = tmp / "supervisor.yaml"
    cfg.write_text(
        f"api: {{listen: 127.0.0.1:{api_port}}}\nlogs: {{dir: ./logs}}\nstate_dir: ./state\nservices:\n"
        f"  comfyui:\n    command: [{argv}]\n    start_period: 0.2s\n"
        f"    health: {{every: 0.2s, timeout: 1s}}\n"
        f"    comfy: {{url: 'http://127.0.0.1:{comfy_port}', drain_timeout: 30s}}\n"
    )
    return cfg


def cli(cfg: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([PY, "-m", "orchestrator", *args, "-c", str(cfg)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def status(cfg: Path) -> dict[str, object]:
    out, _ = cli(cfg, "status", "--json").communicate(timeout=30)
    services: list[dict[str, object]] = json.loads(out)["services"]
    return services[0]


def wait_until(check: object, what: str, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def control(port: int, **cmd: object) -> None:
    httpx.post(f"http://127.0.0.1:{port}/_control", json=cmd, timeout=5, trust_env=False).raise_for_status()


def test_restart_with_drain_from_the_cli_waits_for_the_queue(tmp_path: Path) -> None:
    comfy_port = free_port()
    cfg = write_config(tmp_path, free_port(), comfy_port)
    out = open(tmp_path / "supervisor.out", "wb")  # noqa: SIM115 - the Popen keeps its own copy
    sup = subprocess.Popen([PY, "-m", "orchestrator", "run", "-c", str(cfg)], stdout=out, stderr=subprocess.STDOUT,
                           start_new_session=True)
    out.close()
    try:
        wait_until(lambda: "api: http://" in read_file(tmp_path / "supervisor.out"), "the API")
        wait_until(lambda: status(cfg)["health"] == "healthy", "ComfyUI healthy")
        old = status(cfg)["pid"]
        control(comfy_port, queue={"running": 1, "pending": 1})
        restart = cli(cfg, "restart", "comfyui", "--drain")
        wait_until(lambda: status(cfg)["state"] == "draining", "draining")
        assert restart.poll() is None  # the command waits for the drain
        control(comfy_port, queue={"running": 0, "pending": 0})
        stdout, stderr = restart.communicate(timeout=30)
        assert restart.returncode == 0, stderr
        assert "comfyui" in stdout
        wait_until(lambda: status(cfg)["pid"] not in (None, old), "a new ComfyUI")
        marker = tmp_path / "state" / "comfyui-session"
        assert marker.parent.is_dir() and not Path(f"{marker}.reboot").exists()
    finally:
        if sup.poll() is None:
            sup.send_signal(signal.SIGTERM)
        sup.wait(timeout=30)
    log = read_file(tmp_path / "logs" / "orchestrator.log")
    assert "queue empty after" in log and "restarted by hand after drain" in log
