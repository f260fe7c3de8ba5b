"""The lifecycle table, driven with a fake clock: no processes, no sleeps."""

from __future__ import annotations

import pytest

from orchestrator.config.spec import UNLIMITED, RestartPolicy, RestartSpec, StopSpec, Unlimited
from orchestrator.core.machine import (
    Exited,
    Kill,
    ProcessMachine,
    ProcessState,
    Restart,
    SendSignal,
    Spawn,
    Spawned,
    SpawnFailed,
    Start,
    Stop,
    Timer,
    Unhealthy,
)
from orchestrator.errors import InvalidTransition

S = ProcessState


def machine(policy: RestartPolicy = RestartPolicy.ON_FAILURE, attempts: int | Unlimited = 3, cooldown: float = 30.0,
            reset_after: float = 300.0, start_period: float = 1.0) -> ProcessMachine:
    return ProcessMachine(RestartSpec(policy, attempts, cooldown, reset_after), StopSpec(10.0, "SIGTERM"),
                          start_period)


def running(m: ProcessMachine, now: float = 0.0, pid: int = 100) -> None:
    assert m.handle(Start(), now) == [Spawn()]
    assert m.handle(Spawned(pid), now) == []
    assert m.next_deadline() == now + m.start_period_s
    assert m.handle(Timer(), now + m.start_period_s) == []
    assert m.state is S.RUNNING


def test_start_spawns_and_becomes_running_after_start_period() -> None:
    m = machine()
    assert m.handle(Start(), 0.0) == [Spawn()]
    assert m.state is S.STARTING and m.pid is None
    m.handle(Spawned(42), 0.1)
    assert m.pid == 42
    assert m.handle(Timer(), 0.5) == []  # early wake-up: still starting
    assert m.state is S.STARTING
    m.handle(Timer(), 1.1)
    assert m.state is S.RUNNING and m.running_since == 1.1


def test_crash_loop_gives_up_after_exactly_attempts_restarts_cooldown_apart() -> None:
    m = machine(attempts=3, cooldown=30.0)
    running(m, 0.0)
    spawn_times = [0.0]
    now = 5.0
    for _ in range(3):
        m.handle(Exited(1), now)
        assert m.state is S.BACKOFF
        due = m.next_deadline()
        assert due is not None and due == spawn_times[-1] + 30.0
        assert m.handle(Timer(), due) == [Spawn()]
        m.handle(Spawned(1), due)
        spawn_times.append(due)
        m.handle(Timer(), due + 1.0)
        now = due + 2.0
    m.handle(Exited(1), now)
    assert m.state is S.FATAL
    assert "gave up after 3 restart(s)" in m.reason
    assert sum(m.restarts.values()) == 3
    assert m.next_deadline() is None


def test_long_lived_service_restarts_at_once_and_resets_budget() -> None:
    m = machine(attempts=1, cooldown=30.0, reset_after=60.0)
    running(m, 0.0)
    assert m.handle(Exited(1), 1000.0) == [Spawn()]  # ran 1000 s: no cooldown wait
    m.handle(Spawned(2), 1000.0)
    m.handle(Timer(), 1001.0)
    assert m.attempts == 1
    assert m.handle(Exited(1), 2000.0) == [Spawn()]  # ran > reset_after again: budget given back
    assert m.attempts == 1 and m.state is S.STARTING


def test_policy_never_and_on_failure_and_always() -> None:
    m = machine(RestartPolicy.NEVER)
    running(m)
    assert m.handle(Exited(1), 5.0) == []
    assert m.state is S.EXITED and m.last_exit == 1

    m = machine(RestartPolicy.ON_FAILURE)
    running(m)
    m.handle(Exited(0), 5.0)
    assert m.state is S.EXITED
    running(m, 10.0)
    m.handle(Exited(-9), 100.0)  # killed by a signal counts as a failure
    assert m.state in (S.STARTING, S.BACKOFF)
    assert "killed by signal 9" in m.reason

    m = machine(RestartPolicy.ALWAYS, cooldown=0.0)
    running(m)
    assert m.handle(Exited(0), 5.0) == [Spawn()]


