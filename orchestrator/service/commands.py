"""`orchestrator service install|remove|status|start|stop`: the supervisor as an OS service.

Windows: one NSSM service. The commands are built by nssm.py (pure, tested anywhere) and run here one
by one, each printed first. `--dry-run` prints them as a cmd script instead: the conditions become
`sc query NAME >nul 2>&1 &&`. `--nssm` names the program, and also picks NSSM on another system (that
is how the tests drive stand-in `nssm` and `sc` scripts on Linux).

Elsewhere (Linux): a systemd unit built by systemd.py, written to /etc/systemd/system (`--user`:
~/.config/systemd/user; `--unit-dir` elsewhere), then `systemctl daemon-reload` and `enable`;
`--dry-run` prints the unit and the commands. remove|status|start|stop map to systemctl.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import sysconfig
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import TextIO

from orchestrator.config.spec import Config
from orchestrator.platform import is_windows
from orchestrator.service import nssm, systemd

__all__ = ["CommandRunner", "add_service_parser", "dry_run_script", "run_steps"]

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
CHOCOLATEY_NSSM = r"C:\ProgramData\chocolatey\bin\nssm.exe"  # where the box's NSSM came from
DEFAULT_NAME = "Orchestrator"

Loader = Callable[[argparse.Namespace], Config | None]


class CommandRunner:
    """Runs one command with our console as its output; `quiet` discards it (presence checks)."""

    def run(self, argv: Sequence[str], *, quiet: bool = False) -> int:
        sink = subprocess.DEVNULL if quiet else None
        try:
            return subprocess.run(list(argv), stdout=sink, stderr=sink, stdin=subprocess.DEVNULL,
                                  check=False).returncode
        except OSError as exc:
            print(f"error: cannot run {argv[0]}: {exc.strerror or exc}", file=sys.stderr)
            return 127


def run_steps(steps: Sequence[nssm.Step], *, runner: CommandRunner, sc: str = "sc",
              out: TextIO | None = None) -> int:
    """Run the steps in order; stop at the first failure that matters. Returns an exit code."""
    out = out or sys.stdout
    presence: dict[str, bool] = {}

    def installed(name: str) -> bool:
        if name not in presence:
            presence[name] = runner.run((sc, "query", name), quiet=True) == 0
        return presence[name]

    for step in steps:
        if step.if_installed is not None and not installed(step.if_installed):
            print(f"  skipped, {step.if_installed} is not installed: {nssm.command_line(step.argv)}", file=out)
            continue
        if step.if_missing is not None and installed(step.if_missing):
            print(f"  skipped, {step.if_missing} is already installed (updating its settings)", file=out)
            continue
        print(f"> {nssm.command_line(step.argv)}", file=out, flush=True)
        code = runner.run(step.argv)
        if code != 0 and not step.may_fail:
            print(f"error: that command exited {code}; stopped here", file=sys.stderr)
            return EXIT_FAILED
    return EXIT_OK


def dry_run_script(steps: Sequence[nssm.Step], *, sc: str = "sc") -> list[str]:
    """The steps as lines of a cmd script that would do the same."""
    lines: list[str] = []
    for step in steps:
        if step.why:
            lines.append(f"rem {step.why}")
        command = nssm.command_line(step.argv)
        if step.if_installed is not None:
            command = f"{nssm.command_line((sc, 'query', step.if_installed))} >nul 2>&1 && {command}"
        elif step.if_missing is not None:
            command = f"{nssm.command_line((sc, 'query', step.if_missing))} >nul 2>&1 || {command}"
        lines.append(command)
    return lines


def _unit_path(args: argparse.Namespace) -> Path:
    folder = Path(args.unit_dir) if args.unit_dir else systemd.unit_dir(args.user)
    return folder / f"{args.name or systemd.DEFAULT_UNIT}.service"


def _systemd_install(args: argparse.Namespace, load: Loader) -> int:
    config = load(args)
    if config is None:
        return EXIT_FAILED
    name = args.name or systemd.DEFAULT_UNIT
    launcher = nssm.default_launcher(Path(sysconfig.get_path("scripts")), sys.executable, windows=False)
    text = systemd.unit_text(systemd.target_for(config, name=name, launcher=launcher, user=args.user))
    path = _unit_path(args)
    commands = systemd.action_argv(args.systemctl, "install", name, user=args.user)
    if args.dry_run:
        print(f"# {path}\n{text}", end="")
        print("\n".join(f"# then: {nssm.command_line(argv)}" for argv in commands))
        return EXIT_OK
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        print(f"error: cannot write {path}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_FAILED
    print(f"wrote {path}")
    code = _run_all(commands)
    if code == EXIT_OK:
        start = nssm.command_line(systemd.action_argv("systemctl", "start", name, user=args.user)[0])
        print(f"installed {name}; start it with: {start}")
    return code


def _systemd_action(args: argparse.Namespace) -> int:
    name = args.name or systemd.DEFAULT_UNIT
    commands = systemd.action_argv(args.systemctl, args.action, name, user=args.user)
    if args.action == "remove":
        commands += systemd.action_argv(args.systemctl, "reload-units", name, user=args.user)
    if args.dry_run:
        lines = [nssm.command_line(argv) for argv in commands]
        if args.action == "remove":
            lines.insert(1, f"rm {_unit_path(args)}")
        print("\n".join(lines))
        return EXIT_OK
    if args.action != "remove":
        return _run_all(commands)
    print(f"> {nssm.command_line(commands[0])}", flush=True)
    CommandRunner().run(commands[0])  # may fail (already disabled, or never installed): the file goes anyway
    _unit_path(args).unlink(missing_ok=True)
    print(f"removed {_unit_path(args)}")
    return _run_all(commands[1:])


def _run_all(commands: Sequence[Sequence[str]]) -> int:
    for argv in commands:
        print(f"> {nssm.command_line(argv)}", flush=True)
        code = CommandRunner().run(argv)
        if code != 0:
            print(f"error: that command exited {code}; stopped here", file=sys.stderr)
            return EXIT_FAILED
    return EXIT_OK


# -- the command line ----------------------------------------------------------------------------------


def add_service_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser],
                       common: argparse.ArgumentParser, load: Loader) -> None:
    """Registers `service` and its actions on the CLI's subparsers; `load` reads -c like `run` does."""
    service = sub.add_parser("service", help="the OS service that runs the supervisor (Windows: NSSM; Linux: systemd)")
    actions = service.add_subparsers(dest="action", required=True)
    shared = argparse.ArgumentParser(add_help=False)
    shared.add_argument("--name", help=f"service name (default: {DEFAULT_NAME}; systemd: {systemd.DEFAULT_UNIT})")
    shared.add_argument("--nssm", help="nssm.exe to use (default: on PATH, then Chocolatey's); picks NSSM anywhere")
    shared.add_argument("--dry-run", action="store_true", help="print what would be done; run nothing")
    shared.add_argument("--user", action="store_true", help="systemd: a unit of the user's own manager")
    shared.add_argument("--systemctl", default="systemctl", help="systemd: the systemctl program")
    shared.add_argument("--unit-dir", help="systemd: where the unit file goes (default: the system's or user's)")
    install = actions.add_parser("install", parents=[common, shared],
                                 help="install the service (or update an installed one); does not start it")
    install.add_argument("--display-name", help="shown in services.msc (default: the name)")
    install.add_argument("--replace-legacy", action="store_true",
                         help="first stop and remove " + ", ".join(nssm.LEGACY_SERVICES) + " if present")
    install.set_defaults(func=partial(cmd_install, load=load))
    helps = {"remove": "stop and remove the service", "status": "the service's state (sc query)",
             "start": "start the service", "stop": "stop the service (graceful: Ctrl+C, then wait)"}
    for action, text in helps.items():
        actions.add_parser(action, parents=[shared], help=text).set_defaults(func=cmd_action)


