from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.config.spec import Dependency
from orchestrator.core.runner import KILL_WAIT_S, PIPE_DRAIN_S
from orchestrator.platform.cmdline import split_windows
from orchestrator.service import nssm
from tests.support.helpers import config, service

CMD = ("prog",)


def target(**kw: object) -> nssm.InstallTarget:
    values: dict[str, object] = {
        "name": "Orchestrator", "display_name": "Orchestrator", "description": "the supervisor",
        "launcher": (r"C:\Py\Scripts\orchestrator.exe",), "config_path": r"C:\Work\Orchestrator\supervisor.yaml",
        "app_directory": r"C:\Work\Orchestrator", "logs_dir": r"F:\Logs", "stop_wait_ms": 52_000,
    }
    values.update(kw)
    return nssm.InstallTarget(**values)  # type: ignore[arg-type]


def settings(steps: list[nssm.Step]) -> dict[str, tuple[str, ...]]:
    return {s.argv[3]: s.argv[4:] for s in steps if s.argv[1] == "set"}


# -- the stop-timeout arithmetic --------------------------------------------------------------------------

PER_SERVICE_OVERHEAD = KILL_WAIT_S + PIPE_DRAIN_S  # what one stop may take beyond its stop.timeout


def test_stop_wait_is_the_longest_stop_timeout_plus_overhead_plus_margin(tmp_path: Path) -> None:
    cfg = config(tmp_path, service("comfyui", CMD, stop_timeout_s=30), service("panel", CMD, stop_timeout_s=10))
    # Independent services stop concurrently: the slowest one decides. 30 + 5 + 2 + 15 = 52 s.
    assert nssm.console_stop_wait_ms(cfg) == (30 + PER_SERVICE_OVERHEAD + nssm.SHUTDOWN_MARGIN_S) * 1000 == 52_000


def test_stop_wait_sums_a_dependency_chain(tmp_path: Path) -> None:
    # panel depends on comfyui: panel stops first, comfyui only after it. 10+7 + 30+7 + 15 = 69 s.
    cfg = config(tmp_path, service("comfyui", CMD, stop_timeout_s=30),
                 service("panel", CMD, stop_timeout_s=10, depends_on=(Dependency("comfyui"),)),
                 service("other", CMD, stop_timeout_s=40))
    chain = (10 + PER_SERVICE_OVERHEAD) + (30 + PER_SERVICE_OVERHEAD)
    assert chain > 40 + PER_SERVICE_OVERHEAD
    assert nssm.console_stop_wait_ms(cfg) == (chain + nssm.SHUTDOWN_MARGIN_S) * 1000 == 69_000


def test_stop_wait_takes_the_longest_branch_and_rounds_up_to_seconds(tmp_path: Path) -> None:
    # base <- a (1.2 s), base <- b (0.1 s): base starts after the slower dependant.
    cfg = config(tmp_path, service("base", CMD, stop_timeout_s=0.5),
                 service("a", CMD, stop_timeout_s=1.2, depends_on=(Dependency("base"),)),
                 service("b", CMD, stop_timeout_s=0.1, depends_on=(Dependency("base"),)))
    seconds = (1.2 + PER_SERVICE_OVERHEAD) + (0.5 + PER_SERVICE_OVERHEAD) + nssm.SHUTDOWN_MARGIN_S  # 30.7
    assert nssm.console_stop_wait_ms(cfg) == 31_000 > seconds * 1000


def test_stop_wait_without_services_is_the_margin(tmp_path: Path) -> None:
    assert nssm.console_stop_wait_ms(config(tmp_path)) == nssm.SHUTDOWN_MARGIN_S * 1000


# -- install --------------------------------------------------------------------------------------------


def test_install_registers_then_sets_every_setting() -> None:
    steps = nssm.install_steps("nssm", target())
    first = steps[0]
    assert first.argv == ("nssm", "install", "Orchestrator", r"C:\Py\Scripts\orchestrator.exe")
    assert first.if_missing == "Orchestrator"  # an installed service is updated instead
    assert settings(steps) == {
        "Application": (r"C:\Py\Scripts\orchestrator.exe",),
        "AppParameters": (r"run -c C:\Work\Orchestrator\supervisor.yaml",),
        "AppDirectory": (r"C:\Work\Orchestrator",),
        "DisplayName": ("Orchestrator",),
        "Description": ("the supervisor",),
        "Start": ("SERVICE_AUTO_START",),
        "AppNoConsole": ("0",),
        "AppStdout": (r"F:\Logs\orchestrator.stdout.log",),
        "AppStderr": (r"F:\Logs\orchestrator.stderr.log",),
        "AppRotateFiles": ("1",),
        "AppRotateOnline": ("1",),
        "AppRotateBytes": ("10485760",),
        "AppStopMethodConsole": ("52000",),
        "AppStopMethodWindow": ("1500",),
        "AppStopMethodThreads": ("1500",),
        "AppExit": ("Default", "Restart"),
        "AppThrottle": ("10000",),
        "AppRestartDelay": ("2000",),
        "AppEnvironmentExtra": ("PYTHONUNBUFFERED=1",),
    }
    assert all(s.argv[:3] == ("nssm", "set", "Orchestrator") for s in steps[1:])


