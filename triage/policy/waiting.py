"""Escalation by waiting and the order it gives a study within its class (pure functions).

A study moves one class up after waiting a fraction of its class's target, at most to the cap of
its base class (:func:`escalate`). The list orders a class by ``order_at``: the due time, or, for
a study that waiting raised, the moment it entered its current class if that came first
(:func:`ordering_deadline`). A study raised by waiting has waited as long as the policy allows,
so it counts as due from then: it goes before the studies of its new class that are not yet
overdue, and after those overdue earlier.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from triage.policy.schema import Policy
from worklist.domain import Priority

__all__ = [
    "escalate",
    "escalated_at",
    "escalation_state",
    "human_duration",
    "ordering_deadline",
]

logger = logging.getLogger(__name__)

Entry = dict[str, Any]


def escalate(
    policy: Policy, base: Priority, arrived_at: datetime, now: datetime
) -> tuple[Priority, list[Entry], datetime | None]:
    """Apply escalation by waiting to a study of class ``base``.

    From class ``C`` the study moves one class up after waiting ``after * target(C)`` in ``C``;
    it stops at the cap of ``base``'s escalation rule (``max``). A class without a rule does not
    escalate.

    Parameters
    ----------
    policy
        The policy.
    base
        The class before waiting (most urgent of clinical and AI).
    arrived_at
        When the study arrived.
    now
        The time of evaluation.

    Returns
    -------
    tuple
        The escalated class, one entry per step taken, and when the next step would happen
        (``None`` when at the cap).
    """
    current, entries, next_at, _ = escalation_state(policy, base, arrived_at, now)
    return current, entries, next_at


def escalated_at(
    policy: Policy, base: Priority, arrived_at: datetime, now: datetime
) -> datetime | None:
    """Return when waiting raised a study of class ``base`` into its class at ``now``.

    Parameters
    ----------
    policy
        The policy.
    base
        The class before waiting.
    arrived_at
        When the study arrived.
    now
        The time of evaluation.

    Returns
    -------
    datetime or None
        The moment of the last escalation step taken by ``now`` (the policy's moment, not when
        a sweep noticed it); ``None`` when waiting has not raised the study.
    """
    return escalation_state(policy, base, arrived_at, now)[3]


def ordering_deadline(due_at: datetime, raised_at: datetime | None) -> datetime:
    """Return the deadline that orders a study within its current class.

    A study that waiting raised has waited as long as the policy allows in its old class: it is
    treated as due from the moment it was raised, unless its own due time came first. So it is
    read before the studies of its new class that are not yet overdue, and after those that
    became overdue before it. The result is never later than ``due_at``: escalation never moves
    a study down its class.

    Parameters
    ----------
    due_at
        Arrival plus the target of the study's class before waiting.
    raised_at
        When waiting raised the study into its current class (:func:`escalated_at`), ``None``
        when it has not.

    Returns
    -------
    datetime
        ``min(due_at, raised_at)``, or ``due_at``.
    """
    return due_at if raised_at is None else min(due_at, raised_at)


def escalation_state(
    policy: Policy, base: Priority, arrived_at: datetime, now: datetime
) -> tuple[Priority, list[Entry], datetime | None, datetime | None]:
    """Apply escalation by waiting and say when the study entered its current class.

    Parameters
    ----------
    policy
        The policy.
    base
        The class before waiting.
    arrived_at
        When the study arrived.
    now
        The time of evaluation.

    Returns
    -------
    tuple
        As :func:`escalate`, plus the moment waiting raised the study into its current class
        (``None`` when it has not).
    """
    rule = policy.escalation.get(base)
    if rule is None:
        return base, [], None, None
    cap = rule.max
    current = base
    entered = arrived_at
    raised: datetime | None = None
    entries: list[Entry] = []
    while current.rank > cap.rank:
        step = policy.escalation.get(current)
        if step is None:
            return current, entries, None, raised
        wait = policy.target(current) * step.after
        moves_at = entered + wait
        if now < moves_at:
            return current, entries, moves_at, raised
        upper = Priority(f"P{current.rank - 1}")
        entries.append(
            {
                "rule": "escalation",
                "priority": str(upper),
                "from": str(current),
                "to": str(upper),
                "cap": str(cap),
                "at": moves_at.isoformat(),
                "after_s": round(wait.total_seconds(), 1),
                "text": f"Waited more than {human_duration(wait)} ({step.after:g} of the "
                f"{human_duration(policy.target(current))} target) in {current}: raised to "
                f"{policy.describe(upper)}; waiting can raise it at most to {cap}",
            }
        )
        current, entered, raised = upper, moves_at, moves_at
    return current, entries, None, raised


def human_duration(delta: timedelta) -> str:
    """Write a duration for people: ``3 w``, ``12 h``, ``1.5 d``, ``30 s``."""
    seconds = delta.total_seconds()
    for unit, size in (("w", 604800), ("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size and (seconds / size) == int(seconds / size):
            return f"{int(seconds / size)} {unit}"
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f} {unit}"
    return f"{seconds:g} s"
