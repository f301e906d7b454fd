"""The simulation against queueing theory: M/M/1, Erlang C (M/M/c), Cobham, conservation.

Each queue runs one long replication (hundreds of thousands of studies) with readers on duty
around the clock and Poisson arrivals flat over hours and weekdays, so that the formulas apply;
the warm-up days are left out. With a fixed seed the results are deterministic; the
tolerances are about three standard errors of the simulated means.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from tests.builders.simulation import queue_settings
from triage.simulation.runner import Replication, prepare, run_replication
from triage.simulation.settings import SimulationSettings


def _run(settings: SimulationSettings, *policies: Any) -> tuple[Replication, np.ndarray]:
    rep = run_replication(prepare(settings), 0, policies=policies or ("fifo",))
    arrival = rep.studies.arrival
    measured = (arrival >= settings.warmup_days * 1440.0) & (arrival < settings.days * 1440.0)
    return rep, measured


def _mean_wait(rep: Replication, policy: str, mask: np.ndarray) -> float:
    start = rep.runs[policy].start[mask]
    assert not np.isnan(start).any(), "every measured study is read"
    return float((start - rep.studies.arrival[mask]).mean())


def erlang_c_wait(arrivals: float, service: float, servers: int) -> float:
    """Mean wait in queue of M/M/c (Erlang C), written out from the textbook formula."""
    a = arrivals / service
    top = a**servers / math.factorial(servers) * servers / (servers - a)
    below = sum(a**k / math.factorial(k) for k in range(servers)) + top
    return (top / below) / (servers * service - arrivals)


def test_erlang_c_of_one_server_is_the_m_m_1_formula() -> None:
    # The reference itself, checked against M/M/1's closed form rho / (mu - lambda).
    assert erlang_c_wait(0.05, 0.1, 1) == pytest.approx(0.5 / (0.1 - 0.05))


def test_fifo_with_poisson_arrivals_and_exponential_reads_matches_m_m_1() -> None:
    lam, mu = 0.05, 0.1  # per minute: rho = 0.5, mean wait 10 min
    rep, measured = _run(queue_settings(lam, 1 / mu, days=4000))
    assert measured.sum() > 250_000
    expected = lam / mu / (mu - lam)
    assert _mean_wait(rep, "fifo", measured) == pytest.approx(expected, rel=0.03)


def test_fifo_with_three_readers_matches_erlang_c() -> None:
    lam, mu, c = 0.21, 0.1, 3  # rho = 0.7 per reader
    rep, measured = _run(queue_settings(lam, 1 / mu, readers=c, days=1500))
    assert measured.sum() > 400_000
    assert _mean_wait(rep, "fifo", measured) == pytest.approx(erlang_c_wait(lam, mu, c), rel=0.03)


def test_two_referral_classes_match_cobhams_non_preemptive_priority_formula() -> None:
    # STAT maps to P1 and ROUTINE to P3 in the bundled policy: FIFO by clinical priority is a
    # two-class non-preemptive priority queue. Exponential reads: E[S^2] = 2 / mu^2.
    lam, mu = 0.06, 0.1
    share = 1.0 / 3.0
    settings = queue_settings(
        lam, 1 / mu, days=4000, referral_mix={"STAT": share, "ROUTINE": 1.0 - share}
    )
    rep, measured = _run(settings)
    rho1, rho = lam * share / mu, lam / mu
    w0 = lam * (2.0 / mu**2) / 2.0
    urgent = measured & (rep.clinical == 1)
    routine = measured & (rep.clinical == 3)
    assert urgent.sum() > 80_000
    assert routine.sum() > 160_000
    assert _mean_wait(rep, "fifo", urgent) == pytest.approx(w0 / (1 - rho1), rel=0.05)
    assert _mean_wait(rep, "fifo", routine) == pytest.approx(
        w0 / ((1 - rho1) * (1 - rho)), rel=0.05
    )


def test_reordering_leaves_the_total_wait_unchanged_when_reads_take_equally_long() -> None:
    # The default scenario (rosters, sources, referral mix) with every read taking 3 minutes:
    # whatever the order, the same number of studies waits at every moment.
    settings = SimulationSettings.model_validate(
        {
            "days": 14,
            "warmup_days": 0,
            "read_time": {"distribution": "fixed", "mean_min": 3.0},
            "model": {"sensitivity": 0.9, "specificity": 0.9},
            "grid": {"enabled": False},
        }
    )
    rep = run_replication(prepare(settings), 0)
    everyone = np.ones(len(rep.studies), dtype=bool)
    totals = {name: _mean_wait(rep, name, everyone) for name in rep.runs}
    assert totals["ai"] == pytest.approx(totals["fifo"], rel=1e-9)
    assert totals["ai_capped"] == pytest.approx(totals["fifo"], rel=1e-9)
    # ...while the order did change who waits: urgent positives wait less with AI.
    urgent = rep.studies.truth[:, 0]
    assert _mean_wait(rep, "ai", urgent) < 0.9 * _mean_wait(rep, "fifo", urgent)
