"""What reading a hostile or huge config costs: time and peak RSS of `load_config` in a fresh process.

Cases: the billion-laughs alias bomb (`--bomb LEVELS`: each level an anchored list of 9 aliases to the
one before, 9**LEVELS nodes once expanded) and a config of N one-line services (`--services N`,
about 72 bytes each: 14,000 is just under 1 MiB, 60,000 is 4.4 MB). Each case runs in its own
process, so the peak RSS is that case's. Run it against another tree with PYTHONPATH to compare:

    .venv/bin/python bench/config_load.py --bomb 6 --bomb 7 --services 14000 --services 60000
    PYTHONPATH=/tmp/main .venv/bin/python bench/config_load.py --bomb 6   # main, from `git archive`
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def bomb_text(levels: int) -> str:
    lines = ["x-l0: &l0 [" + ", ".join(["lol"] * 9) + "]"]
    lines += [f"x-l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 9) + "]" for i in range(1, levels)]
    return "\n".join(lines) + "\n"


def services_text(count: int) -> str:
    rows = (f"  s{i}: {{command: [python, -m, http.server, '{i}'], autostart: false}}\n" for i in range(count))
    return "services:\n" + "".join(rows)


def measure(path: str) -> None:
    """In the child process: load once, print bytes, seconds, peak RSS and the outcome."""
    from orchestrator.config.loader import load_config
    from orchestrator.errors import ConfigError

    started = time.perf_counter()
    try:
        load_config(path, {})
        outcome = "accepted"
    except ConfigError as exc:
        outcome = "refused: " + str(exc.issues[0])[-110:]
    seconds = time.perf_counter() - started
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{Path(path).stat().st_size:>10,} bytes {seconds:8.3f} s {peak_mb:7.0f} MB peak  {outcome}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bomb", type=int, action="append", default=[], metavar="LEVELS")
    parser.add_argument("--services", type=int, action="append", default=[], metavar="N")
    parser.add_argument("--measure", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        measure(args.measure)
        return
    cases = [(f"bomb {n}", bomb_text(n)) for n in args.bomb] + [(f"services {n}", services_text(n))
                                                                  for n in args.services]  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        for name, text in cases:
            path = Path(tmp) / "supervisor.yaml"
            path.write_text(text)
            print(f"{name:>16}: ", end="", flush=True)
            subprocess.run([sys.executable, __file__, "--measure", str(path)], check=True)


if __name__ == "__main__":
    main()
