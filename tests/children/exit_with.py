"""exit_with.py RC [AFTER_S]: prints a line, waits AFTER_S seconds (default 0), exits with RC."""

import sys
import time

rc = int(sys.argv[1])
after = float(sys.argv[2]) if len(sys.argv) > 2 else 0.0
print(f"exit_with {rc} after {after}", flush=True)
time.sleep(after)
sys.exit(rc)
