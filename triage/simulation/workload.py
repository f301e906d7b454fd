"""What arrives and who is there to read it: arrivals by hour and weekday, rosters, read times.

Arrivals of each source form a non-homogeneous Poisson process whose rate is constant within
each hour: the count of an hour is Poisson with mean ``daily_volume x load x weekday factor x
hourly weight`` and its arrivals are uniform within the hour. Truth and the model's output come
from :class:`triage.simulation.behaviour.Behaviour`; each study's read time is drawn on arrival.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from triage.simulation.behaviour import Behaviour
from triage.simulation.settings import ReadTime, Shift, SimulationSettings

__all__ = [
    "Studies",
    "draw_read_times",
    "draw_studies",
    "offered_load",
    "reader_intervals",
    "referral_names",
]

logger = logging.getLogger(__name__)

FloatArray = np.ndarray[Any, np.dtype[np.float64]]
IntArray = np.ndarray[Any, np.dtype[np.int64]]
BoolArray = np.ndarray[Any, np.dtype[np.bool_]]


@dataclass(frozen=True)
class Studies:
    """One replication's studies, in arrival order (arrays of equal length).

    ``source`` indexes the settings' sources, ``referral`` indexes :func:`referral_names`;
    ``truth`` and ``crossed`` are ``[n, labels]``: the finding is present, the model's score
    crossed its threshold.
    """

    arrival: FloatArray
    source: IntArray
    referral: IntArray
    truth: BoolArray
    crossed: BoolArray
    read: FloatArray

    def __len__(self) -> int:
        return len(self.arrival)


def referral_names(settings: SimulationSettings) -> tuple[str, ...]:
    """Return every referral priority the sources use, in a fixed (sorted) order."""
    return tuple(sorted({k for s in settings.sources for k in s.referral_mix}))


def draw_read_times(spec: ReadTime, rng: np.random.Generator, n: int) -> FloatArray:
    """Draw ``n`` read times (minutes) from ``spec``.

    Parameters
    ----------
    spec
        The distribution, its mean and coefficient of variation (``exponential`` ignores
        ``cv``; ``fixed`` or ``cv == 0`` give the mean every time).
    rng
        The random generator.
    n
        How many.

    Returns
    -------
    numpy.ndarray
        The read times.
    """
    mean = spec.mean_min
    if spec.distribution == "fixed" or (spec.cv == 0 and spec.distribution != "exponential"):
        return np.full(n, mean)
    if spec.distribution == "exponential":
        return rng.exponential(mean, n)
    if spec.distribution == "gamma":
        shape = 1.0 / spec.cv**2
        return rng.gamma(shape, mean / shape, n)
    sigma2 = math.log1p(spec.cv**2)
    return rng.lognormal(math.log(mean) - sigma2 / 2.0, math.sqrt(sigma2), n)


def draw_studies(
    settings: SimulationSettings,
    behaviour: Behaviour,
    rng: np.random.Generator,
    days: int | None = None,
    load: float | None = None,
) -> Studies:
    """Draw one replication's arrivals, referrals, truth, model output and read times.

    Parameters
    ----------
    settings
        The scenario.
    behaviour
        The model's behaviour (truth and threshold crossings).
    rng
        The replication's generator; the same state gives the same studies.
    days
        Days of arrivals (default ``settings.days``).
    load
        Volume multiplier (default ``settings.load``).

    Returns
    -------
    Studies
        The studies in arrival order.
    """
    days = settings.days if days is None else days
    load = settings.load if load is None else load
    referrals = referral_names(settings)
    parts: list[tuple[FloatArray, IntArray, IntArray, FloatArray]] = []
    for index, src in enumerate(settings.sources):
        hourly = np.asarray(src.hourly_profile) / sum(src.hourly_profile)
        weekly = np.asarray(src.weekday_factors) * 7.0 / sum(src.weekday_factors)
        weekday = (settings.start_weekday + np.arange(days)) % 7
        means = src.daily_volume * load * np.outer(weekly[weekday], hourly).ravel()
        counts = rng.poisson(means)
        hours = np.repeat(np.arange(days * 24, dtype=np.float64), counts)
        times = (hours + rng.random(hours.size)) * 60.0
        codes = [referrals.index(k) for k in src.referral_mix]
        shares = np.asarray(list(src.referral_mix.values()))
        refs = rng.choice(np.asarray(codes), size=times.size, p=shares / shares.sum())
        reads = draw_read_times(src.read_time or settings.read_time, rng, times.size)
        parts.append((times, np.full(times.size, index), refs, reads))
    arrival = np.concatenate([p[0] for p in parts])
    order = np.argsort(arrival, kind="stable")
    truth, crossed = behaviour.draw(rng, arrival.size)
    return Studies(
        arrival=arrival[order],
        source=np.concatenate([p[1] for p in parts]).astype(np.int64)[order],
        referral=np.concatenate([p[2] for p in parts]).astype(np.int64)[order],
        truth=truth,
        crossed=crossed,
        read=np.concatenate([p[3] for p in parts])[order],
    )


def reader_intervals(
    roster: tuple[Shift, ...], days: int, start_weekday: int = 0
) -> tuple[tuple[str, ...], list[list[tuple[float, float]]]]:
    """Turn roster lines into each reader's on-duty intervals over ``days`` days.

    Parameters
    ----------
    roster
        The shifts; shift ``s`` with ``readers = k`` gives readers ``s-1`` to ``s-k``.
    days
        Days to cover, from day 0 (a shift of the last day may run past its midnight).
    start_weekday
        The weekday of day 0 (0 = Monday).

    Returns
    -------
    tuple
        Reader names and, per reader, ascending ``[start, end)`` intervals in minutes, where
        touching or overlapping intervals of one reader are merged.
    """
    names: list[str] = []
    intervals: list[list[tuple[float, float]]] = []
    for shift in roster:
        begin, finish = shift.span()
        spans = [
            (d * 1440.0 + begin, d * 1440.0 + finish)
            for d in range(days)
            if (start_weekday + d) % 7 in shift.weekdays
        ]
        merged: list[tuple[float, float]] = []
        for on, off in spans:
            if merged and on <= merged[-1][1]:
                merged[-1] = (merged[-1][0], max(off, merged[-1][1]))
            else:
                merged.append((on, off))
        for k in range(shift.readers):
            names.append(f"{shift.name}-{k + 1}")
            intervals.append(list(merged))
    return tuple(names), intervals


def offered_load(settings: SimulationSettings) -> dict[str, float]:
    """Compare the work that arrives in a week with the roster's reading hours in a week.

    Parameters
    ----------
    settings
        The scenario.

    Returns
    -------
    dict
        ``studies_per_week``, ``reading_hours_needed``, ``roster_hours`` and ``utilisation``
        (needed over rostered; above 1 the list grows without end).
    """
    studies = 0.0
    minutes = 0.0
    for src in settings.sources:
        week = src.daily_volume * settings.load * 7.0
        studies += week
        minutes += week * (src.read_time or settings.read_time).mean_min
    rostered = 0.0
    for shift in settings.roster:
        begin, finish = shift.span()
        rostered += (finish - begin) * len(shift.weekdays) * shift.readers
    return {
        "studies_per_week": round(studies, 1),
        "reading_hours_needed": round(minutes / 60.0, 1),
        "roster_hours": round(rostered / 60.0, 1),
        "utilisation": round(minutes / rostered, 4) if rostered else math.inf,
    }
