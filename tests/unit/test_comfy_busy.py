"""Busy is not dead: which probe timeouts of ComfyUI count, on a fake clock (time is just a number)."""

from __future__ import annotations

import pytest

from orchestrator.comfy.busy import BusyAllowance


@pytest.mark.parametrize(
    ("history", "expected"),
    [
        # (now, queue busy) -> does this timeout count?
        pytest.param([(0, True), (100, True), (299.9, True)], [False, False, False],
                     id="timeouts-while-busy-are-excused-within-the-allowance"),
        pytest.param([(10, True), (309.9, True), (310, True), (400, True)], [False, False, True, True],
                     id="the-allowance-runs-from-the-first-excused-timeout"),
        pytest.param([(0, False)], [True], id="a-timeout-with-an-empty-queue-counts"),
        pytest.param([(0, True), (200, False), (250, True), (500, True), (550, True)],
                     [False, True, False, False, True], id="an-idle-timeout-ends-the-streak"),
    ],
)
def test_busy_allowance(history: list[tuple[float, bool]], expected: list[bool]) -> None:
    allowance = BusyAllowance(300.0)
    assert [allowance.timeout_counts(busy, now) for now, busy in history] == expected


def test_a_success_gives_the_next_busy_streak_the_whole_allowance() -> None:
    allowance = BusyAllowance(300.0)
    assert not allowance.timeout_counts(True, 0)
    assert allowance.busy_for(250) == 250
    allowance.succeeded()
    assert allowance.busy_for(250) == 0
    assert not allowance.timeout_counts(True, 290)
    assert not allowance.timeout_counts(True, 589)
    assert allowance.timeout_counts(True, 590)


def test_zero_allowance_counts_every_timeout() -> None:
    assert BusyAllowance(0.0).timeout_counts(True, 5)
