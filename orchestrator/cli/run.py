"""`orchestrator run`: the supervisor in the foreground, with a start banner and the runtime file.

The banner says where things are and what to type in another terminal, with the exact program and
`-c` this run was started with, so the commands reach this supervisor and not the one of whatever
`./supervisor.yaml` happens to be (in this repository, the Windows production config).
The runtime file (runtime.py) is written once the API listens, rewritten if a reload moves it, and
removed when the run ends, however it ends short of a hard kill.
"""

from __future__ import annotations

import logging
import os
import shlex
import sys
from functools import partial
from pathlib import Path

import anyio

from orchestrator import __version__
from orchestrator.cli.runtime import Runtime, remove_runtime, write_runtime
from orchestrator.config.spec import Config
from orchestrator.core.runner import ServiceRunner
from orchestrator.errors import OrchestratorError
from orchestrator.logs.setup import configure_logging
from orchestrator.platform.console import ansi_console
from orchestrator.platform.statelock import StateLock

__all__ = ["banner_commands", "cli_prefix", "run_foreground"]

EXIT_OK, EXIT_FAILED = 0, 1


def run_foreground(config: Config, *, verbose: bool, config_arg: str | None, lock: StateLock,
                   debug: bool = False, log_format: str = "console") -> int:
    """`verbose`: echo the children's output to the console too, each line as `name | line`."""
    from orchestrator.app import build_system, run

    logs = config.logs
    width = max((len(n) for n in config.services), default=1)
    configure_logging(logs.dir / "orchestrator.log", max_bytes=logs.max_size or 2**62, backups=logs.backups,
                      level=logging.DEBUG if debug else logging.INFO, console_format=log_format,
                      name_width=width)
    print(f"orchestrator {__version__}: {len(config.services)} service(s) from {config.path}", flush=True)
    print(f"logs: {logs.dir}", flush=True)
    announced: list[str] = []

    def announce(url: str) -> None:
        print(f"api: {url}", flush=True)
        _write(config, url)
        if not announced:
            print(f"dashboard: {url}/", flush=True)
            program, suffix = cli_prefix(config.path, explicit=config_arg is not None)
            commands = banner_commands(program, suffix, config)
            print("in another terminal:\n" + "\n".join(f"  {c}" for c in commands), flush=True)
        announced.append(url)

    async def main() -> None:
        system = build_system(config)  # in the loop: the supervisor reads its clock
        if verbose:
            system.supervisor.add_runner_hook(partial(_echo, width=width, color=ansi_console(sys.stdout)))
        await run(config, system=system, lock=lock, adopt_orphans=True, announce=announce)

    try:
        anyio.run(main)
    except OrchestratorError as exc:  # the API cannot listen: nothing was started
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    finally:
        remove_runtime(config.state_dir, os.getpid())
    return EXIT_OK


def cli_prefix(config_path: Path, *, explicit: bool) -> tuple[str, str]:
    """How to call this CLI on this config from the current folder: the program, and `-c FILE` unless
    the CLI would find this config by itself (./supervisor.yaml, nothing else said)."""
    argv0 = Path(sys.argv[0])
    if argv0.name.startswith("orchestrator") and argv0.suffix not in (".py", ".pyc"):
        program = _shown(argv0) if argv0.parent != Path() else argv0.name
    else:  # python -m orchestrator
        program = f"{_shown(Path(sys.executable))} -m orchestrator"
    env_config = os.environ.get("ORCHESTRATOR_CONFIG")
    default = not explicit and not env_config and config_path == Path("supervisor.yaml").absolute()
    return program, "" if default else f" -c {shlex.quote(_shown(config_path))}"


def banner_commands(program: str, suffix: str, config: Config) -> list[str]:
    """The commands to try next, with a real service name (the first one) where one is needed."""
    name = next(iter(config.services), "NAME")
    return [f"{program} {command}{suffix}" for command in
            ("status", "logs -f", f"restart {name}", "events")]


_PALETTE = ("36", "33", "32", "35", "34", "96", "93", "92", "95", "94")


def _echo(runner: ServiceRunner, *, width: int, color: bool) -> None:
    """Print each complete line of the runner's stdout and stderr as `name | line` (honcho's way).
    Runs on the event loop (the sinks' listeners): a terminal that stops reading stalls the supervisor,
    which is why this is only with -v."""
    code = _PALETTE[sum(map(ord, runner.name)) % len(_PALETTE)]  # stable across runs, unlike hash()
    for sink, mark in ((runner.stdout, "|"), (runner.stderr, "!")):
        prefix = f"{runner.name.ljust(width)} {mark}"
        prefix = f"\033[{code}m{prefix}\033[0m " if color else prefix + " "
        sink.add_listener(_LineEcho(prefix))


class _LineEcho:
    """Bytes in, whole lines out: a line split across two reads is printed once, when complete."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.partial = b""

    def __call__(self, data: bytes) -> None:
        *lines, self.partial = (self.partial + data).split(b"\n")
        if lines:
            text = "".join(f"{self.prefix}{line.decode('utf-8', 'replace').rstrip(chr(13))}\n" for line in lines)
            sys.stdout.write(text)
            sys.stdout.flush()


def _write(config: Config, url: str) -> None:
    try:
        write_runtime(config.state_dir, Runtime(url=url, pid=os.getpid(), config=str(config.path),
                                                version=__version__))
    except OSError as exc:  # the CLI can still use api.listen; say why it may not find us
        print(f"warning: cannot write the runtime file in {config.state_dir}: {exc.strerror or exc}",
              file=sys.stderr, flush=True)


def _shown(path: Path) -> str:
    try:
        return str(path.absolute().relative_to(Path.cwd()))
    except ValueError:
        return str(path)
