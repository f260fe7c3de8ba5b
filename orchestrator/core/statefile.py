"""The record of our live children on disk, so the next run can kill what a hard death left behind."""

from __future__ import annotations

import contextlib
import json
import os
import uuid
from pathlib import Path
from typing import Any

from orchestrator.platform.common import RUN_MARKER

__all__ = ["RUN_MARKER", "ChildRegistry"]


class ChildRegistry:
    """`{state_dir}/children.json`: service -> {pid, create_time}, rewritten atomically on each change."""

    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / "children.json"
        self.run_id = uuid.uuid4().hex
        self._children: dict[str, dict[str, Any]] = {}

    def load_leftovers(self) -> tuple[str | None, list[dict[str, Any]]]:
        """The previous run's id and the children it recorded; the caller kills them, then `clear()`s."""
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None, []
        if not isinstance(data, dict):
            return None, []
        children = data.get("children", {})
        records = [{"service": name, **rec} for name, rec in children.items() if isinstance(rec, dict)]
        run_id = data.get("run_id")
        return (run_id if isinstance(run_id, str) else None), records

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
            tmp.write_text(json.dumps(
                {"supervisor_pid": os.getpid(), "run_id": self.run_id, "children": self._children}
            ))
            os.replace(tmp, self.path)
