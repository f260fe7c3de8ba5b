"""Busy is not dead: which failed probes of ComfyUI count, on a fake clock (time is just a number)."""

from __future__ import annotations

import pytest

from orchestrator.comfy_busy import BusyAllowance


@pytest.mark.parametrize(
    ("history", "expected"),
    [
        # (now, kind, queue busy) -> counts?
        pytest.param([(0, "timeout", True), (100, "timeout", True), (299.9, "timeout", True)],
                     [False, False, False], id="timeouts-while-busy-are-excused-within-the-allowance"),
        pytest.param([(10, "timeout", True), (309.9, "timeout", True), (310, "timeout", True)],
                     [False, False, True], id="the-allowance-runs-from-the-first-excused-timeout"),
        pytest.param([(0, "refused", True), (1, "error", True)], [True, True],
                     id="refused-and-errors-always-count"),
        pytest.param([(0, "timeout", False)], [True], id="a-timeout-with-an-empty-queue-counts"),
        pytest.param([(0, "timeout", True), (200, "timeout", False), (250, "timeout", True), (500, "timeout", True)],
                     [False, True, False, False], id="an-idle-timeout-ends-the-streak"),
        pytest.param([(0, "timeout", True), (200, "refused", True), (300, "timeout", True)],
                     [False, True, True], id="a-refusal-does-not-extend-the-streak"),
    ],
)
def test_busy_allowance(history: list[tuple[float, str, bool]], expected: list[bool]) -> None:
    allowance = BusyAllowance(300.0)
    assert [allowance.counts(kind, busy, now) for now, kind, busy in history] == expected


def test_a_success_gives_the_next_busy_streak_the_whole_allowance() -> None:
    allowance = BusyAllowance(300.0)
    assert not allowance.counts("timeout", True, 0)
    assert allowance.busy_for(250) == 250
    allowance.succeeded()
    assert allowance.busy_for(250) == 0
    assert not allowance.counts("timeout", True, 290)
    assert not allowance.counts("timeout", True, 589)
    assert allowance.counts("timeout", True, 590)


def test_zero_allowance_counts_every_timeout() -> None:
    allowance = BusyAllowance(0.0)
    assert allowance.counts("timeout", True, 5)
