"""Windows: ignore_break_tree.py PIDFILE: a child and a grandchild that both ignore CTRL_BREAK_EVENT (and
SIGINT/SIGTERM), so that only the Job Object can end them. Writes the grandchild's pid, prints `ready`."""

import os
import signal
import subprocess
import sys
import time

IGNORE = (
    "import signal, time\n"
    "for s in (signal.SIGBREAK, signal.SIGINT, signal.SIGTERM): signal.signal(s, signal.SIG_IGN)\n"
)

for sig in (signal.SIGBREAK, signal.SIGINT, signal.SIGTERM):
    signal.signal(sig, signal.SIG_IGN)
grandchild = subprocess.Popen([sys.executable, "-c", IGNORE + "print('grandchild', flush=True)\ntime.sleep(3600)"])
with open(sys.argv[1] + ".tmp", "w") as f:
    f.write(str(grandchild.pid))
os.replace(sys.argv[1] + ".tmp", sys.argv[1])
print("ready", flush=True)
while True:
    time.sleep(3600)
