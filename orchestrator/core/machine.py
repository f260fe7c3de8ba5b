"""The lifecycle of one service as a pure state machine: events in, actions out, no I/O.

Rule: everything that decides a state transition lives in this file. The runner feeds events
(commands, child exits, timers) with the current monotonic time and carries out the actions.
Illegal events raise InvalidTransition and change nothing.

Exits (docs/config.md has the table): a failed start is a non-zero exit or a signal within
`start_period`; an exit 0 there is a one-shot job that found its work done, a success like any exit 0
(systemd's Restart=on-failure and Docker's on-failure agree). `always` restarts every exit, spending
the budget; `on-failure` restarts failures only; `never` restarts nothing, and a failed start ends
`fatal`, any other exit `exited`. `attempts: unlimited` never gives up.
"""

from __future__ import annotations

from collections import Counter, deque
from dataclasses import dataclass
from enum import StrEnum

from orchestrator.config.spec import RestartPolicy, RestartSpec, StopSpec
from orchestrator.errors import InvalidTransition

__all__ = [
    "KILL_RETRY_S",
    "Action",
    "Event",
    "Exited",
    "Kill",
    "NotStarted",
    "ProcessMachine",
    "ProcessState",
    "Restart",
    "SendSignal",
    "Spawn",
    "SpawnFailed",
    "Spawned",
    "Start",
    "Stop",
    "Timer",
    "Transition",
    "Unhealthy",
    "describe_exit",
]

KILL_RETRY_S = 5.0  # after a kill, how long before we try again (a process in D state may take a while)


class ProcessState(StrEnum):
    STOPPED = "stopped"
    STARTING = "starting"
    RUNNING = "running"
    BACKOFF = "backoff"
    STOPPING = "stopping"
    EXITED = "exited"
    FATAL = "fatal"


ALIVE_STATES = frozenset({ProcessState.STARTING, ProcessState.RUNNING, ProcessState.STOPPING})
IDLE_STATES = frozenset({ProcessState.STOPPED, ProcessState.EXITED, ProcessState.FATAL})


# Events: commands are imperative, facts are past tense.
@dataclass(frozen=True, slots=True)
class Start:
    reason: str = "started"


@dataclass(frozen=True, slots=True)
class Stop:
    reason: str = "stopped"


@dataclass(frozen=True, slots=True)
class Restart:
    reason: str = "restarted"


@dataclass(frozen=True, slots=True)
class Spawned:
    pid: int


@dataclass(frozen=True, slots=True)
class SpawnFailed:
    reason: str


@dataclass(frozen=True, slots=True)
class Exited:
    returncode: int | None  # negative: killed by that signal (POSIX convention)
    restart_requested: str | None = None  # the child asked to be restarted (ComfyUI-Manager): the reason


@dataclass(frozen=True, slots=True)
class Unhealthy:
    reason: str


@dataclass(frozen=True, slots=True)
class Timer:
    pass


@dataclass(frozen=True, slots=True)
class NotStarted:
    """A start that will not happen (a dependency failed): the idle service says why."""

    reason: str


Event = Start | Stop | Restart | Spawned | SpawnFailed | Exited | Unhealthy | Timer | NotStarted


@dataclass(frozen=True, slots=True)
class Spawn:
    pass


@dataclass(frozen=True, slots=True)
class SendSignal:
    signal: str


@dataclass(frozen=True, slots=True)
class Kill:
    pass


Action = Spawn | SendSignal | Kill


@dataclass(frozen=True, slots=True)
class Transition:
    at: float
    from_: ProcessState
    to: ProcessState
    reason: str


class _AfterStop(StrEnum):
    STOPPED = "stopped"
    RESTART = "restart"  # by hand: immediate, budget reset
    RETRY = "retry"  # a failure (unhealthy): counts an attempt, respects the cooldown
    FATAL = "fatal"


def describe_exit(returncode: int | None) -> str:
    if returncode is None:
        return "exited"
    if returncode < 0:
        return f"killed by signal {-returncode}"
    return f"exited with code {returncode}"


