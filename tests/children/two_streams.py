"""two_streams.py TAG N [INTERVAL_S]: N times, `TAG out I` on stdout then `TAG err I` on stderr,
INTERVAL_S apart (default 0.05), then `TAG tick I` on stdout every INTERVAL_S until SIGTERM."""

import signal
import sys
import time

tag, n = sys.argv[1], int(sys.argv[2])
interval = float(sys.argv[3]) if len(sys.argv) > 3 else 0.05
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
for i in range(n):
    print(f"{tag} out {i}", flush=True)
    time.sleep(interval / 2)
    print(f"{tag} err {i}", file=sys.stderr, flush=True)
    time.sleep(interval / 2)
i = 0
while True:
    time.sleep(interval)
    print(f"{tag} tick {i}", flush=True)
    i += 1
