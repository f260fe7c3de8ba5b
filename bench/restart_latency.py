"""Restart latency: how much time the supervisor adds between a child's exit and its next spawn.

A child that prints its own start time and exits at once is restarted 30 times (policy always,
cooldown 0, start period 0). The median interval between consecutive starts is compared, in the same
run, with a shell loop that respawns the same child with no supervisor at all.

    .venv/bin/python bench/restart_latency.py [--restarts 30]
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import anyio

from orchestrator.config.spec import Config, LogSpec, RestartPolicy, RestartSpec, ServiceSpec, StopSpec
from orchestrator.core.supervisor import Supervisor

CHILD = "import time; print(time.time(), flush=True)"


def intervals_ms(stamps: list[float]) -> list[float]:
    return [(b - a) * 1000 for a, b in itertools.pairwise(stamps)]


def shell_loop(n: int) -> list[float]:
    script = f'for i in $(seq {n + 1}); do "{sys.executable}" -c "{CHILD}"; done'
    out = subprocess.run(["/bin/sh", "-c", script], capture_output=True, text=True, check=True).stdout
    return [float(x) for x in out.split()]


async def supervised(n: int, tmp: Path) -> list[float]:
    spec = ServiceSpec(
        name="blink",
        command=(sys.executable, "-c", CHILD),
        restart=RestartSpec(RestartPolicy.ALWAYS, attempts=n, cooldown_s=0.0),
        stop=StopSpec(5.0),
        start_period_s=0.0,
    )
    cfg = Config(path=tmp / "x.yaml", logs=LogSpec(dir=tmp / "logs"), services={"blink": spec}, state_dir=tmp / "state")
    sup = Supervisor(cfg)
    async with anyio.create_task_group() as tg:
        await tg.start(sup.run)
        with anyio.fail_after(120):
            while sup.status("blink").state != "fatal":
                await anyio.sleep(0.05)
        await sup.shutdown()
    return [float(x) for x in (tmp / "logs" / "blink-stdout.log").read_text().split()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--restarts", type=int, default=30)
    n = parser.parse_args().restarts
    with tempfile.TemporaryDirectory() as tmp:
        shell = intervals_ms(shell_loop(n))
        ours = intervals_ms(anyio.run(supervised, n, Path(tmp)))
    med_shell, med_ours = statistics.median(shell), statistics.median(ours)
    print(f"restarts measured: {len(ours)} (supervisor), {len(shell)} (shell loop)")
    print(f"{'':24}{'median ms':>12}{'p90 ms':>10}")
    for label, xs in (("shell loop", shell), ("orchestrator", ours)):
        p90 = statistics.quantiles(xs, n=10)[-1]
        print(f"{label:24}{statistics.median(xs):12.1f}{p90:10.1f}")
    print(f"added by the supervisor: {med_ours - med_shell:+.1f} ms per restart (target: under 5 ms)")


if __name__ == "__main__":
    main()
