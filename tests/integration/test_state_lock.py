"""One supervisor per state directory: a second `orchestrator run` stops at the lock, naming the
holder, and kills nothing; leftover reaping never touches the children of a live supervisor."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from tests.integration.test_cli_run import sleeper, start_supervisor, wait_children, write_config
from tests.support.helpers import CHILDREN, POSIX_ONLY, config, read_file, supervising, wait_for

PY = sys.executable

pytestmark = POSIX_ONLY  # the real CLI driven with SIGTERM/killpg; the lock itself is also Windows code


def _api_url(out: Path, timeout: float = 15) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = re.search(r"^api: (\S+)$", read_file(out), re.MULTILINE)
        if found:
            return found.group(1)
        time.sleep(0.05)
    raise AssertionError(f"no api line in {out}: {read_file(out)!r}")


def _second_config(tmp: Path, first: Path) -> Path:
    """Another file, in another folder, on another API port, but the same state directory."""
    other = tmp / "other"
    other.mkdir()
    text = first.read_text().replace("state_dir: ./state", f"state_dir: {tmp / 'state'}")
    cfg = other / "supervisor.yaml"
    cfg.write_text(text.replace("logs: {dir: ./logs}", f"logs: {{dir: {tmp / 'logs'}}}"))
    return cfg


@pytest.mark.parametrize("which", ["same config", "other config, other api port"])
def test_second_supervisor_on_a_locked_state_dir_exits_1_naming_the_holder_and_kills_nothing(
    tmp_path: Path, which: str
) -> None:
    cfg = write_config(tmp_path, sleeper("a") + sleeper("b"))
    first = start_supervisor(cfg)
    try:
        kids = wait_children(first, [tmp_path / "logs" / f"{n}-stdout.log" for n in "ab"])
        url = _api_url(tmp_path / "supervisor.out")
        second_cfg = cfg if which == "same config" else _second_config(tmp_path, cfg)
        started = time.monotonic()
        second = subprocess.run([PY, "-m", "orchestrator", "run", "-c", str(second_cfg)],
                                capture_output=True, text=True, timeout=30)
        took = time.monotonic() - started
        assert second.returncode == 1, second
        lines = second.stderr.strip().splitlines()
        assert len(lines) == 1, second.stderr
        assert lines[0].startswith(f"error: state directory {tmp_path / 'state'} is in use by orchestrator "
                                   f"pid {first.pid} (started "), lines[0]
        assert f"api {url})" in lines[0]
        assert second.stdout == ""  # not even the banner: it opened no log and started nothing
        assert took < 10, took  # at once (an interpreter start; the first one is not waited on)
        # The first supervisor's children are the same processes, untouched, and it never restarted them.
        assert first.poll() is None
        assert [k.pid for k in psutil.Process(first.pid).children()] == [k.pid for k in kids]
        for name in "ab":
            assert "got signal" not in (tmp_path / "logs" / f"{name}-stdout.log").read_text()
    finally:
        first.send_signal(signal.SIGTERM)
        assert first.wait(timeout=30) == 0


def test_the_lock_is_released_at_exit_and_the_file_names_the_holder(tmp_path: Path) -> None:
    cfg = write_config(tmp_path, sleeper("a"))
    for _ in range(2):  # the second run finds the lock file of the first, released
        proc = start_supervisor(cfg)
        try:
            wait_children(proc, [tmp_path / "logs" / "a-stdout.log"])
            url = _api_url(tmp_path / "supervisor.out")
            holder = json.loads((tmp_path / "state" / "supervisor.lock").read_text())
            assert holder["pid"] == proc.pid and holder["api"] == url
        finally:
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=30) == 0
        (tmp_path / "supervisor.out").unlink()
        (tmp_path / "logs" / "a-stdout.log").unlink()


@pytest.mark.anyio
@pytest.mark.parametrize("writer", ["alive", "gone"])
async def test_leftovers_are_reaped_only_when_the_supervisor_that_recorded_them_is_gone(
    tmp_path: Path, writer: str
) -> None:
    sleep = [PY, "-u", str(CHILDREN / "ready_then_sleep.py")]
    fake_supervisor = subprocess.Popen(sleep, stdout=subprocess.DEVNULL)
    leftover = subprocess.Popen(sleep, stdout=subprocess.DEVNULL, start_new_session=True)
    try:
        record = {
            "supervisor_pid": fake_supervisor.pid,
            "supervisor_started": psutil.Process(fake_supervisor.pid).create_time(),
            "run_id": "earlier",
            "children": {"a": {"pid": leftover.pid, "create_time": psutil.Process(leftover.pid).create_time()}},
        }
        if writer == "gone":
            fake_supervisor.kill()
            fake_supervisor.wait()
        (tmp_path / "state").mkdir()
        (tmp_path / "state" / "children.json").write_text(json.dumps(record))
        async with supervising(config(tmp_path)) as sup:
            kinds = [e.kind for e in sup.events.since()]
            if writer == "alive":
                assert leftover.poll() is None and "leftovers_kept" in kinds, kinds
            else:
                await wait_for(lambda: leftover.poll() is not None, 10, "the leftover killed")
                assert "orphan_killed" in kinds, kinds
    finally:
        for proc in (fake_supervisor, leftover):
            proc.kill()
            proc.wait()
