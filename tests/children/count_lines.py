"""count_lines.py N [STREAM]: writes N numbered lines as fast as it can, then exits 0."""

import sys

n = int(sys.argv[1])
out = sys.stderr.buffer if len(sys.argv) > 2 and sys.argv[2] == "stderr" else sys.stdout.buffer
pad = b"x" * 80
for start in range(0, n, 1000):
    out.write(b"".join(b"%09d %s\n" % (i, pad) for i in range(start, min(n, start + 1000))))
out.flush()
