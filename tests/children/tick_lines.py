"""tick_lines.py N INTERVAL_S [PAD]: prints `line 000000 xx..` N times, INTERVAL_S apart, then sleeps."""

import signal
import sys
import time

n, interval = int(sys.argv[1]), float(sys.argv[2])
pad = "x" * (int(sys.argv[3]) if len(sys.argv) > 3 else 40)
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
for i in range(n):
    print(f"line {i:06d} {pad}", flush=True)
    time.sleep(interval)
print("done", flush=True)
while True:
    time.sleep(3600)
