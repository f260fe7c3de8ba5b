"""Ignores SIGTERM (so only a kill stops it), prints `ready`, sleeps."""

import signal
import time

signal.signal(signal.SIGTERM, signal.SIG_IGN)
print("ready", flush=True)
while True:
    time.sleep(3600)