def test_nonzero_exit_during_start_period_is_a_failed_start() -> None:
    m = machine(cooldown=0.0)
    m.handle(Start(), 0.0)
    m.handle(Spawned(1), 0.0)
    assert m.handle(Exited(1), 0.2) == [Spawn()]
    assert "during start period" in m.reason
    assert m.attempts == 1


def test_one_shot_job_exiting_0_within_start_period_ends_exited_not_restarted() -> None:
    m = machine(RestartPolicy.ON_FAILURE, cooldown=0.0)
    m.handle(Start(), 0.0)
    m.handle(Spawned(1), 0.0)
    assert m.handle(Exited(0), 0.05) == []  # a download that found its file: done, a success
    assert m.state is S.EXITED and m.last_exit == 0 and m.attempts == 0
    assert sum(m.restarts.values()) == 0 and m.next_deadline() is None


RESTARTED, EXITED, FATAL = "restarted", "exited", "fatal"


@pytest.mark.parametrize(("policy", "returncode", "inside", "outcome"), [
    # The table of docs/config.md: policy x exit kind x inside/after start_period.
    (RestartPolicy.ALWAYS, 0, True, RESTARTED),
    (RestartPolicy.ALWAYS, 0, False, RESTARTED),
    (RestartPolicy.ALWAYS, 1, True, RESTARTED),
    (RestartPolicy.ALWAYS, -9, False, RESTARTED),
    (RestartPolicy.ON_FAILURE, 0, True, EXITED),
    (RestartPolicy.ON_FAILURE, 0, False, EXITED),
    (RestartPolicy.ON_FAILURE, 1, True, RESTARTED),
    (RestartPolicy.ON_FAILURE, -15, True, RESTARTED),
    (RestartPolicy.ON_FAILURE, 2, False, RESTARTED),
    (RestartPolicy.ON_FAILURE, -9, False, RESTARTED),
    (RestartPolicy.NEVER, 0, True, EXITED),
    (RestartPolicy.NEVER, 0, False, EXITED),
    (RestartPolicy.NEVER, 1, True, FATAL),
    (RestartPolicy.NEVER, -9, True, FATAL),
    (RestartPolicy.NEVER, 1, False, EXITED),
    (RestartPolicy.NEVER, -9, False, EXITED),
])
def test_exit_outcome_by_policy_exit_kind_and_start_period(
    policy: RestartPolicy, returncode: int, inside: bool, outcome: str
) -> None:
    m = machine(policy, cooldown=0.0)
    if inside:
        m.handle(Start(), 0.0)
        m.handle(Spawned(1), 0.0)
    else:
        running(m)
    actions = m.handle(Exited(returncode), 0.5 if inside else 5.0)
    if outcome == RESTARTED:
        assert actions == [Spawn()] and m.attempts == 1 and m.restarts["exit"] == 1
    else:
        assert actions == [] and m.state is S(outcome) and m.attempts == 0
        assert ("policy never" in m.reason) == (outcome == FATAL)


def test_unlimited_attempts_never_give_up_and_keep_the_cooldown() -> None:
    m = machine(RestartPolicy.ALWAYS, attempts=UNLIMITED, cooldown=10.0)
    running(m, 0.0)
    spawned = 0.0
    for _ in range(500):
        m.handle(Exited(0), spawned + 1.0)
        assert m.state is S.BACKOFF and m.next_deadline() == spawned + 10.0  # spaced by the cooldown
        spawned += 10.0
        assert m.handle(Timer(), spawned) == [Spawn()]
        m.handle(Spawned(1), spawned)
    assert m.attempts == 500 and m.state is S.STARTING


