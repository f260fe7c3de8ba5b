"""tick_lines.py N INTERVAL_S [PAD [GATE_AT GATE_FILE]]: prints `line 000000 xx..` N times, then sleeps.

The lines are INTERVAL_S apart. With GATE_AT and GATE_FILE it waits after GATE_AT lines until GATE_FILE
exists: a test can attach to the stream at a known point, however slow the machine is.
"""

import os
import signal
import sys
import time

n, interval = int(sys.argv[1]), float(sys.argv[2])
pad = "x" * (int(sys.argv[3]) if len(sys.argv) > 3 else 40)
gate_at, gate = (int(sys.argv[4]), sys.argv[5]) if len(sys.argv) > 5 else (-1, "")
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
for i in range(n):
    if i == gate_at:
        while not os.path.exists(gate):
            time.sleep(0.01)
    print(f"line {i:06d} {pad}", flush=True)
    time.sleep(interval)
print("done", flush=True)
while True:
    time.sleep(3600)
