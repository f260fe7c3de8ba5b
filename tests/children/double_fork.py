"""double_fork.py PIDFILE [--close-fds|--clear-env|--exit-soon]: starts a daemon the classic way,
writes its pid, then sleeps.

The daemon: fork, setsid, fork again, the middle process exits (the daemon is an orphan in a session
of its own, out of our process group and off our parent links). It ignores SIGTERM and SIGHUP, so
only a kill ends it. With --close-fds it also closes every inherited descriptor (our pipes included)
and calls setsid a second time after the second fork, as a careful daemon does. Its environment is
kept (the supervisor's markers with it), unless --clear-env: then it execs itself anew with an empty
environment, out of reach of any marker. With --exit-soon the daemon exits by itself after 2 s (its
exit status is then its new parent's to collect).
"""

import os
import signal
import sys
import time

pidfile = sys.argv[1]
close_fds = "--close-fds" in sys.argv
clear_env = "--clear-env" in sys.argv
DAEMON = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(3600)"
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # the service itself stops politely

if os.fork() == 0:  # the middle process
    os.setsid()
    if os.fork() == 0:  # the daemon
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
        if close_fds:
            os.setsid()  # fails (EPERM) only if we lead a group, which a second fork rules out
            os.closerange(0, 1024)
        with open(pidfile + ".tmp", "w") as f:
            f.write(str(os.getpid()))
        os.replace(pidfile + ".tmp", pidfile)
        if "--exit-soon" in sys.argv:
            time.sleep(2.0)  # long enough for the test to see it alive first
            os._exit(0)
        if clear_env:
            os.execve(sys.executable, [sys.executable, "-c", DAEMON], {})
        while True:
            time.sleep(3600)
    os._exit(0)
os.wait()  # the middle process, gone at once
while not os.path.exists(pidfile):
    time.sleep(0.01)
print("ready", flush=True)
while True:
    time.sleep(3600)