def test_spawn_failure_is_fatal_at_once() -> None:
    m = machine()
    m.handle(Start(), 0.0)
    m.handle(SpawnFailed("executable not found: /nope"), 0.0)
    assert m.state is S.FATAL and m.reason == "executable not found: /nope"
    assert m.handle(Start(), 1.0) == [Spawn()]  # a start by hand tries again


def test_stop_signals_then_kills_at_timeout() -> None:
    m = machine()
    running(m, 0.0)
    assert m.handle(Stop(), 10.0) == [SendSignal("SIGTERM")]
    assert m.state is S.STOPPING and m.next_deadline() == 20.0
    assert m.handle(Timer(), 20.0) == [Kill()]
    m.handle(Exited(-9), 20.1)
    assert m.state is S.STOPPED and m.pid is None


def test_restart_by_hand_resets_attempts_and_spawns_after_exit() -> None:
    m = machine(cooldown=30.0)
    running(m, 0.0)
    m.handle(Exited(1), 5.0)  # backoff, one attempt spent
    assert m.attempts == 1
    assert m.handle(Restart(), 6.0) == [Spawn()]  # from backoff: at once
    assert m.attempts == 0
    m.handle(Spawned(3), 6.0)
    assert m.handle(Restart(), 7.0) == [SendSignal("SIGTERM")]
    assert m.handle(Exited(-15), 7.5) == [Spawn()]
    assert m.restarts["manual"] == 2


def test_unhealthy_restarts_through_the_same_budget() -> None:
    m = machine(attempts=1, cooldown=0.0)
    running(m, 0.0)
    assert m.handle(Unhealthy("unhealthy: timeout"), 50.0) == [SendSignal("SIGTERM")]
    assert m.handle(Exited(-15), 51.0) == [Spawn()]
    assert m.restarts["unhealthy"] == 1
    m.handle(Spawned(5), 51.0)
    m.handle(Timer(), 52.0)
    assert m.handle(Unhealthy("unhealthy: status 500"), 60.0) == [SendSignal("SIGTERM")]
    m.handle(Exited(-15), 61.0)
    assert m.state is S.FATAL and m.reason.startswith("unhealthy: status 500; gave up")


def test_requested_restart_does_not_spend_an_attempt() -> None:
    m = machine(attempts=0)
    running(m)
    assert m.handle(Exited(0, restart_requested="comfyui-manager restart"), 5.0) == [Spawn()]
    assert m.attempts == 0 and m.reason == "comfyui-manager restart"


def test_stop_in_backoff_is_immediate_and_stop_while_stopping_cancels_restart() -> None:
    m = machine()
    running(m)
    m.handle(Exited(1), 5.0)
    assert m.state is S.BACKOFF
    assert m.handle(Stop(), 6.0) == []
    assert m.state is S.STOPPED and m.next_deadline() is None

    running(m, 10.0)
    m.handle(Restart(), 20.0)
    m.handle(Stop(), 20.5)
    assert m.handle(Exited(-15), 21.0) == []
    assert m.state is S.STOPPED


@pytest.mark.parametrize(
    ("setup", "event"),
    [
        (lambda m: None, Stop()),
        (lambda m: None, Exited(0)),
        (lambda m: None, Spawned(1)),
        (running, Start()),
        (running, Spawned(2)),
    ],
)
def test_illegal_events_raise_and_change_nothing(setup: object, event: object) -> None:
    m = machine()
    setup(m)  # type: ignore[operator]
    before = (m.state, m.pid, m.attempts, m.reason, m.next_deadline())
    with pytest.raises(InvalidTransition) as info:
        m.handle(event, 99.0)  # type: ignore[arg-type]
    assert f"in state {before[0].value}" in str(info.value)
    assert (m.state, m.pid, m.attempts, m.reason, m.next_deadline()) == before


def test_pid_is_set_only_while_alive() -> None:
    m = machine(cooldown=0.0)
    running(m)
    assert m.pid is not None
    m.handle(Stop(), 2.0)
    assert m.pid is not None
    m.handle(Exited(0), 3.0)
    assert m.pid is None and m.state is S.STOPPED
