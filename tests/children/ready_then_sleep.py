"""Prints `ready`, then sleeps until SIGTERM/SIGINT, which it answers by exiting 0 after saying so."""

import signal
import sys
import time


def bye(signum: int, frame: object) -> None:
    print(f"got signal {signum}", flush=True)
    sys.exit(0)


signal.signal(signal.SIGTERM, bye)
signal.signal(signal.SIGINT, bye)
print("ready", flush=True)
while True:
    time.sleep(3600)
