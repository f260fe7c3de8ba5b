"""spawn_grandchild.py PIDFILE [--detach]: starts a sleeping grandchild, writes its pid, then sleeps.

With --detach the grandchild moves to a session of its own, as a daemon would, to check that a stop
still finds it through the parent links.
"""

import os
import signal
import subprocess
import sys
import time

signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # the child leaves at once; its grandchild would not
detach = "--detach" in sys.argv
grandchild = subprocess.Popen(
    [sys.executable, "-c", "import signal,time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(3600)"],
    start_new_session=detach,
)
with open(sys.argv[1] + ".tmp", "w") as f:
    f.write(str(grandchild.pid))
os.replace(sys.argv[1] + ".tmp", sys.argv[1])
print("ready", flush=True)
while True:
    time.sleep(3600)
