"""SIGHUP to a real `python -m orchestrator run` reloads its file: the edited service restarts, alone."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import anyio
import pytest

from tests.integration.test_reload import svc, write_config
from tests.support.helpers import read_file, wait_for

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.skipif(sys.platform == "win32", reason="SIGHUP is POSIX"),
]


def child_pids(state_dir: Path) -> dict[str, int]:
    try:
        data = json.loads((state_dir / "children.json").read_text())
    except (OSError, ValueError):
        return {}
    return {name: rec["pid"] for name, rec in data.get("children", {}).items()}


async def test_sighup_reloads_the_file(tmp_path: Path) -> None:
    path, state = tmp_path / "supervisor.yaml", tmp_path / "state"
    write_config(path, {"a": svc("COLOR", env={"COLOR": "red"}), "b": svc()}, api={"listen": "127.0.0.1:0"})
    proc = await anyio.open_process([sys.executable, "-m", "orchestrator", "run", "-c", str(path)],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        await wait_for(lambda: len(child_pids(state)) == 2, 15, "both children")
        before = child_pids(state)
        write_config(path, {"a": svc("COLOR", env={"COLOR": "green"}), "b": svc()}, api={"listen": "127.0.0.1:0"})
        proc.send_signal(signal.SIGHUP)
        await wait_for(lambda: child_pids(state).get("a") not in (None, before["a"]), 15, "a restarted")
        assert child_pids(state)["b"] == before["b"]
        await wait_for(lambda: "COLOR=green" in read_file(tmp_path / "logs" / "a-stdout.log"), what="new env")
        done = '"reload (SIGHUP) done: 1 restart, 1 keep"'
        await wait_for(lambda: done in read_file(tmp_path / "logs" / "orchestrator.log"), what="reload logged")
        own_log = read_file(tmp_path / "logs" / "orchestrator.log")
        assert "green" not in own_log and "red" not in own_log
    finally:
        proc.terminate()
        with anyio.fail_after(20):
            await proc.wait()
    assert proc.returncode == 0
