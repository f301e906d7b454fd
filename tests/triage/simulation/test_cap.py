"""Issue 12: the escalation cap bounds the wait of positives, with several readers under load.

"With the cap, no positive waits longer than the cap plus one read" cannot hold unconditionally:
when more studies are overdue than the readers on duty can start in one read time, someone waits
longer, whatever the order (this scenario shows such waits). What the list's order can promise,
and what this test checks, is the bound under a precise condition:

    A study that waiting has raised to its cap (the most urgent class waiting can give it) at
    time ``t`` starts by ``t + R`` (``R``: one read; here every read takes ``R``) whenever
    fewer studies rank ahead of it, by ``t + R``, than readers are on duty throughout
    ``[t, t + R]``, where ranking ahead means: in a class more urgent than its cap, or in its
    cap's class and overdue since before ``t`` (``order_at`` earlier than ``t``, or equal and
    arrived earlier).

It holds when the list orders a raised study as due from the moment it was raised
(:func:`triage.policy.ordering_deadline`) and every escalation step comes before the study's due
time (true of the bundled policy and of the one here). With the old order (``due_at`` only) a
raised routine study queued behind every not-yet-due study of its new class and broke it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tests.builders.simulation import with_policy
from triage.policy import Policy, parse_policy
from triage.simulation.engine import EscalationSteps
from triage.simulation.runner import run_replication
from triage.simulation.settings import SimulationSettings
from triage.simulation.workload import reader_intervals

Array = np.ndarray[Any, Any]
READ = 5.0
DAYS = 14
ROSTER = [
    {"name": "all", "start": "00:00", "end": "24:00", "readers": 2},
    {"name": "day", "weekdays": [0, 1, 2, 3, 4], "start": "08:00", "end": "18:00", "readers": 2},
    {"name": "late", "start": "18:00", "end": "23:00", "readers": 1},
]
"""Two readers around the clock, two more on weekday days, one more every evening."""


def network_policy() -> Policy:
    """The bundled policy's shape on a scale of hours: routine is raised to P2 at most."""
    return parse_policy(
        {
            "version": 1,
            "classes": {
                "P1": {"label": "urgent", "target": "1h"},
                "P2": {"label": "soon", "target": "4h"},
                "P3": {"label": "routine", "target": "16h"},
            },
            "referral": {"STAT": "P1", "HIGH": "P2", "ROUTINE": "P3"},
            "escalation": {"P3": {"after": 0.5, "max": "P2"}, "P2": {"after": 0.5, "max": "P1"}},
        }
    )


def _settings(load: float) -> SimulationSettings:
    week_reader_min = 2 * 1440 * 7 + 2 * 600 * 5 + 300 * 7
    per_day = load * week_reader_min / 7 / READ
    return SimulationSettings.model_validate(
        {
            "days": DAYS,
            "warmup_days": 1,
            "drain_days": 3,
            "replications": 1,
            "seed": 3,
            "sources": [
                {
                    "name": "Q",
                    "daily_volume": per_day,
                    "referral_mix": {"STAT": 0.05, "HIGH": 0.25, "ROUTINE": 0.7},
                }
            ],
            "roster": ROSTER,
            "read_time": {"distribution": "fixed", "mean_min": READ},
            "model": {"sensitivity": 0.8, "specificity": 0.8},
            "grid": {"enabled": False},
            "policies": ["fifo", "ai_capped"],
        }
    )


def _keys(
    t: float, idx: Array, base: Array, arr: Array, due: Array, steps: EscalationSteps
) -> tuple[Array, Array]:
    """Class and ordering deadline of studies ``idx`` at time ``t`` (the worklist's order)."""
    age = t - arr[idx]
    rank = base[idx].copy()
    order = due[idx].copy()
    for b in (1, 2, 3):
        of_b = base[idx] == b
        for after, raised in steps[b - 1]:
            hit = of_b & (age >= after)
            rank[hit] = raised
            order[hit] = np.minimum(due[idx][hit], arr[idx][hit] + after)
    return rank, order


def test_a_capped_positive_starts_within_one_read_when_fewer_rank_ahead_than_readers() -> None:
    settings = _settings(0.9)
    scenario = with_policy(settings, network_policy())
    steps = scenario.steps
    rep = run_replication(scenario, 0)
    run = rep.runs["ai_capped"]
    arr, start, base = rep.studies.arrival, run.start, run.rank.astype(np.int64)
    targets = np.array([0.0, 60.0, 240.0, 960.0])
    due = arr + targets[base]
    cap_age = np.array([0.0, *(max((a for a, _ in steps[b - 1]), default=0.0) for b in (1, 2, 3))])
    cap_rank = np.array([0, *(min((r for _, r in steps[b - 1]), default=b) for b in (1, 2, 3))])
    assert (cap_age[2], cap_age[3], cap_rank[2], cap_rank[3]) == (120.0, 480.0, 1, 2)
    _, intervals = reader_intervals(settings.roster, DAYS + settings.drain_days + 1)
    started = np.where(np.isnan(start), np.inf, start)
    positives = np.flatnonzero(rep.studies.truth.any(axis=1) & (base > 1))
    held = beyond = 0
    for s in positives:
        t = arr[s] + cap_age[base[s]]
        if started[s] <= t:
            continue  # read before it reached its cap
        others = np.flatnonzero((arr <= t + READ) & (started > t))
        others = others[others != s]
        rank, order = _keys(t + READ, others, base, arr, due, steps)
        cap, own = cap_rank[base[s]], min(due[s], t)
        ahead = (rank < cap) | (
            (rank == cap) & ((order < own) | ((order == own) & (arr[others] < arr[s])))
        )
        on_duty = sum(any(on <= t and off > t + READ for on, off in iv) for iv in intervals)
        if int(ahead.sum()) < on_duty:
            held += 1
            assert started[s] <= t + READ, (s, base[s], arr[s], t, started[s])
        elif started[s] > t + READ:
            beyond += 1
    # The condition is met often (routine positives raised to P2 among them), and where it is
    # not, positives do wait longer than their cap plus one read: it is a condition, not a
    # formality.
    assert held >= 200, held
    assert beyond > 0, beyond