class ProcessMachine:
    """One service's lifecycle. `handle(event, now)` returns the actions to carry out."""

    def __init__(self, restart: RestartSpec, stop: StopSpec, start_period_s: float, history: int = 50) -> None:
        self.restart_spec = restart
        self.stop_spec = stop
        self.start_period_s = start_period_s
        self.state = ProcessState.STOPPED
        self.reason = "not started"
        self.pid: int | None = None
        self.attempts = 0  # consecutive restarts spent from the budget
        self.restarts: Counter[str] = Counter()  # every restart, by kind: exit, unhealthy, manual, requested
        self.last_exit: int | None = None
        self.spawns = 0
        self.spawned_at: float | None = None
        self.running_since: float | None = None
        self.history: deque[Transition] = deque(maxlen=history)
        self._deadline: float | None = None
        self._after_stop = _AfterStop.STOPPED
        self._killed = False

    def configure(self, restart: RestartSpec, stop: StopSpec, start_period_s: float) -> None:
        """Apply new supervision settings in place (config reload); the child is untouched."""
        self.restart_spec, self.stop_spec, self.start_period_s = restart, stop, start_period_s

    def next_deadline(self) -> float | None:
        return self._deadline

    # -- the transition table ------------------------------------------------------------------
    def handle(self, event: Event, now: float) -> list[Action]:
        s = self.state
        match event:
            case Start(reason) if s in IDLE_STATES or s is ProcessState.BACKOFF:
                self.attempts = 0
                return self._spawn(now, reason)
            case Start(reason) | Restart(reason) if s is ProcessState.STOPPING:
                self._after_stop, self.reason = _AfterStop.RESTART, reason
                return []
            case Restart(reason) if s in IDLE_STATES or s is ProcessState.BACKOFF:
                self.attempts = 0
                self.restarts["manual"] += 1
                return self._spawn(now, reason)
            case Restart(reason) if s in (ProcessState.STARTING, ProcessState.RUNNING):
                return self._begin_stop(now, _AfterStop.RESTART, reason)
            case Stop(reason) if s in (ProcessState.STARTING, ProcessState.RUNNING):
                return self._begin_stop(now, _AfterStop.STOPPED, reason)
            case Stop(reason) if s is ProcessState.STOPPING:
                self._after_stop, self.reason = _AfterStop.STOPPED, reason
                return []
            case Stop(reason) if s is ProcessState.BACKOFF:
                self._to(ProcessState.STOPPED, now, reason)
                return []
            case Spawned(pid) if s is ProcessState.STARTING and self.pid is None:
                self.pid, self.spawned_at = pid, now
                if self.start_period_s <= 0:
                    self._become_running(now)
                else:
                    self._deadline = now + self.start_period_s
                return []
            case SpawnFailed(reason) if s is ProcessState.STARTING and self.pid is None:
                self._to(ProcessState.FATAL, now, reason)
                return []
            case Exited() if s in ALIVE_STATES and self.pid is not None:
                return self._exited(event, now)
            case Unhealthy(reason) if s in (ProcessState.STARTING, ProcessState.RUNNING):
                return self._unhealthy(now, reason)
            case Timer():
                return self._timer(now)
            case NotStarted(reason) if s in IDLE_STATES:
                self.reason = reason
                return []
        raise InvalidTransition(s.value, type(event).__name__)

    # -- guards and helpers ----------------------------------------------------------------------
    def _to(self, state: ProcessState, now: float, reason: str, deadline: float | None = None) -> None:
        self.history.append(Transition(now, self.state, state, reason))
        self.state, self.reason, self._deadline = state, reason, deadline

    def _spawn(self, now: float, reason: str) -> list[Action]:
        self.spawns += 1
        self.pid = None
        self._killed = False
        self.running_since = None
        self._to(ProcessState.STARTING, now, reason)
        return [Spawn()]

    def _become_running(self, now: float) -> None:
        self.running_since = now
        self._to(ProcessState.RUNNING, now, "running")

    def _begin_stop(self, now: float, after: _AfterStop, reason: str) -> list[Action]:
        self._after_stop = after
        self._killed = False
        self._to(ProcessState.STOPPING, now, reason, now + self.stop_spec.timeout_s)
        return [SendSignal(self.stop_spec.signal)]

    def _wants_restart(self, returncode: int | None) -> bool:
        policy = self.restart_spec.policy
        if policy is RestartPolicy.NEVER:
            return False
        return policy is RestartPolicy.ALWAYS or returncode != 0

    def _budget_spent(self) -> bool:
        limit = self.restart_spec.attempts  # an int, or UNLIMITED
        return isinstance(limit, int) and self.attempts >= limit

    def _retry(self, now: float, kind: str, reason: str) -> list[Action]:
        """A failure that the restart policy answers: spend one attempt, or give up."""
        if self._budget_spent():
            spent = self.restart_spec.attempts
            self._to(ProcessState.FATAL, now, f"{reason}; gave up after {spent} restart(s)")
            return []
        self.attempts += 1
        self.restarts[kind] += 1
        # Consecutive spawns stay `cooldown` apart: a long-lived service restarts at once.
        last = self.spawned_at if self.spawned_at is not None else now
        due = max(now, last + self.restart_spec.cooldown_s)
        if due <= now:
            return self._spawn(now, reason)
        self.pid = None
        self._to(ProcessState.BACKOFF, now, reason, due)
        return []

    def _exited(self, event: Exited, now: float) -> list[Action]:
        was, self.last_exit, self.pid = self.state, event.returncode, None
        what = describe_exit(event.returncode)
        if was is ProcessState.STOPPING:
            return self._after_stopping(now, what)
        if event.restart_requested is not None:
            self.restarts["requested"] += 1
            return self._spawn(now, event.restart_requested)
        up_s = now - self.spawned_at if self.spawned_at is not None else 0.0
        if was is ProcessState.RUNNING and up_s >= self.restart_spec.reset_after_s:
            self.attempts = 0
        during_start = was is ProcessState.STARTING
        reason = f"{what} during start period" if during_start else what
        if not self._wants_restart(event.returncode):
            failed_start = during_start and event.returncode != 0
            end = ProcessState.FATAL if failed_start else ProcessState.EXITED  # policy never
            self._to(end, now, f"{reason} (policy never: not restarted)" if failed_start else reason)
            return []
        return self._retry(now, "exit", reason)

    def _after_stopping(self, now: float, what: str) -> list[Action]:
        after, reason = self._after_stop, self.reason
        if after is _AfterStop.RESTART:
            self.attempts = 0
            self.restarts["manual"] += 1
            return self._spawn(now, reason)
        if after is _AfterStop.RETRY:
            return self._retry(now, "unhealthy", reason)
        if after is _AfterStop.FATAL:
            self._to(ProcessState.FATAL, now, reason)
            return []
        self._to(ProcessState.STOPPED, now, f"{reason} ({what})")
        return []

    def _unhealthy(self, now: float, reason: str) -> list[Action]:
        if self.restart_spec.policy is RestartPolicy.NEVER:
            return []  # reported by the health loop; the policy says never restart
        up_s = now - self.spawned_at if self.spawned_at is not None else 0.0
        if up_s >= self.restart_spec.reset_after_s:
            self.attempts = 0
        if self._budget_spent():
            spent = self.restart_spec.attempts
            return self._begin_stop(now, _AfterStop.FATAL, f"{reason}; gave up after {spent} restart(s)")
        return self._begin_stop(now, _AfterStop.RETRY, reason)

    def _timer(self, now: float) -> list[Action]:
        if self._deadline is None or now < self._deadline:
            return []  # a stale wake-up
        match self.state:
            case ProcessState.STARTING if self.pid is not None:
                self._become_running(now)
            case ProcessState.BACKOFF:
                return self._spawn(now, self.reason)
            case ProcessState.STOPPING:
                self._killed = True
                self._deadline = now + KILL_RETRY_S
                return [Kill()]
            case _:
                self._deadline = None
        return []
