"""Demo service: a line a second on stdout, every fifth on stderr."""

from __future__ import annotations

import time

from _common import exit_on_signals, say


def main() -> None:
    exit_on_signals("ticker")
    tick = 0
    while True:
        tick += 1
        if tick % 5 == 0:
            say(f"ticker: tick {tick} (a line on stderr)", err=True)
        else:
            say(f"ticker: tick {tick}")
        time.sleep(1)


if __name__ == "__main__":
    main()
