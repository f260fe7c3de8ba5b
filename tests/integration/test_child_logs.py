"""Children's output through the supervisor into rotating files: nothing lost, duplicated or split."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from orchestrator.core.supervisor import Supervisor
from tests.support.helpers import child, config, service, wait_for

pytestmark = pytest.mark.anyio


def numbered_lines(logs: Path, name: str) -> list[bytes]:
    files = [*sorted(logs.glob(f"{name}.*"), key=lambda p: -int(p.suffix[1:])), logs / name]
    lines: list[bytes] = []
    for f in files:
        data = f.read_bytes()
        assert data.endswith(b"\n"), f"{f} does not end on a line boundary"
        lines.extend(data.splitlines())
    return lines


async def test_200k_lines_across_rotations_arrive_once_in_order(tmp_path: Path) -> None:
    n = 200_000  # 91 bytes a line: about 18 MB, rotated at 1 MiB
    out = service("out", child("count_lines.py", n), policy="never", start_period_s=0)
    err = service("err", child("count_lines.py", n, "stderr"), policy="never", start_period_s=0)
    cfg = config(tmp_path, out, err, max_size=1024 * 1024, backups=100)
    sup = Supervisor(cfg)
    async with anyio.create_task_group() as tg:
        await tg.start(sup.run)
        await wait_for(lambda: all(s.state == "exited" for s in sup.statuses()), 60, "both writers done")
        await sup.shutdown()
    logs = tmp_path / "logs"
    for name in ("out-stdout.log", "err-stderr.log"):
        assert len(list(logs.glob(f"{name}.*"))) >= 10
        lines = numbered_lines(logs, name)
        assert len(lines) == n
        assert [int(line[:9]) for line in lines] == list(range(n))
    assert sup.runner("out").stdout.bytes_written == n * 91
    assert sup.runner("out").stdout.bytes_dropped == 0
