"""The `orchestrator` command. The only place that turns outcomes into exit codes."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from functools import partial
from pathlib import Path

import anyio

from orchestrator import __version__
from orchestrator.cli.control import add_control_parsers
from orchestrator.cli.reload import add_reload_parser, check_diff
from orchestrator.cli.token import add_token_parser
from orchestrator.config.loader import default_config_path, load_config
from orchestrator.config.redact import shown_command, shown_url
from orchestrator.config.spec import Config
from orchestrator.errors import ConfigError, OrchestratorError
from orchestrator.logs.setup import configure_logging
from orchestrator.platform.statelock import StateLock
from orchestrator.service.commands import add_service_parser

__all__ = ["main"]

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def _load(args: argparse.Namespace) -> Config | None:
    path = Path(args.config) if args.config else default_config_path(os.environ)
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
    print(f"{config.path}: ok, {len(config.services)} service(s)")
    if args.diff:
        return check_diff(args, _load)
    for spec in config.services.values():
        deps = ", ".join(f"{d.name}:{d.condition.value}" for d in spec.depends_on) or "-"
        health = shown_url(spec.health.url) if spec.health else "-"  # no userinfo, no query: may be secret
        print(f"  {spec.name}: {shown_command(spec.command)}  [restart {spec.restart.policy.value}"
              f" {_budget(spec.restart.attempts)}, depends_on {deps}, health {health}]")
    return EXIT_OK


def _budget(attempts: int | str) -> str:
    return f"x{attempts}" if isinstance(attempts, int) else str(attempts)  # x3, or unlimited


def cmd_run(args: argparse.Namespace) -> int:
    config = _load(args)
    if config is None:
        return EXIT_FAILED
    from orchestrator.app import claim_state_dir  # imported late: `check` must not pay for the server stack

    try:  # first of all: a second supervisor on this state directory must not even open its log
        lock = claim_state_dir(config)
    except OrchestratorError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    try:
        return _run_locked(args, config, lock)
    finally:
        lock.release()


def _run_locked(args: argparse.Namespace, config: Config, lock: StateLock) -> int:
    from orchestrator.app import run  # late, as above

    logs = config.logs
    configure_logging(logs.dir / "orchestrator.log", max_bytes=logs.max_size or 2**62,
                      backups=logs.backups, level=logging.DEBUG if args.verbose else logging.INFO)
    print(f"orchestrator {__version__}: {len(config.services)} service(s) from {config.path}", flush=True)
    print(f"logs: {logs.dir}", flush=True)
    try:
        anyio.run(partial(run, config, lock=lock, adopt_orphans=True,
                          announce=lambda url: print(f"api: {url}", flush=True)))
    except OrchestratorError as exc:  # the API cannot listen: nothing was started
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="orchestrator", description=__doc__)
    parser.add_argument("--version", action="version", version=f"orchestrator {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-c", "--config", help="config file (default: $ORCHESTRATOR_CONFIG or ./supervisor.yaml)")
    run = sub.add_parser("run", parents=[common], help="run the supervisor in the foreground")
    run.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    run.set_defaults(func=cmd_run)
    check = sub.add_parser("check", parents=[common], help="validate a config file")
    check.add_argument("--diff", action="store_true",
                       help="also show what a reload would change in the running supervisor")
    check.set_defaults(func=cmd_check)
    add_service_parser(sub, common, _load)
    add_control_parsers(sub, common, _load)
    add_reload_parser(sub, common, _load)
    add_token_parser(sub, common, _load)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code: int = args.func(args)
    except KeyboardInterrupt:
        return 130
    return code
