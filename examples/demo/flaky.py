"""Demo service: runs 5-20 s, then crashes with exit code 1, so the supervisor restarts it."""

from __future__ import annotations

import random
import sys
import time

from _common import exit_on_signals, say


def main() -> None:
    exit_on_signals("flaky")
    lifetime = random.uniform(5, 20)
    say(f"flaky: up, will crash in {lifetime:.0f} s")
    deadline = time.monotonic() + lifetime
    while time.monotonic() < deadline:
        time.sleep(min(1.0, deadline - time.monotonic()))
    say("flaky: crashing now (exit code 1)", err=True)
    sys.exit(1)


if __name__ == "__main__":
    main()
