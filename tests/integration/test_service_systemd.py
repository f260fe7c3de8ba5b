"""`orchestrator service ...` on Linux: a systemd unit, checked by `systemd-analyze verify` (Debian's
systemd package), for the system manager and for --user; install/remove/status/start/stop against a
stand-in `systemctl` that records its arguments, with the unit written to a temporary --unit-dir."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from orchestrator.cli.main import main
from orchestrator.config.loader import load_config
from orchestrator.core.runner import KILL_WAIT_S, PIPE_DRAIN_S
from orchestrator.service import systemd
from orchestrator.service.nssm import SHUTDOWN_MARGIN_S

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="systemd is Linux's; Windows uses NSSM")
ANALYZE = shutil.which("systemd-analyze")
NEEDS_ANALYZE = pytest.mark.skipif(ANALYZE is None, reason="systemd-analyze not installed (apt install systemd)")

YAML = """\
logs: {dir: ./logs}
state_dir: ./state
services:
  comfyui:
    command: [python, main.py]
    stop: {timeout: 30s}
  panel:
    command: [node, server.js]
    depends_on: [comfyui]
    stop: {timeout: 7s}
"""

FAKE_SYSTEMCTL = """\
import json, os, sys
with open(os.environ["FAKE_LOG"], "a") as f:
    f.write(json.dumps(sys.argv[1:]) + "\\n")
"""


@pytest.fixture
def cfg(tmp_path: Path) -> Path:
    folder = tmp_path / "my conf%"  # a space and a % in the path: ExecStart quoting and escaping
    folder.mkdir()
    path = folder / "supervisor.yaml"
    path.write_text(YAML)
    return path


def dry_run_unit(cfg: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> str:
    assert main(["service", "install", "-c", str(cfg), "--dry-run", *extra]) == 0
    out = capsys.readouterr().out
    return "".join(line + "\n" for line in out.splitlines()[1:] if not line.startswith("# then: "))


def verify(unit: str, folder: Path, *, user: bool) -> subprocess.CompletedProcess[str]:
    assert ANALYZE is not None
    path = folder / "orchestrator.service"
    path.write_text(unit)
    runtime = folder / "xdg-runtime"
    runtime.mkdir(mode=0o700, exist_ok=True)
    env = {**os.environ, "XDG_RUNTIME_DIR": str(runtime)}  # the --user manager wants one
    return subprocess.run([ANALYZE, *(["--user"] if user else []), "verify", str(path)], capture_output=True,
                          text=True, timeout=60, env=env)


@NEEDS_ANALYZE
@pytest.mark.parametrize("user", [False, True])
def test_the_unit_passes_systemd_analyze_verify(cfg: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                user: bool) -> None:
    unit = dry_run_unit(cfg, capsys, *(["--user"] if user else []))
    checked = verify(unit, tmp_path, user=user)
    assert checked.returncode == 0, checked.stderr
    assert ("WantedBy=default.target" if user else "WantedBy=multi-user.target") in unit
    broken = verify(unit.replace("ExecStart=", "ExecStart=/nonexistent/python "), tmp_path, user=user)
    assert broken.returncode != 0  # the check does look at the unit


def test_the_unit_stops_the_way_the_supervisor_does(cfg: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lines = dry_run_unit(cfg, capsys).splitlines()
    # panel stops first, then comfyui: the chain's budgets summed, plus the margin, in whole seconds
    chain = (7 + KILL_WAIT_S + PIPE_DRAIN_S) + (30 + KILL_WAIT_S + PIPE_DRAIN_S) + SHUTDOWN_MARGIN_S
    assert f"TimeoutStopSec={int(-(-chain // 1))}" in lines
    assert {"KillMode=mixed", "KillSignal=SIGTERM", "Restart=on-failure", "Type=exec"} <= set(lines)
    exec_start = next(line for line in lines if line.startswith("ExecStart="))
    assert exec_start.endswith(' run -c "' + str(cfg).replace("%", "%%") + '"')
    assert Path(exec_start.removeprefix("ExecStart=").split()[0]).is_absolute()
    assert f"WorkingDirectory={str(cfg.parent).replace('%', '%%')}" in lines
    config = load_config(cfg)
    assert f"# state: {config.state_dir}" in lines and f"# logs: {config.logs.dir}" in lines


def test_exec_line_quotes_what_systemd_would_split_or_expand() -> None:
    assert systemd.exec_line(["/usr/bin/python3", "-m", "orchestrator"]) == "/usr/bin/python3 -m orchestrator"
    assert systemd.exec_line(["/a b/c", "50%", "$HOME", 'say "hi"']) == \
        '"/a b/c" 50%% $$HOME "say \\"hi\\""'


def test_install_remove_and_the_other_actions_run_systemctl(cfg: Path, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    fake = tmp_path / "systemctl"
    fake.write_text(f"#!{sys.executable}\n{FAKE_SYSTEMCTL}")
    fake.chmod(0o755)
    log = tmp_path / "calls.jsonl"
    monkeypatch.setenv("FAKE_LOG", str(log))
    units = tmp_path / "units"
    common = ["--systemctl", str(fake), "--unit-dir", str(units), "--user"]
    assert main(["service", "install", "-c", str(cfg), *common]) == 0
    assert (units / "orchestrator.service").read_text().startswith("# orchestrator.service: written by")
    for action in ("start", "status", "stop", "remove"):
        assert main(["service", action, *common]) == 0
    assert not (units / "orchestrator.service").exists()
    calls = [json.loads(line) for line in log.read_text().splitlines()]
    assert calls == [["--user", "daemon-reload"], ["--user", "enable", "orchestrator.service"],
                     ["--user", "start", "orchestrator.service"],
                     ["--user", "status", "--no-pager", "orchestrator.service"],
                     ["--user", "stop", "orchestrator.service"],
                     ["--user", "disable", "--now", "orchestrator.service"], ["--user", "daemon-reload"]]