def test_parameters_survive_spaces_in_paths_as_one_nssm_value() -> None:
    # NSSM stores the value verbatim as the command line tail; the program's parser must get run, -c, path.
    cfg = r"C:\My Configs\supervisor.yaml"
    steps = nssm.install_steps("nssm", target(launcher=(r"C:\Py\python.exe", "-m", "orchestrator"), config_path=cfg))
    (parameters,) = settings(steps)["AppParameters"]
    assert parameters == r'-m orchestrator run -c "C:\My Configs\supervisor.yaml"'
    assert split_windows("python.exe " + parameters)[1:] == ["-m", "orchestrator", "run", "-c", cfg]
    assert settings(steps)["Application"] == (r"C:\Py\python.exe",)


def test_replace_legacy_removes_the_three_old_services_first_only_if_installed() -> None:
    steps = nssm.install_steps("nssm", target(), replace_legacy=True)
    legacy = steps[:6]
    assert [s.argv for s in legacy] == [
        ("nssm", "stop", "OrchestratorPanel"), ("nssm", "remove", "OrchestratorPanel", "confirm"),
        ("nssm", "stop", "OrchestratorComfyUI"), ("nssm", "remove", "OrchestratorComfyUI", "confirm"),
        ("nssm", "stop", "OrchestratorGuardian"), ("nssm", "remove", "OrchestratorGuardian", "confirm"),
    ]
    assert [s.if_installed for s in legacy] == [n for n in nssm.LEGACY_SERVICES for _ in (1, 2)]
    assert [s.may_fail for s in legacy] == [True, False] * 3  # a stopped service fails `stop`; fine
    assert steps[6].argv[1] == "install"
    assert nssm.install_steps("nssm", target())[0].argv[1] == "install"  # without the flag: nothing legacy


@pytest.mark.parametrize(
    ("logs", "expected"),
    [
        (r"F:\Logs", (r"F:\Logs\orchestrator.stdout.log", r"F:\Logs\orchestrator.stderr.log")),
        ("/var/log/orch", ("/var/log/orch/orchestrator.stdout.log", "/var/log/orch/orchestrator.stderr.log")),
    ],
)
def test_console_log_paths_follow_the_logs_folder(logs: str, expected: tuple[str, str]) -> None:
    assert nssm.console_log_paths(logs) == expected


def test_launcher_prefers_the_installed_executable(tmp_path: Path) -> None:
    assert nssm.default_launcher(tmp_path, "/py/python", windows=True) == ("/py/python", "-m", "orchestrator")
    (tmp_path / "orchestrator.exe").write_text("")
    assert nssm.default_launcher(tmp_path, "/py/python", windows=True) == (str(tmp_path / "orchestrator.exe"),)
    assert nssm.default_launcher(tmp_path, "/py/python", windows=False)[1:] == ("-m", "orchestrator")


def test_target_for_a_config_uses_its_absolute_paths(tmp_path: Path) -> None:
    cfg = config(tmp_path, service("web", CMD, stop_timeout_s=5))
    t = nssm.target_for(cfg, name="Orch", display_name="Orch display", launcher=("x",))
    assert (t.config_path, t.app_directory, t.logs_dir) == (str(cfg.path), str(tmp_path), str(tmp_path / "logs"))
    assert t.stop_wait_ms == nssm.console_stop_wait_ms(cfg)
    assert "web" in t.description and str(cfg.path) in t.description


def test_other_actions() -> None:
    assert [s.argv for s in nssm.remove_steps("n", "S")] == [("n", "stop", "S"), ("n", "remove", "S", "confirm")]
    assert nssm.remove_steps("n", "S")[0].may_fail
    assert [s.argv for s in nssm.start_steps("n", "S")] == [("n", "start", "S")]
    assert [s.argv for s in nssm.stop_steps("n", "S")] == [("n", "stop", "S")]
    assert [s.argv for s in nssm.status_steps("sc", "S")] == [("sc", "query", "S")]
