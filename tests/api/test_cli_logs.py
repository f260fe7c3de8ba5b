"""`orchestrator logs` against a live `orchestrator run`: every service interleaved in time order with
aligned `name |` prefixes (stderr marked), both streams by default, --stdout/--stderr, -n per
service, --grep, --since, one name bare, colours on a terminal only, -f for all, and -f saying so
and exiting 1 when the supervisor goes away."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrator.cli.logs import parse_since
from tests.support.helpers import CHILDREN, POSIX_ONLY, read_file
from tests.support.terminal import output_on_a_terminal

PY = sys.executable
pytestmark = POSIX_ONLY  # SIGTERM to the supervisor, a pty for the terminal


def svc(name: str, tag: str) -> str:
    argv = ", ".join(f"'{a}'" for a in (PY, "-u", str(CHILDREN / "two_streams.py"), tag, 3, 0.1))
    return f"  {name}:\n    command: [{argv}]\n"


class Live:
    def __init__(self, tmp: Path) -> None:
        self.cfg = tmp / "supervisor.yaml"
        self.cfg.write_text("api: {listen: 127.0.0.1:0}\nlogs: {dir: ./logs, timestamps: true}\nstate_dir: ./state\n"
                            "services:\n" + svc("alpha", "a") + svc("b", "b"))
        self.out = tmp / "supervisor.out"
        with open(self.out, "wb") as out:
            self.proc = subprocess.Popen([PY, "-m", "orchestrator", "run", "-c", str(self.cfg)], stdout=out,
                                         stderr=subprocess.STDOUT, start_new_session=True)
        logs = [tmp / "logs" / f"{n}-stdout.log" for n in ("alpha", "b")]
        deadline = time.monotonic() + 20
        while not all("tick 0" in read_file(log) for log in logs):  # both have written all six lines
            assert self.proc.poll() is None and time.monotonic() < deadline, read_file(self.out)
            time.sleep(0.05)

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        environ = {k: v for k, v in os.environ.items() if k != "NO_COLOR"}
        out = subprocess.run([PY, "-m", "orchestrator", "logs", *args, "-c", str(self.cfg)], capture_output=True,
                             text=True, timeout=60, env=environ)
        assert out.returncode == 0, out.stderr
        return out


@pytest.fixture
def live(tmp_path: Path) -> Iterator[Live]:
    sup = Live(tmp_path)
    try:
        yield sup
    finally:
        if sup.proc.poll() is None:
            sup.proc.send_signal(signal.SIGTERM)
        assert sup.proc.wait(timeout=30) == 0


def body(line: str) -> str:
    """`alpha (err) | 2026-...+00:00 a err 1` -> `alpha (err) | a err 1` (the timestamp dropped)."""
    prefix, _, rest = line.partition("| ")
    return f"{prefix}| {rest.split(' ', 1)[1]}"


def test_all_services_interleaved_in_time_order_with_aligned_prefixes(live: Live) -> None:
    lines = live.cli().stdout.splitlines()
    stamps = [line.split("| ", 1)[1].split(" ", 1)[0] for line in lines]
    assert stamps == sorted(stamps) and len({line.index("|") for line in lines}) == 1  # time order, aligned
    texts = [body(line) for line in lines if " tick " not in line]
    kinds = (("alpha      ", "a", "out"), ("b          ", "b", "out"),
             ("alpha (err)", "a", "err"), ("b (err)    ", "b", "err"))
    assert sorted(texts) == sorted(f"{label} | {tag} {stream} {i}" for i in range(3) for label, tag, stream in kinds)
    # Within one service, stdout and stderr interleave as written: out 0, err 0, out 1 ...
    assert [t.split("| ")[1] for t in texts if t.startswith("alpha")] == [
        f"a {stream} {i}" for i in range(3) for stream in ("out", "err")]


def test_streams_lines_per_service_grep_since_and_one_name_bare(live: Live) -> None:
    def labels(*args: str) -> set[str]:
        return {line.split("|")[0].strip() for line in live.cli(*args).stdout.splitlines()}

    assert labels("--stderr") == {"alpha (err)", "b (err)"} and labels("--stdout") == {"alpha", "b"}
    two = [line.split(" ", 1)[0] for line in live.cli("-n", "2").stdout.splitlines()]
    assert sorted(two) == ["alpha", "alpha", "b", "b"]  # two per service, whatever the stream
    bare = live.cli("--grep", "err [12]$", "alpha").stdout.splitlines()
    assert [line.split(" ", 1)[1] for line in bare] == ["a err 1", "a err 2"]
    assert live.cli("--since", "1h").stdout.count("| ") >= 12
    assert live.cli("--since", "2999-01-01T00:00").stdout == ""


def test_colours_on_a_terminal_only(live: Live) -> None:
    shown = output_on_a_terminal([PY, "-m", "orchestrator", "logs", "--grep", " (out|err) 0$", "-c", str(live.cfg)])
    assert "\033[36malpha" in shown and "\033[31malpha (err)" in shown
    assert "\033[" not in live.cli("-n", "1").stdout
    assert "\033[" not in live.cli("-n", "1", "--no-color").stdout


def test_follow_all_then_the_supervisor_goes_away(live: Live) -> None:
    with subprocess.Popen([PY, "-m", "orchestrator", "logs", "-f", "-n", "0", "-c", str(live.cfg)],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as follower:
        assert follower.stdout is not None and follower.stderr is not None
        seen: set[str] = set()
        while seen != {"alpha", "b"}:  # new ticks of both, as they are written
            line = follower.stdout.readline()
            assert " tick " in line, line
            seen.add(line.split("|")[0].strip())
        live.proc.send_signal(signal.SIGTERM)
        assert live.proc.wait(timeout=30) == 0
        assert follower.wait(timeout=30) == 1
        assert follower.stderr.read().startswith("error: the supervisor at http://127.0.0.1:")


def test_since_reads_durations_and_times() -> None:
    assert parse_since("10m", now=1000.0) == 400.0
    assert parse_since("1h30m", now=10_000.0) == 10_000.0 - 5400
    with pytest.raises(Exception, match="expected a duration"):
        parse_since("yesterday")
