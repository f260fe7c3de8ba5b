"""`orchestrator reload` and `orchestrator check --diff`: a config reload through the running supervisor.

Both ask the supervisor, which re-reads its own config file and plans against its running services:
`reload` applies the plan (`--dry-run` only shows it), `check --diff` shows it. Output: one line per
service (with what happened to it), then global changes, warnings and failures. Exit 1 when the file
is invalid (each issue with file, line and key path), when something failed, or when no supervisor
answers.
"""

from __future__ import annotations

import argparse
import json
from functools import partial
from typing import TYPE_CHECKING, Any

from orchestrator.cli.control import with_client

if TYPE_CHECKING:
    from orchestrator.cli.client import ApiClient

__all__ = ["add_reload_parser", "check_diff", "render_result"]

EXIT_OK, EXIT_FAILED = 0, 1


def add_reload_parser(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    parser = sub.add_parser(
        "reload", parents=[common],
        help="re-read the config file in the running supervisor: what changed restarts or updates, the rest stays",
    )
    parser.add_argument("--dry-run", action="store_true", help="only show the plan (like check --diff)")
    parser.add_argument("--json", action="store_true", help="the API's answer as JSON")
    parser.set_defaults(func=partial(with_client, body=_reload))


def check_diff(args: argparse.Namespace) -> int:
    """`check --diff`: the plan a reload would carry out in the running supervisor (nothing changes)."""
    return with_client(args, body=_plan)


def _reload(args: argparse.Namespace, client: ApiClient) -> int:
    body = client.post("/api/reload", {"dry_run": "true"} if args.dry_run else None)
    if args.json:
        print(json.dumps(body, indent=2))
    else:
        print(render_result(body))
    return EXIT_OK if body.get("ok") else EXIT_FAILED


def _plan(args: argparse.Namespace, client: ApiClient) -> int:
    body = client.get("/api/reload/plan")
    print(f"plan of a reload of the supervisor at {client.base_url}:")
    print(render_result(body))
    return EXIT_OK


def render_result(body: dict[str, Any]) -> str:
    """A reload answer as text: the plan line by line, each service's outcome after an arrow."""
    plan = body.get("plan") or {}
    outcomes = body.get("outcomes") or {}
    lines = []
    for service in plan.get("services", []):
        outcome = outcomes.get(service["name"])
        lines.append(f"  {service['text']}" + (f" -> {outcome}" if outcome else ""))
    lines += [f"  {change['text']}" for change in plan.get("globals", [])]
    lines += [f"  warning: {text}" for text in plan.get("warnings", [])]
    lines += [f"  failed: {text}" for text in body.get("failures", [])]
    summary = plan.get("summary", "nothing planned")
    if body.get("dry_run"):
        lines.append(f"dry run, nothing changed: {summary}")
    else:
        lines.append(f"reload {'done' if body.get('ok') else 'FAILED'}: {summary}")
    return "\n".join(lines)
