"""env_ticker.py [--tick SECONDS] [--slow-stop SECONDS] NAME...: prints NAME=value for each (or
NAME unset), `ready`, then `tick N` every SECONDS (default: never) until SIGTERM/SIGINT, which it
answers by exiting 0 (after --slow-stop seconds: a service that takes its time to stop)."""

import os
import signal
import sys
import time


def bye(signum: int, frame: object) -> None:
    print(f"got signal {signum}", flush=True)
    time.sleep(slow_stop)
    sys.exit(0)


slow_stop = 0.0


signal.signal(signal.SIGTERM, bye)
signal.signal(signal.SIGINT, bye)
args = sys.argv[1:]
tick = 3600.0
while args[:1] in (["--tick"], ["--slow-stop"]):
    if args[0] == "--tick":
        tick = float(args[1])
    else:
        slow_stop = float(args[1])
    args = args[2:]
for name in args:
    print(f"{name}={os.environ[name]}" if name in os.environ else f"{name} unset", flush=True)
print("ready", flush=True)
count = 0
while True:
    time.sleep(tick)
    count += 1
    print(f"tick {count}", flush=True)
