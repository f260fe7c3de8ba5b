"""The process managers `bench/compare.py` runs side by side: orchestrator, supervisord, PM2.

Each peer is driven the same way: write its config for a list of `Prog`s, launch the manager, start
programs with its own CLI, find the manager's processes (for CPU and RSS), stop it. What a figure
observes never comes from the manager's word: children stamp their own start times and the bench
counts processes in /proc. A peer that cannot run says why (`Peer.missing`) and its column shows a dash.

PM2 runs with its own PM2_HOME per launch, so it never touches a user's PM2; it has no rotation of
its own (pm2-logrotate is a separate module), so its log is one file.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import psutil

__all__ = ["Orchestrator", "Peer", "Pm2", "Prog", "Supervisord"]

HERE = Path(__file__).resolve().parent
PEERS = HERE / ".peers"
PY = sys.executable


@dataclass(frozen=True, slots=True)
class Prog:
    name: str
    argv: tuple[str, ...]
    autostart: bool = True
    restart: bool = False
    stop_timeout_s: float = 10.0
    max_log_bytes: int = 10 * 1024 * 1024
    backups: int = 40


@dataclass
class Peer:
    """One manager: `launch` writes its config into `run_dir` and returns once it answers."""

    name: str
    run_dir: Path = field(default_factory=Path)
    proc: subprocess.Popen[bytes] | None = None

    def missing(self) -> str | None:
        return None

    def launch(self, run_dir: Path, progs: list[Prog], *, wait: bool = True) -> None:
        raise NotImplementedError

    def wait_ready(self, timeout: float = 30.0) -> None:
        raise NotImplementedError

    status_verb = "status"  # the CLI's word for the table of every program

    def ctl(self, *args: str) -> list[str]:
        """The argv of the manager's own CLI with these arguments."""
        raise NotImplementedError

    def start_argv(self, names: list[str]) -> list[str]:
        return self.ctl("start", *names)

    def status_argv(self) -> list[str]:
        return self.ctl(self.status_verb)

    def stop_argv(self, name: str) -> list[str]:
        return self.ctl("stop", name)

    def log_files(self, name: str) -> list[Path]:
        """Every file holding `name`'s stdout, oldest first."""
        raise NotImplementedError

    def manager(self) -> psutil.Process:
        assert self.proc is not None
        return psutil.Process(self.proc.pid)

    def shutdown(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.proc = None


def _rotated(base: Path, newest_first_suffix: str = ".{}") -> list[Path]:
    backups = sorted((p for p in base.parent.glob(base.name + ".*") if p.suffix[1:].isdigit()),
                     key=lambda p: int(p.suffix[1:]), reverse=True)
    return [*backups, base] if base.exists() else backups


class Orchestrator(Peer):
    def __init__(self) -> None:
        super().__init__("orchestrator")
        self.port = 0

    def launch(self, run_dir: Path, progs: list[Prog], *, wait: bool = True) -> None:
        self.run_dir, self.port = run_dir, _free_port()
        size = progs[0].max_log_bytes if progs else 10 << 20
        backups = progs[0].backups if progs else 5
        lines = [f"api: {{listen: '127.0.0.1:{self.port}'}}",
                 f"logs: {{dir: ./logs, max_size: {size}, backups: {backups}}}",
                 "state_dir: ./state", "services:" if progs else "services: {}"]
        for p in progs:
            restart = ("{policy: always, attempts: 100000, cooldown: 0s}" if p.restart
                       else "{policy: never}")
            lines.append(f"  {p.name}: {{command: {json.dumps(list(p.argv))}, autostart: {str(p.autostart).lower()},"
                         f" restart: {restart}, stop: {{timeout: {p.stop_timeout_s}s}}, start_period: 0s}}")
        (run_dir / "supervisor.yaml").write_text("\n".join(lines) + "\n")
        self.proc = subprocess.Popen([PY, "-m", "orchestrator", "run", "-c", str(run_dir / "supervisor.yaml")],
                                     cwd=run_dir, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     start_new_session=True)
        if wait:
            self.wait_ready()

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{self.port}/api/health", timeout=1).read()
                return
            except OSError:
                time.sleep(0.01)
        raise RuntimeError("orchestrator did not answer")

    def ctl(self, *args: str) -> list[str]:
        return [PY, "-m", "orchestrator", *args, "-c", str(self.run_dir / "supervisor.yaml")]

    def log_files(self, name: str) -> list[Path]:
        return _rotated(self.run_dir / "logs" / f"{name}-stdout.log")

    def token(self) -> str:
        return (self.run_dir / "state" / "api-token").read_text().strip()


class Supervisord(Peer):
    def __init__(self) -> None:
        super().__init__("supervisord")
        self.exe = PEERS / "venv" / "bin" / "supervisord"

    def missing(self) -> str | None:
        return None if self.exe.exists() else f"supervisor 4.3 not installed: {_install_log('supervisor')}"

    def launch(self, run_dir: Path, progs: list[Prog], *, wait: bool = True) -> None:
        self.run_dir = run_dir
        parts = [f"[supervisord]\nnodaemon=true\nlogfile={run_dir}/supervisord.log\npidfile={run_dir}/sd.pid\n"
                 f"childlogdir={run_dir}\n",
                 f"[unix_http_server]\nfile={run_dir}/sd.sock\n",
                 "[rpcinterface:supervisor]\nsupervisor.rpcinterface_factory = "
                 "supervisor.rpcinterface:make_main_rpcinterface\n",
                 f"[supervisorctl]\nserverurl=unix://{run_dir}/sd.sock\n"]
        for p in progs:
            parts.append(f"[program:{p.name}]\ncommand={' '.join(p.argv)}\nautostart={str(p.autostart).lower()}\n"
                         f"autorestart={str(p.restart).lower()}\nstartsecs=0\nstartretries=100000\n"
                         f"stopwaitsecs={p.stop_timeout_s:g}\nstdout_logfile={run_dir}/{p.name}-stdout.log\n"
                         f"stdout_logfile_maxbytes={p.max_log_bytes}\nstdout_logfile_backups={p.backups}\n"
                         f"stderr_logfile={run_dir}/{p.name}-stderr.log\n")
        (run_dir / "supervisord.conf").write_text("\n".join(parts))
        self.proc = subprocess.Popen([str(self.exe), "-c", str(run_dir / "supervisord.conf")],
                                     cwd=run_dir, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     start_new_session=True)
        if wait:
            self.wait_ready()

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if (self.run_dir / "sd.sock").exists():
                return
            time.sleep(0.01)
        raise RuntimeError("supervisord did not answer")

    def ctl(self, *args: str) -> list[str]:
        return [str(self.exe.parent / "supervisorctl"), "-c", str(self.run_dir / "supervisord.conf"), *args]

    def log_files(self, name: str) -> list[Path]:
        return _rotated(self.run_dir / f"{name}-stdout.log")


class Pm2(Peer):
    def __init__(self) -> None:
        super().__init__("PM2")
        self.exe = PEERS / "pm2" / "node_modules" / ".bin" / "pm2"

    def missing(self) -> str | None:
        if shutil.which("node") is None:
            return "no node on this machine"
        return None if self.exe.exists() else f"PM2 7 not installed: {_install_log('pm2')}"

    def _env(self) -> dict[str, str]:
        return {**os.environ, "PM2_HOME": str(self.run_dir / "pm2home")}

    def launch(self, run_dir: Path, progs: list[Prog], *, wait: bool = True) -> None:
        self.run_dir = run_dir
        apps = [self._app(p) for p in progs if p.autostart]
        self.later = {p.name: p for p in progs if not p.autostart}
        (run_dir / "eco.json").write_text(json.dumps({"apps": apps}))
        argv = [str(self.exe), "start", str(run_dir / "eco.json")] if apps else [str(self.exe), "ping"]
        self.proc = subprocess.Popen(argv, cwd=run_dir, env=self._env(), stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, start_new_session=True)
        if wait:
            self.wait_ready()

    def wait_ready(self, timeout: float = 60.0) -> None:
        assert self.proc is not None
        self.proc.wait(timeout)

    def _app(self, p: Prog) -> dict[str, object]:
        """One program as a PM2 ecosystem app."""
        return {"name": p.name, "script": p.argv[0], "args": list(p.argv[1:]), "interpreter": "none",
                "autorestart": p.restart, "restart_delay": 0, "min_uptime": 0, "max_restarts": 100000,
                "kill_timeout": int(p.stop_timeout_s * 1000), "out_file": str(self.run_dir / f"{p.name}-stdout.log"),
                "error_file": str(self.run_dir / f"{p.name}-stderr.log"), "merge_logs": True,
                "cwd": str(self.run_dir)}

    status_verb = "ls"

    def ctl(self, *args: str) -> list[str]:
        return ["env", f"PM2_HOME={self.run_dir / 'pm2home'}", str(self.exe), *args]

    def start_argv(self, names: list[str]) -> list[str]:
        """The programs not started at launch come from a second ecosystem file."""
        path = self.run_dir / "eco-later.json"
        path.write_text(json.dumps({"apps": [self._app(p) for n, p in self.later.items() if n in names]}))
        return self.ctl("start", str(path))

    def log_files(self, name: str) -> list[Path]:
        return _rotated(self.run_dir / f"{name}-stdout.log")

    def manager(self) -> psutil.Process:
        pid = int((self.run_dir / "pm2home" / "pm2.pid").read_text())
        return psutil.Process(pid)

    def shutdown(self) -> None:
        if not (self.run_dir / "pm2home").exists():
            return
        try:
            pid = self.manager().pid
        except (OSError, ValueError, psutil.Error):
            return
        subprocess.run([str(self.exe), "kill"], env=self._env(), stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, timeout=60, check=False)
        with contextlib.suppress(psutil.Error):
            psutil.Process(pid).wait(10)


def _install_log(peer: str) -> str:
    """The last line of the Makefile's install log for `peer` (bench/.peers/PEER-install.log): the reason."""
    try:
        lines = [ln.strip() for ln in (PEERS / f"{peer}-install.log").read_text().splitlines() if ln.strip()]
    except OSError:
        return "not attempted (run `make bench-compare`)"
    return lines[-1][:200] if lines else "the install printed nothing"


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