def _systemd(args: argparse.Namespace) -> bool:
    return not is_windows() and args.nssm is None


def cmd_install(args: argparse.Namespace, *, load: Loader) -> int:
    if _systemd(args):
        return _systemd_install(args, load)
    args.name = args.name or DEFAULT_NAME
    refused = _refuse_off_windows(args)
    if refused is not None:
        return refused
    config = load(args)
    if config is None:
        return EXIT_FAILED
    launcher = nssm.default_launcher(Path(sysconfig.get_path("scripts")), sys.executable, windows=is_windows())
    target = nssm.target_for(config, name=args.name, display_name=args.display_name or args.name,
                             launcher=launcher)
    exe = _find_nssm(args)
    if exe is None:
        return EXIT_FAILED
    code = _perform(args, nssm.install_steps(exe, target, replace_legacy=args.replace_legacy))
    if code == EXIT_OK and not args.dry_run:
        print(f"installed {args.name}; start it with: orchestrator service start --name {args.name}")
    return code


def cmd_action(args: argparse.Namespace) -> int:
    if _systemd(args):
        return _systemd_action(args)
    args.name = args.name or DEFAULT_NAME
    refused = _refuse_off_windows(args)
    if refused is not None:
        return refused
    if args.action == "status":
        return _status(args)
    exe = _find_nssm(args)
    if exe is None:
        return EXIT_FAILED
    builders = {"remove": nssm.remove_steps, "start": nssm.start_steps, "stop": nssm.stop_steps}
    return _perform(args, builders[args.action](exe, args.name))


def _status(args: argparse.Namespace) -> int:
    steps = nssm.status_steps("sc", args.name)
    if args.dry_run:
        return _perform(args, steps)
    code = CommandRunner().run(steps[0].argv)
    if code != 0:
        print(f"{args.name}: not installed, or not readable (sc query exited {code})", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


def _perform(args: argparse.Namespace, steps: Sequence[nssm.Step]) -> int:
    if args.dry_run:
        print("\n".join(dry_run_script(steps)))
        return EXIT_OK
    return run_steps(steps, runner=CommandRunner())


def _refuse_off_windows(args: argparse.Namespace) -> int | None:
    if is_windows() or args.dry_run or args.nssm is not None:
        return None
    print("error: `orchestrator service` manages a Windows service through NSSM and works only on Windows;"
          " add --dry-run to see the commands it would run", file=sys.stderr)
    return EXIT_USAGE


def _find_nssm(args: argparse.Namespace) -> str | None:
    """The nssm program: --nssm (a path, or a name on PATH), else nssm on PATH, else Chocolatey's."""
    wanted: str | None = args.nssm
    if wanted is not None:
        found = str(Path(wanted).resolve()) if Path(wanted).is_file() else shutil.which(wanted)
        if found is None:
            print(f"error: --nssm {wanted}: no such program", file=sys.stderr)
        return found
    found = shutil.which("nssm") or (CHOCOLATEY_NSSM if Path(CHOCOLATEY_NSSM).is_file() else None)
    if found is None and args.dry_run:
        return "nssm"
    if found is None:
        print("error: nssm not found on PATH nor at " + CHOCOLATEY_NSSM +
              "; install it (choco install nssm) or pass --nssm C:\\path\\to\\nssm.exe", file=sys.stderr)
    return found
