"""What a process imports depends on what it does (issue 16: idle RSS and the CLI's start).

`orchestrator run` imports httpx (with http.cookiejar and idna, about 2 MiB) only when a health probe
or ComfyUI needs the shared client; `orchestrator status` imports no YAML parser, no http.client and
no dataclasses for a plain config. Checked in real processes: the real CLI, run through runpy with an
atexit hook that writes `sys.modules` to a file.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from tests.support.helpers import CHILDREN, free_port

PY = sys.executable
SCRIPT = """
import atexit, json, runpy, sys
out = sys.argv.pop(1)
atexit.register(lambda: open(out, "w").write(json.dumps(sorted(sys.modules))))
sys.argv[0] = "orchestrator"
runpy.run_module("orchestrator", run_name="__main__", alter_sys=True)
"""
# For `run`, which a test ends from outside: on Windows that is TerminateProcess, and no atexit hook
# runs. So a thread writes {"at": time, "modules": [...]} every 50 ms (list() of a dict is atomic).
RUN_SCRIPT = """
import json, os, runpy, sys, threading, time
out = sys.argv.pop(1)
def dump():
    while True:
        text = json.dumps({"at": time.time(), "modules": sorted(list(sys.modules))})
        with open(out + ".tmp", "w") as f:
            f.write(text)
        os.replace(out + ".tmp", out)
        time.sleep(0.05)
threading.Thread(target=dump, daemon=True).start()
sys.argv[0] = "orchestrator"
runpy.run_module("orchestrator", run_name="__main__", alter_sys=True)
"""


def _config(tmp: Path, port: int, health: str = "") -> Path:
    child = ", ".join(f"'{a}'" for a in (PY, "-u", str(CHILDREN / "ready_then_sleep.py")))
    cfg = tmp / "supervisor.yaml"
    cfg.write_text(f"api: {{listen: '127.0.0.1:{port}'}}\nlogs: {{dir: ./logs}}\nstate_dir: ./state\nservices:\n"
                   f"  web: {{command: [{child}]{health}}}\n")
    return cfg


def _modules(out: Path, *args: str, cwd: Path) -> set[str]:
    subprocess.run([PY, "-c", SCRIPT, str(out), *args], cwd=cwd, check=True, capture_output=True, timeout=60)
    return set(json.loads(out.read_text()))


def _run_until(tmp: Path, cfg: Path, done: str) -> set[str]:
    """`orchestrator run` until `orchestrator status` prints `done`; then SIGTERM; its sys.modules."""
    out = tmp / "run-modules.json"
    with subprocess.Popen([PY, "-c", RUN_SCRIPT, str(out), "run", "-c", str(cfg)], cwd=tmp,
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) as proc:
        try:
            deadline = time.monotonic() + 40
            while done not in subprocess.run([PY, "-m", "orchestrator", "status", "-c", str(cfg)], cwd=tmp,
                                             capture_output=True, text=True, timeout=30).stdout:
                assert time.monotonic() < deadline, f"never saw {done!r} in status"
                time.sleep(0.1)
            seen_at = time.time()
            while True:  # a dump written after status said `done`
                dump: dict[str, Any] = json.loads(out.read_text()) if out.exists() else {"at": 0}
                if dump["at"] > seen_at:
                    break
                assert time.monotonic() < deadline + 10, "the run stopped writing its module list"
                time.sleep(0.05)
        finally:
            proc.send_signal(signal.SIGTERM)  # Windows: TerminateProcess
            code = proc.wait(timeout=30)
        if sys.platform != "win32":
            assert code == 0  # a graceful stop: nothing above broke the run
    return set(dump["modules"])


def test_run_without_probes_or_comfy_never_imports_httpx(tmp_path: Path) -> None:
    modules = _run_until(tmp_path, _config(tmp_path, free_port()), "running")
    assert "orchestrator.app" in modules  # it did run
    assert not {m for m in modules if m == "httpx" or m.startswith("httpx.")}
    assert "http.cookiejar" not in modules
    assert "difflib" not in modules  # only a typo in the config needs it


def test_run_with_a_probe_imports_httpx(tmp_path: Path) -> None:
    """The other side: the probe needs the client, so the check above is not vacuous."""
    port = free_port()
    url = f"http://127.0.0.1:{free_port()}/health"  # nothing listens: the probe fails at once
    health = f", health: {{url: '{url}', every: 100ms, timeout: 1s, grace: 0s, failures: 1}}"
    modules = _run_until(tmp_path, _config(tmp_path, port, health), "unhealthy")
    assert "httpx" in modules


def test_status_imports_no_yaml_http_client_or_dataclasses(tmp_path: Path) -> None:
    cfg = _config(tmp_path, free_port())
    with subprocess.Popen([PY, "-m", "orchestrator", "run", "-c", str(cfg)], cwd=tmp_path,
                          stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True) as sup:
        try:
            assert sup.stdout is not None
            while not sup.stdout.readline().startswith("api: "):
                assert sup.poll() is None
            modules = _modules(tmp_path / "status-modules.json", "status", "-c", str(cfg), cwd=tmp_path)
        finally:
            sup.send_signal(signal.SIGTERM)
            sup.wait(timeout=30)
    assert "orchestrator.cli.client" in modules  # it did talk to the supervisor
    assert not modules & {"yaml", "http.client", "email", "dataclasses", "orchestrator.config.document"}
