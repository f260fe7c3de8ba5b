"""How the CLI finds the supervisor it means: the runtime file, the lenient config read, the
$ORCHESTRATOR_URL/$ORCHESTRATOR_TOKEN overrides, another config's supervisor on the same port, the
start banner's commands, and the one-line answer when there is no config at all. Real `orchestrator
run` processes, real CLI processes, real files."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrator.config.locate import peek
from tests.support.helpers import CHILDREN, POSIX_ONLY, free_port, read_file

PY = sys.executable
pytestmark = POSIX_ONLY  # SIGTERM to the supervisor; 0600 modes


def write_config(folder: Path, listen: str = "127.0.0.1:0", state: str = "./state") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    argv = ", ".join(f"'{a}'" for a in (PY, "-u", str(CHILDREN / "ready_then_sleep.py")))
    cfg = folder / "supervisor.yaml"
    cfg.write_text(f"api: {{listen: '{listen}'}}\nlogs: {{dir: ./logs}}\nstate_dir: {state}\nservices:\n"
                   f"  web:\n    command: [{argv}]\n    start_period: 0.2s\n")
    return cfg


def cli(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("ORCHESTRATOR_")}
    return subprocess.run([PY, "-m", "orchestrator", *args], capture_output=True, text=True, timeout=30,
                          cwd=cwd, env={**environ, **(env or {})})


class Running:
    def __init__(self, cfg: Path) -> None:
        self.cfg = cfg
        self.out = cfg.parent / "supervisor.out"
        with open(self.out, "wb") as out:
            self.proc = subprocess.Popen([PY, "-m", "orchestrator", "run", "-c", cfg.name], cwd=cfg.parent,
                                         stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 20
        while "in another terminal:" not in read_file(self.out):
            assert self.proc.poll() is None, read_file(self.out)
            assert time.monotonic() < deadline, "the supervisor did not print its banner"
            time.sleep(0.02)

    @property
    def url(self) -> str:
        return read_file(self.out).split("api: ", 1)[1].split("\n", 1)[0]

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=30)


@pytest.fixture
def running(tmp_path: Path) -> Iterator[Running]:
    sup = Running(write_config(tmp_path / "a"))
    try:
        yield sup
    finally:
        sup.stop()


def test_run_writes_an_owner_only_runtime_file_and_removes_it_on_exit(running: Running) -> None:
    runtime = running.cfg.parent / "state" / "runtime.json"
    data = json.loads(runtime.read_text())
    assert data["url"] == running.url and data["pid"] == running.proc.pid
    assert data["config"] == str(running.cfg)
    assert stat.S_IMODE(runtime.stat().st_mode) == 0o600
    assert running.stop() == 0
    assert not runtime.exists()


def test_the_banner_commands_work_as_printed(running: Running) -> None:
    banner = read_file(running.out).split("in another terminal:\n", 1)[1].splitlines()[:4]
    assert [line.split(" -c ")[1] for line in banner] == ["supervisor.yaml"] * 4
    assert banner[0].endswith("status -c supervisor.yaml") and "logs -f -c" in banner[1]
    for line in (banner[0], banner[2], banner[3]):  # status, restart web, events
        argv = line.split()
        out = subprocess.run(argv, capture_output=True, text=True, timeout=30, cwd=running.cfg.parent)
        assert out.returncode == 0, (line, out.stderr)


def test_a_port_0_api_is_found_through_the_runtime_file(running: Running) -> None:
    # api.listen says port 0: only the runtime file knows the address; the file from $ORCHESTRATOR_CONFIG
    status = cli("status", "--json", cwd=running.cfg.parent.parent, env={"ORCHESTRATOR_CONFIG": str(running.cfg)})
    assert status.returncode == 0, status.stderr
    assert [s["name"] for s in json.loads(status.stdout)["services"]] == ["web"]


def test_an_invalid_config_being_edited_does_not_stop_status_stop_events(running: Running) -> None:
    running.cfg.write_text(running.cfg.read_text() + "  broken: [unclosed\n")  # not even YAML now
    folder = running.cfg.parent
    assert cli("check", "supervisor.yaml", cwd=folder).returncode == 1
    for args in (("status",), ("stop", "web"), ("events",), ("start", "web")):
        out = cli(*args, cwd=folder)  # ./supervisor.yaml: found without -c
        assert out.returncode == 0, (args, out.stderr)
    running.cfg.write_text("state_dir: ./state\nservices: {web: {command: 42}}\n")  # YAML, but invalid
    assert cli("status", cwd=folder).returncode == 0


def test_url_and_token_from_the_environment(running: Running, tmp_path: Path) -> None:
    elsewhere = tmp_path / "empty"
    elsewhere.mkdir()
    token = (running.cfg.parent / "state" / "api-token").read_text().strip()
    env = {"ORCHESTRATOR_URL": running.url, "ORCHESTRATOR_TOKEN": token}
    assert cli("restart", "web", cwd=elsewhere, env=env).returncode == 0
    refused = cli("restart", "web", cwd=elsewhere, env={**env, "ORCHESTRATOR_TOKEN": "wrong"})
    assert refused.returncode == 1 and "$ORCHESTRATOR_TOKEN" in refused.stderr
    assert cli("status", cwd=elsewhere, env={"ORCHESTRATOR_URL": running.url}).returncode == 0


def test_another_configs_supervisor_on_the_same_port_is_named_not_commanded(tmp_path: Path) -> None:
    port = free_port()
    demo = Running(write_config(tmp_path / "demo", listen=f"127.0.0.1:{port}"))
    try:
        # The production config in the folder we stand in: same port, another state dir, not running.
        here = write_config(tmp_path, listen=f"127.0.0.1:{port}", state="./prod-state").parent
        for args in (("status",), ("restart", "web")):
            out = cli(*args, cwd=here)
            assert out.returncode == 1
            assert out.stderr == (f"error: the supervisor at http://127.0.0.1:{port} runs demo/supervisor.yaml, "
                                  "not supervisor.yaml (which is not running); to talk to it: "
                                  "-c demo/supervisor.yaml\n")
        assert cli("status", "-c", "demo/supervisor.yaml", cwd=here).returncode == 0
    finally:
        assert demo.stop() == 0


def test_no_config_anywhere_is_one_line_naming_the_three_places(tmp_path: Path) -> None:
    for args in (("status",), ("check",), ("run",)):
        out = cli(*args, cwd=tmp_path)
        assert out.returncode == 1 and len(out.stderr.splitlines()) == 1, out.stderr
        assert "-c (not given), $ORCHESTRATOR_CONFIG (unset), ./supervisor.yaml (not found)" in out.stderr
    out = cli("status", cwd=tmp_path, env={"ORCHESTRATOR_CONFIG": "gone.yaml"})
    assert "$ORCHESTRATOR_CONFIG=gone.yaml (no such file)" in out.stderr


def test_check_takes_the_file_as_a_positional(tmp_path: Path) -> None:
    cfg = write_config(tmp_path)
    out = cli("check", str(cfg), cwd=tmp_path.parent)
    assert out.returncode == 0 and out.stdout.startswith(f"{cfg}: ok, 1 service(s)")


def test_peek_reads_state_dir_and_api_of_a_file_that_is_not_yaml(tmp_path: Path) -> None:
    cfg = tmp_path / "s.yaml"
    cfg.write_text("api:\n  listen: '[::1]:9000'  # v6\n  token: ${TOK}\nstate_dir: \"st\"\nservices: [\n")
    found = peek(cfg, {"TOK": "abc"})
    assert (found.state_dir, found.host, found.port, found.token) == (tmp_path / "st", "::1", 9000, "abc")
    cfg.write_text("api: {listen: 127.0.0.1:0, token: t}\nservices: {a: [\n")
    found = peek(cfg, {})
    assert (found.state_dir, found.port, found.token) == (tmp_path / ".orchestrator", 0, "t")


def test_a_busy_api_port_names_its_holder(tmp_path: Path) -> None:
    port = free_port()
    first = Running(write_config(tmp_path / "first", listen=f"127.0.0.1:{port}"))
    try:
        other = write_config(tmp_path / "second", listen=f"127.0.0.1:{port}")
        out = subprocess.run([PY, "-m", "orchestrator", "run", "-c", str(other)], capture_output=True, text=True,
                             timeout=30)
        assert out.returncode == 1
        assert out.stderr.strip().endswith(f"held by another orchestrator, pid {first.proc.pid}, running {first.cfg}")
        again = subprocess.run([PY, "-m", "orchestrator", "run", "-c", str(first.cfg)], capture_output=True,
                               text=True, timeout=30)
        assert again.returncode == 1  # the state directory's lock answers first, naming the holder
        assert f"is in use by orchestrator pid {first.proc.pid}" in again.stderr
        assert first.proc.poll() is None and "web" in cli("status", cwd=first.cfg.parent).stdout
    finally:
        assert first.stop() == 0
    with socket.socket() as holder:  # not an orchestrator: pid and program
        holder.bind(("127.0.0.1", port))
        holder.listen()
        out = subprocess.run([PY, "-m", "orchestrator", "run", "-c", str(other)], capture_output=True, text=True,
                             timeout=30)
        assert out.returncode == 1
        assert f"held by pid {os.getpid()} (python" in out.stderr, out.stderr


def test_config_prints_the_effective_config_with_secrets_masked(tmp_path: Path) -> None:
    cfg = tmp_path / "supervisor.yaml"
    cfg.write_text("api: {token: '${TOK}'}\ndefaults: {restart: {attempts: 7}}\n"
                   "services:\n  web: {command: [x], env: {KEY: '${SECRET}', PLAIN: shown-nowhere}}\n")
    out = cli("config", "--json", "supervisor.yaml", cwd=tmp_path, env={"SECRET": "hunter2", "TOK": "tok-123"})
    assert out.returncode == 0, out.stderr
    assert "hunter2" not in out.stdout and "tok-123" not in out.stdout and "shown-nowhere" not in out.stdout
    data = json.loads(out.stdout)
    web = data["services"]["web"]
    assert web["env"] == {"KEY": "***", "PLAIN": "***"} and data["api"]["token"] == "***"
    assert web["restart"]["attempts"] == 7 and web["restart"]["policy"] == "on-failure"  # the default applied
    assert data["state_dir"] == str(tmp_path / ".orchestrator")
    text = cli("config", "-c", str(cfg), cwd=tmp_path, env={"SECRET": "hunter2", "TOK": "tok-123"})
    assert text.returncode == 0 and "hunter2" not in text.stdout and "attempts: 7" in text.stdout


BASH = shutil.which("bash")


@pytest.mark.skipif(BASH is None, reason="bash not installed")
def test_bash_completion_completes_commands_options_and_the_running_services(running: Running) -> None:
    script = cli("completion", "bash", cwd=running.cfg.parent)
    assert script.returncode == 0
    (running.cfg.parent / "completion.bash").write_text(script.stdout)

    def complete(*words: str) -> list[str]:
        prog = [PY, "-m", "orchestrator"]  # COMP_WORDS[0]: the program the script calls back
        shell = (f"source completion.bash; prog() {{ {' '.join(prog)} \"$@\"; }}; "
                 f"COMP_WORDS=(prog {' '.join(words)}); COMP_CWORD={len(words)}; "
                 "_orchestrator; printf '%s\\n' \"${COMPREPLY[@]}\"")
        assert BASH is not None
        out = subprocess.run([BASH, "-c", shell], capture_output=True, text=True, timeout=30, cwd=running.cfg.parent)
        return sorted(out.stdout.split())

    assert complete("sta") == ["start", "status"]
    assert complete("logs", "--st") == ["--stderr", "--stdout"]
    assert complete("restart", "") == ["all", "web"]  # from the running supervisor
    assert complete("restart", "-c", "supervisor.yaml", "w") == ["web"]
    for shell in ("zsh", "powershell"):
        other = cli("completion", shell, cwd=running.cfg.parent)
        assert other.returncode == 0 and "completion --services" in other.stdout
