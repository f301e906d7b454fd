"""The discrete-event core: one reporting list, its readers' rosters, one ordering policy (SimPy).

Studies arrive at given times into one shared list. Each reader is one SimPy process that
follows its roster: while on duty it takes the first study of the list, reads it, and takes the
next; a read starts only while its reader is on duty (a read begun before the end of a shift
runs to its end). The list is ordered as the worklist orders it
(:func:`worklist.reading.queries.worklist_page`): the current class first, then the due time
(arrival plus the target of the study's class before waiting), then the arrival.

The current class is the study's base class, raised by waiting when the policy's escalation
applies (``steps``). Studies of one base class keep their arrival order, and within a base class
the oldest study is both the most escalated and the first due, so only the head of each base
class can be the next study to read: picking one is at most three comparisons.
"""

from __future__ import annotations

import logging
import math
from collections import deque
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass
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
        Each study's due time (minutes), the second key of the list's order.
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
    n = len(arrival)
    arr: list[float] = arrival.tolist()
    rd: list[float] = read.tolist()
    dues: list[float] = due.tolist()
    start = [math.nan] * n
    end = [math.nan] * n
    who = [-1] * n
    queues: tuple[deque[int], deque[int], deque[int]] = (deque(), deque(), deque())
    env = simpy.Environment()
    idle: deque[int] = deque()
    wake: list[Any] = [None] * len(intervals)
    duty_end = [-math.inf] * len(intervals)

    def pop_plain(_now: float) -> int:
        for q in queues:
            if q:
                return q.popleft()
        return -1

    def pop_escalating(now: float) -> int:
        assert steps is not None
        best = -1
        best_key: tuple[int, float, float] | None = None
        best_q: deque[int] | None = None
        for b, q in enumerate(queues):
            if not q:
                continue
            i = q[0]
            rank = b + 1
            age = now - arr[i]
            for after, raised in steps[b]:
                if age < after:
                    break
                rank = raised
            key = (rank, dues[i], arr[i])
            if best_key is None or key < best_key:
                best, best_key, best_q = i, key, q
        if best_q is not None:
            best_q.popleft()
        return best

    pop: Callable[[float], int] = pop_plain if steps is None else pop_escalating

    def arrivals() -> Generator[Any, Any, None]:
        ranks = base_rank.tolist()
        for i in range(n):
            wait = arr[i] - env.now
            if wait > 0:
                yield env.timeout(wait)
            queues[ranks[i] - 1].append(i)
            while idle:
                r = idle.popleft()
                event, wake[r] = wake[r], None
                if duty_end[r] > env.now:
                    event.succeed(pop(env.now))
                    break
                event.succeed(-1)  # its shift ends now: it goes off duty, unwoken

    def off_duty(r: int) -> Callable[[Any], None]:
        def _off(_event: Any) -> None:
            event = wake[r]
            if event is not None:
                idle.remove(r)
                wake[r] = None
                event.succeed(-1)

        return _off

    def reader(r: int, shifts: Sequence[tuple[float, float]]) -> Generator[Any, Any, None]:
        for on, off in shifts:
            if off <= env.now or on >= until:
                continue
            if on > env.now:
                yield env.timeout(on - env.now)
            duty_end[r] = off
            env.timeout(off - env.now).callbacks.append(off_duty(r))
            while env.now < off:
                i = pop(env.now)
                if i < 0:
                    event = env.event()
                    wake[r] = event
                    idle.append(r)
                    i = yield event
                    if i < 0:
                        break
                start[i] = env.now
                who[i] = r
                yield env.timeout(rd[i])
                end[i] = env.now

    env.process(arrivals())
    for r, shifts in enumerate(intervals):
        env.process(reader(r, shifts))
    env.run(until=until)
    return QueueResult(
        np.asarray(start, dtype=np.float64),
        np.asarray(end, dtype=np.float64),
        np.asarray(who, dtype=np.int32),
    )
