"""The CLI commands that talk to a running supervisor: status, start, stop, restart, ignite, logs, events.

`add_control_parsers(sub, common)` registers them on main.py's subparsers. Each command finds its
supervisor (target.py: $ORCHESTRATOR_URL, the runtime file, the config's api.listen; the config read
leniently), makes one ApiClient and returns an exit code: 0, or 1 with a one-line `error: ...` on
stderr when the supervisor is not running or refused the request.
More commands (reload, ...) follow the same shape: a parser here or in their own module, and a body
`(args, client) -> int` run through `with_client`.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any

from orchestrator.cli.logs import add_logs_parser
from orchestrator.cli.tables import color_wanted, event_lines, service_line, status_table, system_lines

if TYPE_CHECKING:  # the client (http.client) is imported when a command runs, not for --help
    from orchestrator.cli.client import ApiClient

__all__ = ["Body", "add_control_parsers", "with_client"]

Body = Callable[[argparse.Namespace, "ApiClient"], int]


EXIT_OK, EXIT_FAILED = 0, 1
WATCH_EVERY_S = 2.0  # status --watch: as watch(1)


def with_client(args: argparse.Namespace, *, body: Body) -> int:
    """Find the supervisor, talk to it through `body`; failures become `error: ...` and exit 1."""
    from orchestrator.cli.client import ClientError
    from orchestrator.cli.target import check_identity, resolve_target  # here: --help needs no YAML

    try:
        target = resolve_target(getattr(args, "config", None))
        with target.client() as client:
            check_identity(target, client)
            return body(args, client)
    except ClientError as exc:
        print(f"error: {exc}", file=sys.stderr)
        for line in exc.details:
            print(f"  {line}", file=sys.stderr)
        return EXIT_FAILED


def add_control_parsers(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    def command(name: str, body: Body, help_text: str) -> argparse.ArgumentParser:
        parser = sub.add_parser(name, parents=[common], help=help_text)
        parser.set_defaults(func=partial(with_client, body=body))
        return parser

    status = command("status", _status, "every service's state, health and resource use (a table)")
    status.add_argument("names", nargs="*", metavar="NAME", help="only these services")
    status.add_argument("--json", action="store_true", help="the API's answer as JSON")
    status.add_argument("-w", "--watch", action="store_true",
                        help=f"redraw every {WATCH_EVERY_S:g} s until Ctrl+C, like watch(1)")
    for action, text in (("start", "start services (a fatal one gets its restart budget back)"),
                         ("stop", "stop services; returns once each one's process tree is gone"),
                         ("restart", "restart services")):
        parser = command(action, partial(_act, action=action), f"{text}; `all` for every service")
        parser.add_argument("names", nargs="+", metavar="NAME")
        if action == "restart":
            parser.add_argument("--drain", action="store_true",
                                help="ComfyUI: wait for its queue to empty first (refusing new prompts)")
    command("ignite", _ignite, "start every service that is not running")
    sig = command("signal", _signal, "send a signal to a service's process group (Windows: Ctrl+Break)")
    sig.add_argument("name", metavar="NAME")
    sig.add_argument("signal", metavar="SIG", help="HUP, INT, QUIT, TERM, KILL, USR1, USR2 (SIG prefix optional)")
    add_logs_parser(sub, common, with_client)
    events = command("events", _events, "the supervisor's recent events: state changes, restarts, warnings")
    events.add_argument("--since", type=int, default=0, metavar="ID", help="only events after this id")
    events.add_argument("--json", action="store_true", help="the API's answer as JSON")


def _status(args: argparse.Namespace, client: ApiClient) -> int:
    if args.watch and not args.json:
        return _watch(args, client)
    body = client.get("/api/status")
    services = body["services"]
    if args.names:
        _check_names(args.names, services)
        services = [s for s in services if s["name"] in args.names]
    if args.json:
        print(json.dumps({**body, "services": services}, indent=2))
        return EXIT_OK
    print(_status_text(body, services, color_wanted(no_color=args.no_color)))
    return EXIT_OK


def _status_text(body: dict[str, Any], services: list[dict[str, Any]], color: bool) -> str:
    return "\n".join([status_table(services, color=color), *system_lines(body.get("system") or {})])


def _watch(args: argparse.Namespace, client: ApiClient) -> int:
    """Redraw in place: home the cursor, overwrite each line and clear its rest, then clear below.
    Nothing is blanked first, so nothing flickers. A failed read is shown and retried, as watch does."""
    from orchestrator.cli.client import ClientError

    color = color_wanted(no_color=args.no_color)
    from orchestrator.platform.console import ansi_console

    tty = ansi_console(sys.stdout)  # a console that moves the cursor; else frames one after another
    while True:
        stamp = time.strftime("%H:%M:%S")
        try:
            body = client.get("/api/status")
            services = [s for s in body["services"] if not args.names or s["name"] in args.names]
            text = f"every {WATCH_EVERY_S:g} s, {stamp}  {client.base_url}\n" + _status_text(body, services, color)
        except ClientError as exc:
            text = f"every {WATCH_EVERY_S:g} s, {stamp}  error: {exc}"
        if tty:
            sys.stdout.write("\033[H" + "".join(f"{line}\033[K\n" for line in text.splitlines()) + "\033[J")
        else:
            sys.stdout.write(text + "\n\n")
        sys.stdout.flush()
        time.sleep(WATCH_EVERY_S)  # the redraw period itself, not a wait for a condition


def _act(args: argparse.Namespace, client: ApiClient, *, action: str) -> int:
    names = list(args.names)
    params = {"drain": "true"} if getattr(args, "drain", False) else None
    if len(names) == 1 and names != ["all"]:
        # One request (a stop returns as soon as the supervisor answers); only a 404 asks for the
        # names, to say them in the file's order as below.
        from orchestrator.cli.client import ClientError

        try:
            print(service_line(client.post(f"/api/system/{names[0]}/{action}", params)), flush=True)
        except ClientError as exc:
            if exc.status == 404:
                _check_names(names, client.get("/api/status")["services"])
            raise
        return EXIT_OK
    services = client.get("/api/status")["services"]
    if names == ["all"] and "all" not in {s["name"] for s in services}:
        # Stop dependants first: the reverse of the file's order, which the supervisor keeps.
        names = [s["name"] for s in services]
        names = names[::-1] if action == "stop" else names
    _check_names(names, services)  # all or nothing: no half-done typo
    for name in names:
        print(service_line(client.post(f"/api/system/{name}/{action}", params)), flush=True)
    return EXIT_OK


def _signal(args: argparse.Namespace, client: ApiClient) -> int:
    name = args.signal.upper()
    name = name if name.startswith("SIG") else f"SIG{name}"
    print(service_line(client.post(f"/api/system/{args.name}/signal", {"signal": name})), flush=True)
    return EXIT_OK


def _ignite(args: argparse.Namespace, client: ApiClient) -> int:
    print(status_table(client.post("/api/system/ignite")["services"]))
    return EXIT_OK


def _events(args: argparse.Namespace, client: ApiClient) -> int:
    body = client.get("/api/events", {"since": args.since})
    if args.json:
        print(json.dumps(body, indent=2))
        return EXIT_OK
    for line in event_lines(body["events"], color=color_wanted(no_color=args.no_color)):
        print(line)
    return EXIT_OK


def _check_names(names: list[str], services: list[dict[str, Any]]) -> None:
    from orchestrator.cli.client import ClientError

    known = [s["name"] for s in services]
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ClientError(f"no service named {', '.join(map(repr, unknown))}; known: {', '.join(known) or '(none)'}")
