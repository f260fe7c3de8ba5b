"""Drain: before a planned restart, wait for ComfyUI's queue to empty (the proxy refuses new prompts).

The wait ends when `queue_running` and `queue_pending` are both empty, when nothing listens any more
(nothing left to drain), when `drain_timeout` passes (proceed anyway, and say so), or when the
service stops or restarts for another reason meanwhile (then there is nothing left to restart).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import anyio

from orchestrator.comfy.client import ComfyClient, ComfyError, ComfySample, QueueCounts
from orchestrator.config.spec import ComfySpec
from orchestrator.core.machine import ProcessState
from orchestrator.core.runner import ServiceRunner

__all__ = ["DRAIN_POLL_S", "DrainOutcome", "QueueWatch", "describe_queue", "wait_for_empty_queue"]

DRAIN_POLL_S = 0.5  # how often the queue is read while draining (a cheap GET on the same machine)
_DRAINABLE = frozenset({ProcessState.STARTING, ProcessState.RUNNING})


class QueueWatch(Protocol):
    """Where the drain reads the queue and leaves what it saw (comfy/model.py's ComfyUI)."""

    @property
    def sample(self) -> ComfySample: ...

    @property
    def timeout_s(self) -> float: ...

    def client(self, spec: ComfySpec, timeout_s: float | None = None) -> ComfyClient: ...

    def note_queue(self, queue: QueueCounts) -> None: ...


@dataclass(frozen=True, slots=True)
class DrainOutcome:
    proceed: bool  # False: the service stopped or restarted meanwhile; do not restart it now
    reason: str
    timed_out: bool = False


def describe_queue(queue: QueueCounts | None) -> str:
    if queue is None:
        return "queue unknown"
    return f"{queue.running} running, {queue.pending} pending"


async def wait_for_empty_queue(
    comfy: QueueWatch, runner: ServiceRunner, spec: ComfySpec, poll_s: float
) -> DrainOutcome:
    """Wait, showing the queue in the runner's status, until the drain may proceed (or must not)."""
    timeout_s = spec.drain_timeout_s
    spawns = runner.machine.spawns

    def moved_on(r: ServiceRunner) -> bool:
        return r.machine.spawns != spawns or r.state not in _DRAINABLE

    start = anyio.current_time()
    deadline = start + timeout_s
    last = comfy.sample.queue
    _show(runner, f"draining: {describe_queue(last)}")
    while True:
        if moved_on(runner):
            return DrainOutcome(False, f"drain ended: the service is {runner.state.value} now")
        now = anyio.current_time()
        try:
            queue = await comfy.client(spec, max(0.1, min(comfy.timeout_s, deadline - now))).queue()
        except ComfyError as exc:
            if exc.kind == "refused":
                return DrainOutcome(True, "nothing to drain: ComfyUI refuses connections")
        else:
            last = queue
            comfy.note_queue(queue)
            if not queue.busy:
                return DrainOutcome(True, f"queue empty after {anyio.current_time() - start:.1f}s of draining")
        now = anyio.current_time()
        if now >= deadline:
            return DrainOutcome(True, f"drain gave up after {timeout_s:g}s with {describe_queue(last)}; "
                                      f"restarting anyway", timed_out=True)
        _show(runner, f"draining: {describe_queue(last)}; restart at the latest in {deadline - now:.0f}s")
        await runner.wait_until(moved_on, min(poll_s, deadline - now))


def _show(runner: ServiceRunner, text: str) -> None:
    runner.draining = text
    runner.notify()
