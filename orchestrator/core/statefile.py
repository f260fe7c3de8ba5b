"""The record of our live children on disk, so the next run can kill what a hard death left behind.

Rule: the record names the supervisor that wrote it (pid and process start time, which together no
recycled pid can match), and leftovers are reaped only when that supervisor is gone. A live writer's
children are never ours to kill, whatever shares the directory with it.
"""

from __future__ import annotations

import contextlib
import json
import os
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from orchestrator.platform.common import RUN_MARKER, process_start_time

__all__ = ["RUN_MARKER", "ChildRegistry", "Leftovers"]


@dataclass(frozen=True, slots=True)
class Leftovers:
    """What the previous run's record says: its id, its supervisor, the children it had."""

    run_id: str | None = None
    supervisor_pid: int | None = None
    supervisor_started: float | None = None  # psutil create_time of that supervisor
    children: list[dict[str, Any]] = field(default_factory=list)


class ChildRegistry:
    """`{state_dir}/children.json`: service -> {pid, create_time}, rewritten atomically on each change."""

    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / "children.json"
        self.run_id = uuid.uuid4().hex
        self._children: dict[str, dict[str, Any]] = {}
        self._me = {"supervisor_pid": os.getpid(), "supervisor_started": process_start_time(os.getpid())}

    def load_leftovers(self) -> Leftovers:
        """The previous run's record; the caller kills its children if its supervisor is gone, then `clear()`s."""
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return Leftovers()
        if not isinstance(data, dict):
            return Leftovers()
        children = data.get("children", {})
        records = [{"service": name, **rec} for name, rec in children.items() if isinstance(rec, dict)]
        run_id, pid, started = data.get("run_id"), data.get("supervisor_pid"), data.get("supervisor_started")
        return Leftovers(
            run_id=run_id if isinstance(run_id, str) else None,
            supervisor_pid=pid if isinstance(pid, int) and not isinstance(pid, bool) else None,
            supervisor_started=float(started) if isinstance(started, int | float) else None,
            children=records,
        )

    def add(self, service: str, pid: int, create_time: float) -> None:
        self._children[service] = {"pid": pid, "create_time": create_time}
        self._write()

    def remove(self, service: str) -> None:
        if self._children.pop(service, None) is not None:
            self._write()

    def clear(self) -> None:
        self._children.clear()
        self._write()

    def _write(self) -> None:
        # A failure here must not stop a child from running; the next write tries again.
        with contextlib.suppress(OSError):
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text(json.dumps({**self._me, "run_id": self.run_id, "children": self._children}))
            os.replace(tmp, self.path)
