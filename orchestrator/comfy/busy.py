"""Busy is not dead: which failed health probes of ComfyUI count. Pure: time comes in as `now`.

While a prompt runs, ComfyUI answers `/system_stats` slowly (it asks the GPU from its event loop),
so a probe that times out while the last known queue was non-empty is excused for `allowance_s`
from the first such timeout. A timeout while the queue is empty counts. (Only timeouts come here: a
refused connection or an error status always counts, decided by the health tracker.)
"""

from __future__ import annotations

__all__ = ["BusyAllowance"]


class BusyAllowance:
    def __init__(self, allowance_s: float) -> None:
        self.allowance_s = allowance_s
        self.excused_since: float | None = None  # the first timeout excused in the current streak

    def timeout_counts(self, queue_busy: bool, now: float) -> bool:
        """Whether a probe timeout counts against the service (False: excused, as if not probed)."""
        if not queue_busy:
            self.excused_since = None
            return True
        if self.excused_since is None:
            self.excused_since = now
        return now - self.excused_since >= self.allowance_s

    def succeeded(self) -> None:
        """A probe answered: the next busy streak gets the whole allowance again."""
        self.excused_since = None

    def busy_for(self, now: float) -> float:
        return 0.0 if self.excused_since is None else now - self.excused_since
