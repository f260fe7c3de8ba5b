"""The children of `bench/compare.py`, the same for every manager; each stamps what it needs itself.

    writer LINES STAMP     write LINES numbered 100-byte lines (1000 per write), stamp the start time
    blink STAMPS           append the start time to STAMPS and exit at once (restart latency)
    stubborn STAMP         ignore SIGTERM and SIGINT, write STAMP.pid, stamp once the handler is set, sleep
    chatty SECONDS         100 lines of 90 bytes a second, one flushed write each (progress output)
"""

from __future__ import annotations

import os
import signal
import sys
import time


def _stamp(path: str, mode: str = "w") -> None:
    with open(path, mode) as f:
        f.write(f"{time.time()!r}\n")


def writer(lines: int, stamp: str) -> None:
    _stamp(stamp)
    pad = b"x" * 89 + b"\n"
    for start in range(0, lines, 1000):
        block = b"".join(b"%09d " % i + pad for i in range(start, min(start + 1000, lines)))
        view = memoryview(block)
        while view:
            view = view[os.write(1, view):]


def chatty(seconds: float) -> None:
    line = b"x" * 80
    t0 = time.monotonic()
    n = 0
    while (now := time.monotonic()) - t0 < seconds:
        os.write(1, b"%08d " % n + line + b"\n")
        n += 1
        time.sleep(max(0.0, t0 + n / 100 - now))


def main() -> None:
    kind, *args = sys.argv[1:]
    if kind == "writer":
        writer(int(args[0]), args[1])
    elif kind == "blink":
        _stamp(args[0], "a")
    elif kind == "stubborn":
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # PM2 stops with SIGINT
        with open(args[0] + ".pid", "w") as f:
            f.write(str(os.getpid()))
        _stamp(args[0])
        time.sleep(3600)
    elif kind == "chatty":
        chatty(float(args[0]))
    else:
        raise SystemExit(f"unknown child kind {kind!r}")


if __name__ == "__main__":
    main()
