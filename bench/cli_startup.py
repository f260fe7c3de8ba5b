"""Wall time of whole CLI processes: `python -c pass`, `orchestrator --version`, `orchestrator status`
(against a live supervisor of one service), median and min-max of N runs each, interleaved so that
load from elsewhere hits all three alike.

    .venv/bin/python bench/cli_startup.py [N]        (default 20)

`status` within 100 ms of `python -c pass` is the target (issue 16); print-only, never a test.
"""

from __future__ import annotations

import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHILD = ROOT / "tests" / "children" / "ready_then_sleep.py"


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    program = str(Path(sys.executable).parent / "orchestrator")
    with tempfile.TemporaryDirectory() as tmp:
        cfg = Path(tmp) / "supervisor.yaml"
        cfg.write_text(f"api: {{listen: 127.0.0.1:0}}\nstate_dir: ./state\nlogs: {{dir: ./logs}}\nservices:\n"
                       f"  web: {{command: ['{sys.executable}', '-u', '{CHILD}']}}\n")
        out = Path(tmp) / "out"
        with open(out, "wb") as f:
            sup = subprocess.Popen([program, "run", "-c", str(cfg)], stdout=f, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 30
            while "api: " not in out.read_text():
                if time.monotonic() > deadline or sup.poll() is not None:
                    raise SystemExit(out.read_text())
                time.sleep(0.05)
            commands = {
                "python -c pass": [sys.executable, "-c", "pass"],
                "orchestrator --version": [program, "--version"],
                "orchestrator status": [program, "status", "-c", str(cfg)],
            }
            times: dict[str, list[float]] = {name: [] for name in commands}
            for _ in range(n):
                for name, argv in commands.items():
                    start = time.perf_counter()
                    subprocess.run(argv, stdout=subprocess.DEVNULL, check=True)
                    times[name].append(time.perf_counter() - start)
        finally:
            sup.send_signal(signal.SIGTERM)
            sup.wait(30)
    for name, ts in times.items():
        print(f"{name:24} median {statistics.median(ts) * 1000:6.0f} ms   "
              f"min {min(ts) * 1000:5.0f}   max {max(ts) * 1000:5.0f}   ({n} runs)")


if __name__ == "__main__":
    main()
