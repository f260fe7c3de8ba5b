"""`orchestrator token`: print the API token, for the dashboard's token prompt (or a script's header).

The token is the config's `api.token`, else the file `{state_dir}/api-token` the supervisor created at
its first start (owner-only). Only the token goes to stdout, so `$(orchestrator token)` works; where
it came from goes to stderr.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # `orchestrator --version` must not pay for the spec's dataclasses
    from orchestrator.config.spec import Config

__all__ = ["add_token_parser"]


def add_token_parser(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser,
    load: Callable[[argparse.Namespace], Config | None],
) -> None:
    parser = sub.add_parser("token", parents=[common], help="print the API token (the dashboard asks for it)")
    parser.set_defaults(func=lambda args: _token(args, load))


def _token(args: argparse.Namespace, load: Callable[[argparse.Namespace], Config | None]) -> int:
    from orchestrator.api.token import read_token, token_path

    config = load(args)
    if config is None:
        return 1
    token = read_token(config.api, config.state_dir)
    if token is None:
        print(f"error: no token: api.token is not set and {token_path(config.state_dir)} does not exist "
              "(the supervisor creates it at its first start)", file=sys.stderr)
        return 1
    print(token)
    return 0
