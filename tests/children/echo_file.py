"""echo_file.py PATH [LINE...]: prints each LINE, then every line appended to PATH (checked every 50 ms).

The test writes to PATH when it wants the child to say something, after the page under test opened.
Lines starting with `err:` go to stderr (without the prefix). Exits 0 on SIGTERM.
"""

import signal
import sys
import time
from pathlib import Path


def say(line: str) -> None:
    if line.startswith("err:"):
        print(line[4:], file=sys.stderr, flush=True)
    else:
        print(line, flush=True)


signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
path = Path(sys.argv[1])
for line in sys.argv[2:]:
    say(line)
seen = 0
while True:
    try:
        text = path.read_text()
    except FileNotFoundError:
        text = ""
    lines = text.split("\n")[:-1]  # complete lines only
    for line in lines[seen:]:
        say(line)
    seen = max(seen, len(lines))
    time.sleep(0.05)
