"""`orchestrator service ...` end to end: dry runs and real runs against stand-in `nssm` and `sc` programs
(small Python scripts on PATH that record their arguments). Off Windows without --nssm the commands
manage a systemd unit instead: tests/integration/test_service_systemd.py."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from orchestrator.cli.main import main
from orchestrator.service import nssm

POSIX_ONLY = pytest.mark.skipif(sys.platform == "win32", reason="stand-in scripts use a #! line")

YAML = """\
logs: {dir: ./logs}
services:
  comfyui:
    command: [python, main.py]
    stop: {timeout: 30s}
  panel:
    command: [node, server.js]
    depends_on: [comfyui]
"""

FAKE_NSSM = """\
import json, os, sys
args = sys.argv[1:]
with open(os.environ["FAKE_LOG"], "a") as f:
    f.write(json.dumps(["nssm", *args]) + "\\n")
services = os.environ["FAKE_SERVICES"]
names = open(services).read().split() if os.path.exists(services) else []
if args[:1] == ["install"]:
    names.append(args[1])
if args[:1] == ["remove"]:
    names.remove(args[1])
open(services, "w").write(" ".join(names))
sys.exit(1 if " ".join(args) == os.environ.get("FAKE_FAIL") else 0)
"""

FAKE_SC = """\
import json, os, sys
args = sys.argv[1:]
with open(os.environ["FAKE_LOG"], "a") as f:
    f.write(json.dumps(["sc", *args]) + "\\n")
