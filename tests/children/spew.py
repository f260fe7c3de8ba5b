"""spew.py MIB [THEN_FILE]: writes MIB mebibytes of `x` with no newline, in 1 MiB writes; then, once
THEN_FILE exists, a newline and `after`; then sleeps until killed."""

import os
import sys
import time

chunk = b"x" * (1 << 20)
out = sys.stdout.buffer
for _ in range(int(sys.argv[1])):
    out.write(chunk)
out.flush()
if len(sys.argv) > 2:
    while not os.path.exists(sys.argv[2]):
        time.sleep(0.01)
    out.write(b"\nafter\n")
    out.flush()
while True:
    time.sleep(3600)
