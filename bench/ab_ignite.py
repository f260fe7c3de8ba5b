"""The status-reader-during-ignite figure of bench/compare.py for two installs of orchestrator, side by side.

    bench/.peers/venv/bin/python bench/ab_ignite.py --old-python /tmp/old/bin/python [--rounds 4] [--read-every 0.01]

`--old-python` is an interpreter with another version of orchestrator installed (not editable:
`git archive main | tar -x -C /tmp/main-src && /tmp/old/bin/pip install /tmp/main-src`); the new one
is this venv's. Each round runs both versions (which goes first alternates), each one's ignite of
100 `sleep` services alone and with the StatusReader (bench/compare.py's `ignite_100`), and prints the
ratio, the reader's answers and their median and max latency; then the medians per version. What it
measured for issue 16 is in docs/benchmarks.md ("What it found and changed").
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import compare
import peers


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--old-python", required=True)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--read-every", type=float, default=0.010)
    args = parser.parse_args()
    compare.READ_EVERY_S = args.read_every
    pythons = {"old": args.old_python, "new": sys.executable}
    res: dict[str, list[tuple[float, int, float, float]]] = {"old": [], "new": []}
    peer = peers.Orchestrator()
    base = Path(tempfile.mkdtemp(dir=peers.PEERS))
    try:
        for rnd in range(args.rounds):
            for code in ["old", "new"] if rnd % 2 == 0 else ["new", "old"]:
                peers.PY = pythons[code]  # what Orchestrator.launch runs
                got: dict[bool, tuple[float | str, list[float]]] = {}
                for read in [False, True] if rnd % 2 == 0 else [True, False]:
                    d = base / f"{code}-{rnd}-{read}"
                    d.mkdir()
                    try:
                        got[read] = compare.ignite_100(peer, d, (compare.SLEEP, f"{86300 + rnd}"), read=read)
                    finally:
                        peer.shutdown()
                        shutil.rmtree(d, ignore_errors=True)
                (plain, _), (busy, lat) = got[False], got[True]
                if not (isinstance(plain, float) and isinstance(busy, float) and lat):
                    print(code, rnd, "failed:", plain, busy, flush=True)
                    continue
                row = (busy / plain, len(lat), statistics.median(lat), max(lat))
                res[code].append(row)
                print(f"{code} round {rnd}: ratio {row[0]:.2f}, {row[1]} answers, median {row[2]:.1f} ms, "
                      f"max {row[3]:.1f} ms (alone {plain:.2f} s, with the reader {busy:.2f} s)", flush=True)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    for code, rows in res.items():
        if rows:
            print(f"{code}: ratio {statistics.median(r[0] for r in rows):.2f} "
                  f"({min(r[0] for r in rows):.2f}-{max(r[0] for r in rows):.2f}), answers "
                  f"{min(r[1] for r in rows)}-{max(r[1] for r in rows)}, median answer "
                  f"{statistics.median(r[2] for r in rows):.1f} ms, max {statistics.median(r[3] for r in rows):.1f} ms")


if __name__ == "__main__":
    main()
