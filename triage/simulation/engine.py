"""The discrete-event core: one reporting list, its readers' rosters, one ordering policy (SimPy).

Studies arrive at given times into one shared list. Each reader is one SimPy process that
follows its roster: while on duty it takes the first study of the list, reads it, and takes the
next; a read starts only while its reader is on duty (a read begun before the end of a shift
runs to its end). The list is ordered as the worklist orders it
(:func:`worklist.reading.queries.worklist_page`): the current class first, then the ordering
deadline (:func:`triage.policy.ordering_deadline`: the due time, arrival plus the target of the
study's class before waiting, or the moment waiting raised the study into its current class if
that came first), then the arrival.

The current class is the study's base class, raised by waiting when the policy's escalation
applies (``steps``). Studies of one base class keep their arrival order; within a base class the
oldest study is the most escalated, and among studies of one base and current class the
ordering deadline is the arrival plus a constant, so the oldest is also the first due. Only the
head of each base class can be the next study to read: picking one is at most three
comparisons.
"""

from __future__ import annotations

import logging
import math
from collections import deque
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np
import simpy

__all__ = ["EscalationSteps", "QueueResult", "simulate_queue"]

logger = logging.getLogger(__name__)

EscalationSteps = tuple[tuple[tuple[float, int], ...], ...]
"""Per base class (index rank - 1): ``(age_min, rank)`` steps, ascending in age."""


@dataclass(frozen=True)
class QueueResult:
    """When each study's read started and ended (NaN: never read) and who read it (-1: nobody)."""

    start: np.ndarray[Any, np.dtype[np.float64]]
    end: np.ndarray[Any, np.dtype[np.float64]]
    reader: np.ndarray[Any, np.dtype[np.int32]]


def simulate_queue(
    arrival: np.ndarray[Any, np.dtype[np.float64]],
    read: np.ndarray[Any, np.dtype[np.float64]],
    base_rank: np.ndarray[Any, np.dtype[np.int8]],
    due: np.ndarray[Any, np.dtype[np.float64]],
    intervals: Sequence[Sequence[tuple[float, float]]],
    until: float,
    steps: EscalationSteps | None = None,
) -> QueueResult:
    """Run one reporting list through its readers' rosters.

    Parameters
    ----------
    arrival
        Arrival times (minutes), ascending.
    read
        Read times (minutes), one per study.
    base_rank
        Each study's class before waiting: 1 (P1) to 3 (P3).
    due
        Each study's due time (minutes): the second key of the list's order, or, once waiting
        raised the study, the earlier of it and the moment it was raised.
    intervals
        Per reader, the ascending, disjoint ``[start, end)`` intervals when it is on duty.
    until
        When the simulation stops; studies not started by then stay unread.
    steps
        Escalation by waiting per base class, or ``None`` for none.

    Returns
    -------
    QueueResult
        Start and end of each read and its reader.
    """
    run = _Run(arrival, read, due, len(intervals), until, steps)
    run.env.process(run.arrivals(base_rank.tolist()))
    for r, shifts in enumerate(intervals):
        run.env.process(run.reader(r, shifts))
    run.env.run(until=until)
    return QueueResult(
        np.asarray(run.start, dtype=np.float64),
        np.asarray(run.end, dtype=np.float64),
        np.asarray(run.who, dtype=np.int32),
    )


