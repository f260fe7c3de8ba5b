"""Windows: prints `ready`, then answers CTRL_BREAK_EVENT (SIGBREAK) by saying so and exiting 0."""

import signal
import sys
import time


def bye(signum: int, frame: object) -> None:
    print(f"got {signal.Signals(signum).name}", flush=True)
    sys.exit(0)


signal.signal(signal.SIGBREAK, bye)
print("ready", flush=True)
while True:
    time.sleep(3600)
