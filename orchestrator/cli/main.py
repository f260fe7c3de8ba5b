"""The `orchestrator` command. The only place that turns outcomes into exit codes.

Startup cost is paid on every call, so building the parser imports only argparse and the small
parser modules; each command imports what it needs when it runs (the loader, structlog and the
server stack for `run`; for `status`, the lenient config read and a socket: no YAML parser, no
http.client, no dataclasses; tests/integration/test_imports.py checks it), and only the parser of
the command it runs. Measured whole processes against 100 services, CPU time (issue 16; docs/cli.md):
python -c pass 28 ms, `status` 58 ms (124 ms before this round; 0.7 s wall at first).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Collection, Sequence
from typing import TYPE_CHECKING, Any, cast

from orchestrator import __version__
from orchestrator.cli.control import add_control_parsers
from orchestrator.cli.reload import add_reload_parser, check_diff
from orchestrator.cli.token import add_token_parser

if TYPE_CHECKING:
    from orchestrator.config.spec import Config

    _SubParsers = argparse._SubParsersAction[argparse.ArgumentParser]
else:
    _SubParsers = argparse._SubParsersAction

__all__ = ["main"]

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def _load(args: argparse.Namespace) -> Config | None:
    """The whole config, validated (run, check, service install); None after saying what is wrong."""
    from orchestrator.config.loader import load_config
    from orchestrator.config.locate import ConfigNotFound, find_config
    from orchestrator.errors import ConfigError

    try:
        path = find_config(getattr(args, "file", None) or args.config)
    except ConfigNotFound as exc:
        print(f"error: {exc}", file=sys.stderr)
        return None
    try:
        return load_config(path)
    except ConfigError as exc:
        print(f"error: invalid config {path}:", file=sys.stderr)
        for issue in exc.issues:
            print(f"  {issue}", file=sys.stderr)
        return None
    except OSError as exc:
        print(f"error: cannot read config {path}: {exc.strerror or exc}", file=sys.stderr)
        return None


def cmd_check(args: argparse.Namespace) -> int:
    config = _load(args)
    if config is None:
        return EXIT_FAILED
    from orchestrator.config.redact import shown_command, shown_url

    print(f"{config.path}: ok, {len(config.services)} service(s)")
    if args.diff:
        return check_diff(args)
    for spec in config.services.values():
        deps = ", ".join(f"{d.name}:{d.condition.value}" for d in spec.depends_on) or "-"
        health = shown_url(spec.health.url) if spec.health else "-"  # no userinfo, no query: may be secret
        print(f"  {spec.name}: {shown_command(spec.command)}  [restart {spec.restart.policy.value}"
              f" {_budget(spec.restart.attempts)}, depends_on {deps}, health {health}]")
    return EXIT_OK


def _budget(attempts: int | str) -> str:
    return f"x{attempts}" if isinstance(attempts, int) else str(attempts)  # x3, or unlimited


def cmd_config(args: argparse.Namespace) -> int:
    config = _load(args)
    if config is None:
        return EXIT_FAILED
    import json

    from orchestrator.cli.effective import effective

    data = effective(config)
    if args.json:
        print(json.dumps(data, indent=2))
    else:
        import yaml

        print(f"# {config.path}: after defaults and ${{VAR}} expansion; env values and api.token masked")
        print(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), end="")
    return EXIT_OK


def cmd_schema(args: argparse.Namespace) -> int:
    import json

    from orchestrator.config.schema import build_schema

    print(json.dumps(build_schema(), indent=2))
    return EXIT_OK


def cmd_completion(args: argparse.Namespace) -> int:
    from orchestrator.cli.completion import commands_and_options, print_services, script

    if args.services:
        return print_services(args.config)
    if args.shell is None:
        print("error: name a shell: orchestrator completion bash|zsh|powershell", file=sys.stderr)
        return EXIT_USAGE
    print(script(args.shell, commands_and_options(build_parser(None))), end="")
    return EXIT_OK


def cmd_run(args: argparse.Namespace) -> int:
    config = _load(args)
    if config is None:
        return EXIT_FAILED
    from orchestrator.app import claim_state_dir  # imported late: `check` must not pay for the server stack
    from orchestrator.cli.run import run_foreground
    from orchestrator.errors import OrchestratorError

    try:  # first of all: a second supervisor on this state directory must not even open its log
        lock = claim_state_dir(config)
    except OrchestratorError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    try:
        return run_foreground(config, verbose=args.verbose, config_arg=args.config, lock=lock,
                              debug=args.debug, log_format=args.log_format)
    finally:
        lock.release()


class _Unbuilt(argparse.ArgumentParser):
    """What the commands the command line does not name get as their parser: one for all of them, with
    nothing in it. Only their names and help are needed (`orchestrator -h`, an invalid-choice error).
    Building every command's parser took 14 ms of CPU per call (issue 16): each parser asks gettext
    for its three titles (53 lookups, each stat()ing for catalogs) and each add_argument makes a
    HelpFormatter (which asks the terminal its size) to check the argument."""

    def add_argument(self, *args: Any, **kwargs: Any) -> argparse.Action:
        return argparse.Action((), argparse.SUPPRESS)


class _Commands(_SubParsers):
    """Subparsers that build in full only the commands in `wanted` (None: all of them)."""

    wanted: Collection[str] | None = None
    _unbuilt: _Unbuilt | None = None

    def add_parser(self, name: str, **kwargs: Any) -> argparse.ArgumentParser:
        if self.wanted is None or name in self.wanted:
            return super().add_parser(name, **kwargs)
        # What argparse's add_parser records for a name and its help line, without building a parser.
        if self._unbuilt is None:
            self._unbuilt = _Unbuilt(add_help=False)
        if "help" in kwargs:
            self._choices_actions.append(self._ChoicesPseudoAction(name, (), kwargs["help"]))
        self._name_parser_map[name] = self._unbuilt
        return self._unbuilt


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The parser. With `argv`, only the commands it names are built in full (the one it runs; a word
    that is also a command's name builds that one too, harmlessly); None builds every command
    (completion lists every option)."""
    parser = argparse.ArgumentParser(
        prog="orchestrator", description="Run and control a supervisor of processes (docs/cli.md)."
    )
    parser.add_argument("--version", action="version", version=f"orchestrator {__version__}")
    sub = cast(_Commands, parser.add_subparsers(dest="command", required=True, action=_Commands))
    sub.wanted = None if argv is None else set(argv)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-c", "--config", help="config file (default: $ORCHESTRATOR_CONFIG or ./supervisor.yaml)")
    common.add_argument("--no-color", action="store_true", help="no colours (also: NO_COLOR set)")
    run = sub.add_parser("run", parents=[common], help="run the supervisor in the foreground")
    run.add_argument("-v", "--verbose", action="store_true",
                     help="echo the services' output to the console as `name | line` (stderr: `name !`)")
    run.add_argument("--debug", action="store_true", help="debug records in the supervisor's own log")
    run.add_argument("--log-format", choices=("console", "json"), default="console",
                     help="the console: short lines for a person (default), or JSON lines for a pipe")
    run.set_defaults(func=cmd_run)
    check = sub.add_parser("check", parents=[common], help="validate a config file")
    check.add_argument("file", nargs="?", metavar="FILE", help="the config file (as -c)")
    check.add_argument("--diff", action="store_true",
                       help="also show what a reload would change in the running supervisor")
    check.set_defaults(func=cmd_check)
    effective = sub.add_parser("config", parents=[common],
                               help="the config as it would run: defaults applied, ${VAR} expanded, secrets masked")
    effective.add_argument("file", nargs="?", metavar="FILE", help="the config file (as -c)")
    effective.add_argument("--json", action="store_true", help="JSON instead of YAML")
    effective.set_defaults(func=cmd_config)
    sub.add_parser("schema", help="the config's JSON Schema (for editors; also docs/config.schema.json)"
                   ).set_defaults(func=cmd_schema)
    completion = sub.add_parser("completion", parents=[common], help="a shell completion script: bash, zsh, powershell")
    completion.add_argument("shell", nargs="?", choices=("bash", "zsh", "powershell"))
    completion.add_argument("--services", action="store_true", help=argparse.SUPPRESS)  # the scripts' name source
    completion.set_defaults(func=cmd_completion)
    _add_service_parser(sub, common)
    add_control_parsers(sub, common)
    add_reload_parser(sub, common)
    add_token_parser(sub, common, _load)
    return parser


def _add_service_parser(sub: _Commands, common: argparse.ArgumentParser) -> None:
    """`service ...`'s own parser only when the command line has `service` in it: its module imports
    the NSSM code and, through it, the core and structlog (0.1 s of every other command otherwise)."""
    if sub.wanted is None or "service" in sub.wanted:
        from orchestrator.service.commands import add_service_parser

        add_service_parser(sub, common, _load)
    else:
        sub.add_parser("service", help="the OS service that runs the supervisor (Windows: NSSM; Linux: systemd)")


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser(argv).parse_args(argv)
    try:
        code: int = args.func(args)
    except KeyboardInterrupt:
        return 130
    return code