class _Run:
    """One run of the list: its state, its pop strategy and the SimPy processes that drive it.

    The hot paths read the state into locals once per call or process (attribute look-ups
    cost more than local ones in the per-study loops).
    """

    def __init__(
        self,
        arrival: np.ndarray[Any, np.dtype[np.float64]],
        read: np.ndarray[Any, np.dtype[np.float64]],
        due: np.ndarray[Any, np.dtype[np.float64]],
        readers: int,
        until: float,
        steps: EscalationSteps | None,
    ) -> None:
        n = len(arrival)
        self.env = simpy.Environment()
        self.until = until
        self.steps = steps
        self.arr: list[float] = arrival.tolist()
        self.rd: list[float] = read.tolist()
        self.dues: list[float] = due.tolist()
        self.start = [math.nan] * n
        self.end = [math.nan] * n
        self.who = [-1] * n
        self.queues: tuple[deque[int], deque[int], deque[int]] = (deque(), deque(), deque())
        self.idle: deque[int] = deque()
        self.wake: list[Any] = [None] * readers
        self.duty_end = [-math.inf] * readers
        self.pop: Callable[[float], int] = (
            self._pop_plain if steps is None else self._pop_escalating
        )

    def _pop_plain(self, _now: float) -> int:
        """Take the head of the highest non-empty class (no escalation); -1 when all are empty."""
        for q in self.queues:
            if q:
                return q.popleft()
        return -1

    def _pop_escalating(self, now: float) -> int:
        """Take the first of the base classes' heads in the list's order at ``now``; -1: none."""
        steps = self.steps
        assert steps is not None
        arr = self.arr
        dues = self.dues
        best = -1
        best_key: tuple[int, float, float] | None = None
        best_q: deque[int] | None = None
        for b, q in enumerate(self.queues):
            if not q:
                continue
            i = q[0]
            rank = b + 1
            age = now - arr[i]
            order = dues[i]
            for after, raised in steps[b]:
                if age < after:
                    break
                rank = raised
                order = min(dues[i], arr[i] + after)
            key = (rank, order, arr[i])
            if best_key is None or key < best_key:
                best, best_key, best_q = i, key, q
        if best_q is not None:
            best_q.popleft()
        return best

    def arrivals(self, ranks: list[int]) -> Generator[Any, Any, None]:
        """Process: put each study in its base class's queue at its arrival; wake a reader."""
        env = self.env
        arr = self.arr
        queues = self.queues
        idle = self.idle
        for i in range(len(arr)):
            wait = arr[i] - env.now
            if wait > 0:
                yield env.timeout(wait)
            queues[ranks[i] - 1].append(i)
            if idle:
                self._wake_one()

    def _wake_one(self) -> None:
        """Hand the list's next study to the first idle reader still on duty.

        Idle readers whose shift ends now are released with -1 (they go off duty, unwoken).
        """
        env = self.env
        idle = self.idle
        wake = self.wake
        duty_end = self.duty_end
        while idle:
            r = idle.popleft()
            event, wake[r] = wake[r], None
            if duty_end[r] > env.now:
                event.succeed(self.pop(env.now))
                break
            event.succeed(-1)

    def _off_duty(self, r: int, _event: Any) -> None:
        """Release reader ``r`` with -1 if it waits idle when its shift ends (timeout callback)."""
        event = self.wake[r]
        if event is not None:
            self.idle.remove(r)
            self.wake[r] = None
            event.succeed(-1)

    def reader(self, r: int, shifts: Sequence[tuple[float, float]]) -> Generator[Any, Any, None]:
        """Process: reader ``r`` follows its shifts, reading the list's next study while on duty.

        A read starts only before the end of the shift and runs to its end; an idle reader is
        woken with a study (by an arrival) or with -1 (its shift is over).
        """
        env = self.env
        pop = self.pop
        start = self.start
        end = self.end
        who = self.who
        rd = self.rd
        for on, off in shifts:
            if off <= env.now or on >= self.until:
                continue
            if on > env.now:
                yield env.timeout(on - env.now)
            self.duty_end[r] = off
            env.timeout(off - env.now).callbacks.append(partial(self._off_duty, r))
            while env.now < off:
                i = pop(env.now)
                if i < 0:
                    event = env.event()
                    self.wake[r] = event
                    self.idle.append(r)
                    i = yield event
                    if i < 0:
                        break
                start[i] = env.now
                who[i] = r
                yield env.timeout(rd[i])
                end[i] = env.now