services = os.environ["FAKE_SERVICES"]
names = open(services).read().split() if os.path.exists(services) else []
print("STATE : 4 RUNNING" if args[1] in names else "FAILED 1060")
sys.exit(0 if args[1] in names else 36)  # 1060 (ERROR_SERVICE_DOES_NOT_EXIST) as a POSIX exit status
"""


@pytest.fixture
def cfg(tmp_path: Path) -> Path:
    path = tmp_path / "supervisor.yaml"
    path.write_text(YAML)
    return path


class Fakes:
    def __init__(self, root: Path) -> None:
        self.log = root / "calls.jsonl"
        self.services = root / "services.txt"

    def installed(self, *names: str) -> None:
        self.services.write_text(" ".join(names))

    def calls(self) -> list[list[str]]:
        if not self.log.exists():
            return []
        return [json.loads(line) for line in self.log.read_text().splitlines()]


@pytest.fixture
def fakes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Fakes:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, body in (("nssm", FAKE_NSSM), ("sc", FAKE_SC)):
        script = bin_dir / name
        script.write_text(f"#!{sys.executable}\n{body}")
        script.chmod(0o755)
    f = Fakes(tmp_path)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_LOG", str(f.log))
    monkeypatch.setenv("FAKE_SERVICES", str(f.services))
    return f


@POSIX_ONLY
def test_install_with_replace_legacy_runs_exactly_the_built_commands(cfg: Path, fakes: Fakes,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    fakes.installed("OrchestratorPanel", "OrchestratorGuardian")
    assert main(["service", "install", "-c", str(cfg), "--nssm", "nssm", "--replace-legacy"]) == 0
    calls = fakes.calls()
    assert calls[:9] == [
        ["sc", "query", "OrchestratorPanel"],
        ["nssm", "stop", "OrchestratorPanel"], ["nssm", "remove", "OrchestratorPanel", "confirm"],
        ["sc", "query", "OrchestratorComfyUI"],  # not installed: nothing to stop or remove
        ["sc", "query", "OrchestratorGuardian"],
        ["nssm", "stop", "OrchestratorGuardian"], ["nssm", "remove", "OrchestratorGuardian", "confirm"],
        ["sc", "query", "Orchestrator"],
        ["nssm", "install", "Orchestrator", calls[8][3]],
    ]
    sets = {c[3]: c[4:] for c in calls[9:]}
    assert all(c[:3] == ["nssm", "set", "Orchestrator"] for c in calls[9:])
    assert sets["AppParameters"] == [f"run -c {cfg}"]
    assert sets["AppDirectory"] == [str(cfg.parent)]
    # comfyui (30 s) stops after panel (10 s) depends on it: 37 + 17 + 15 = 69 s.
    assert sets["AppStopMethodConsole"] == ["69000"]
    assert sets["AppStdout"] == [str(cfg.parent / "logs" / "orchestrator.stdout.log")]
    out = capsys.readouterr().out
    assert "skipped, OrchestratorComfyUI is not installed" in out
    assert "nssm remove OrchestratorPanel confirm\n" in out  # each command is printed before it runs
    assert fakes.services.read_text().split() == ["Orchestrator"]


@POSIX_ONLY
def test_install_over_an_installed_service_updates_its_settings(cfg: Path, fakes: Fakes) -> None:
    fakes.installed("Orchestrator")
    assert main(["service", "install", "-c", str(cfg), "--nssm", "nssm", "--name", "Orchestrator"]) == 0
    calls = fakes.calls()
    assert calls[0] == ["sc", "query", "Orchestrator"]
    assert not [c for c in calls if c[:2] == ["nssm", "install"]]
    assert len([c for c in calls if c[:2] == ["nssm", "set"]]) == 19


@POSIX_ONLY
def test_a_failing_command_stops_the_install_with_exit_1(cfg: Path, fakes: Fakes, monkeypatch: pytest.MonkeyPatch,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("FAKE_FAIL", f"set Orchestrator AppDirectory {cfg.parent}")
    assert main(["service", "install", "-c", str(cfg), "--nssm", "nssm"]) == 1
    assert fakes.calls()[-1] == ["nssm", "set", "Orchestrator", "AppDirectory", str(cfg.parent)]
    assert "exited 1; stopped here" in capsys.readouterr().err


@POSIX_ONLY
def test_remove_start_stop_and_status(fakes: Fakes, capfd: pytest.CaptureFixture[str]) -> None:
    assert main(["service", "status", "--nssm", "nssm", "--name", "Orch"]) == 1
    assert "Orch: not installed" in capfd.readouterr().err
    fakes.installed("Orch")
    assert main(["service", "status", "--nssm", "nssm", "--name", "Orch"]) == 0
    assert "RUNNING" in capfd.readouterr().out  # sc's own output, on our console
    assert main(["service", "start", "--nssm", "nssm", "--name", "Orch"]) == 0
    assert main(["service", "stop", "--nssm", "nssm", "--name", "Orch"]) == 0
    assert main(["service", "remove", "--nssm", "nssm", "--name", "Orch"]) == 0
    assert main(["service", "remove", "--nssm", "nssm", "--name", "Orch"]) == 0  # gone: both steps skipped
    assert fakes.calls() == [
        ["sc", "query", "Orch"], ["sc", "query", "Orch"],
        ["nssm", "start", "Orch"], ["nssm", "stop", "Orch"],
        ["sc", "query", "Orch"], ["nssm", "stop", "Orch"], ["nssm", "remove", "Orch", "confirm"],
        ["sc", "query", "Orch"],
    ]


def test_dry_run_prints_a_cmd_script_and_runs_nothing(cfg: Path, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    exe = tmp_path / "nssm.exe"
    exe.write_text("")  # never run: a dry run only names it
    assert main(["service", "install", "-c", str(cfg), "--nssm", str(exe), "--dry-run", "--replace-legacy"]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if not line.startswith("rem ")]
    n = nssm.command_line([str(exe)])
    assert lines[0] == f"sc query OrchestratorPanel >nul 2>&1 && {n} stop OrchestratorPanel"
    assert lines[1] == f"sc query OrchestratorPanel >nul 2>&1 && {n} remove OrchestratorPanel confirm"
    assert lines[6].startswith(f"sc query Orchestrator >nul 2>&1 || {n} install Orchestrator ")
    assert f"{n} set Orchestrator AppStopMethodConsole 69000" in lines
    assert len(lines) == 6 + 1 + 19


@pytest.mark.parametrize("action", ["remove", "status", "start", "stop"])
def test_dry_run_of_the_other_actions(action: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["service", action, "--dry-run", "--name", "Orch", "--nssm", sys.executable]) == 0
    out = [line for line in capsys.readouterr().out.splitlines() if not line.startswith("rem ")]
    assert out[-1].endswith(f"{'query' if action == 'status' else action} Orch" +
                            (" confirm" if action == "remove" else ""))


def test_install_of_an_invalid_config_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "supervisor.yaml"
    bad.write_text("services: {web: {command: []}}\n")
    assert main(["service", "install", "-c", str(bad), "--dry-run"]) == 1
    assert "invalid config" in capsys.readouterr().err
