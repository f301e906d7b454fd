"""Statistics over replications: per-class turnaround, comparisons with FIFO, backlog, CIs.

Turnaround (TAT) is from arrival to report (end of the read), as NHS England's guidance defines
it; wait is from arrival to the start of the read. Studies arriving during the warm-up days are
left out. Each figure is computed per replication; the summary gives the mean over replications
and its 95 % confidence interval (Student's t over replications, which are independent).

Groups of studies (truth is the simulated ground truth, not the model's output):

- ``urgent_positive``: has a finding whose label's category is P1 (e.g. pneumothorax);
- ``soon_positive`` / ``routine_positive``: the most urgent true finding is P2 / P3;
- ``negative``: no finding; ``missed_positive``: has findings, none of them flagged;
- ``routine``: the referral gave P3 (clinical priority); ``all``: every study.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy import stats as sps  # type: ignore[import-untyped, unused-ignore]

from triage.simulation.runner import Replication
from triage.simulation.settings import SimulationSettings
from worklist.domain import Priority

__all__ = [
    "GROUPS",
    "backlog",
    "comparisons",
    "confidence",
    "group_masks",
    "group_metrics",
    "summarise",
]

logger = logging.getLogger(__name__)

GROUPS = (
    "urgent_positive",
    "soon_positive",
    "routine_positive",
    "negative",
    "missed_positive",
    "routine",
    "all",
)
Array = np.ndarray[Any, Any]


def confidence(values: Sequence[float]) -> dict[str, float | int | None]:
    """Return the mean of per-replication values and its 95 % t-interval.

    Parameters
    ----------
    values
        One value per replication (NaNs are left out).

    Returns
    -------
    dict
        ``mean``, ``lo``, ``hi`` (``None`` where undefined) and ``n`` (replications used).
    """
    x = np.asarray([v for v in values if v is not None and math.isfinite(v)], dtype=np.float64)
    if x.size == 0:
        return {"mean": None, "lo": None, "hi": None, "n": 0}
    mean = float(x.mean())
    if x.size < 2:
        return {"mean": mean, "lo": None, "hi": None, "n": 1}
    half = float(sps.t.ppf(0.975, x.size - 1) * x.std(ddof=1) / math.sqrt(x.size))
    return {"mean": mean, "lo": mean - half, "hi": mean + half, "n": int(x.size)}


def group_masks(
    rep: Replication, warmup_days: int, categories: Sequence[Priority]
) -> dict[str, Array]:
    """Return each group's mask over the replication's studies (warm-up left out).

    Parameters
    ----------
    rep
        The replication.
    warmup_days
        Days whose arrivals are left out.
    categories
        Each label's category, in the order of the truth columns.

    Returns
    -------
    dict
        Group name to boolean mask.
    """
    s = rep.studies
    measured = s.arrival >= warmup_days * 1440.0
    ranks = np.asarray([c.rank for c in categories])
    true_rank = np.where(s.truth, ranks, 9).min(axis=1, initial=9)
    positive = s.truth.any(axis=1)
    return {
        "urgent_positive": measured & (true_rank == 1),
        "soon_positive": measured & (true_rank == 2),
        "routine_positive": measured & (true_rank == 3),
        "negative": measured & ~positive,
        "missed_positive": measured & positive & ~(s.truth & s.crossed).any(axis=1),
        "routine": measured & (rep.clinical == 3),
        "all": measured,
    }


def group_metrics(rep: Replication, policy: str, mask: Array) -> dict[str, float]:
    """Return one group's figures in one policy's run (minutes; NaN for an empty group).

    Parameters
    ----------
    rep
        The replication.
    policy
        The policy's name.
    mask
        The group's studies.

    Returns
    -------
    dict
        ``n``, ``unreported``, ``mean_tat``, ``median_tat``, ``p95_tat``, ``max_tat``,
        ``mean_wait``.
    """
    run = rep.runs[policy]
    arrival = rep.studies.arrival[mask]
    end = run.end[mask]
    done = ~np.isnan(end)
    tat = end[done] - arrival[done]
    wait = run.start[mask][done] - arrival[done]
    nan = math.nan
    return {
        "n": float(mask.sum()),
        "unreported": float((~done).sum()),
        "mean_tat": float(tat.mean()) if tat.size else nan,
        "median_tat": float(np.median(tat)) if tat.size else nan,
        "p95_tat": float(np.percentile(tat, 95)) if tat.size else nan,
        "max_tat": float(tat.max()) if tat.size else nan,
        "mean_wait": float(wait.mean()) if wait.size else nan,
    }


def _change(new: float, old: float) -> float:
    if not (math.isfinite(new) and math.isfinite(old)) or old == 0:
        return math.nan
    return 100.0 * (new / old - 1.0)


def comparisons(per_rep: dict[str, dict[str, dict[str, float]]]) -> dict[str, dict[str, float]]:
    """Compare each policy of one replication with FIFO.

    Parameters
    ----------
    per_rep
        Policy to group to :func:`group_metrics` figures, for one replication.

    Returns
    -------
    dict
        Per policy other than FIFO: ``urgent_sooner_pct`` (how much sooner urgent positives
        are reported, on mean TAT), ``routine_max_growth_pct`` (growth of the longest routine
        TAT), ``missed_max_growth_pct``, ``missed_mean_change_pct`` and
        ``all_mean_wait_change_pct`` (zero when reordering conserves work).
    """
    fifo = per_rep["fifo"]
    out: dict[str, dict[str, float]] = {}
    for name, groups in per_rep.items():
        if name == "fifo":
            continue
        out[name] = {
            "urgent_sooner_pct": -_change(
                groups["urgent_positive"]["mean_tat"], fifo["urgent_positive"]["mean_tat"]
            ),
            "routine_max_growth_pct": _change(
                groups["routine"]["max_tat"], fifo["routine"]["max_tat"]
            ),
            "missed_max_growth_pct": _change(
                groups["missed_positive"]["max_tat"], fifo["missed_positive"]["max_tat"]
            ),
            "missed_mean_change_pct": _change(
                groups["missed_positive"]["mean_tat"], fifo["missed_positive"]["mean_tat"]
            ),
            "all_mean_wait_change_pct": _change(
                groups["all"]["mean_wait"], fifo["all"]["mean_wait"]
            ),
        }
    return out


def backlog(rep: Replication, policy: str, step_min: float, mask: Array | None = None) -> Array:
    """Return how many studies wait unread at ``0, step, 2 step, ...`` up to the last arrival day.

    Parameters
    ----------
    rep
        The replication.
    policy
        The policy's name.
    step_min
        Sampling step in minutes.
    mask
        Count only these studies (default: all).

    Returns
    -------
    numpy.ndarray
        The number waiting at each sample time.
    """
    times = np.arange(0.0, rep.days * 1440.0 + step_min / 2, step_min)
    arrival = rep.studies.arrival
    start = rep.runs[policy].start
    if mask is not None:
        arrival, start = arrival[mask], start[mask]
    started = np.sort(np.where(np.isnan(start), np.inf, start))
    arrived = np.searchsorted(arrival, times, side="right")
    began = np.searchsorted(started, times, side="right")
    return np.asarray(arrived - began)


def summarise(
    reps: Sequence[Replication], settings: SimulationSettings, categories: Sequence[Priority]
) -> dict[str, Any]:
    """Summarise replications: per policy and group, and the comparisons with FIFO, with CIs.

    Parameters
    ----------
    reps
        The replications (every one ran the same policies).
    settings
        The scenario (warm-up).
    categories
        Each label's category.

    Returns
    -------
    dict
        ``policies`` (policy to group to figure to :func:`confidence`) and ``comparison``
        (policy to comparison to :func:`confidence`); JSON-able.
    """
    figures: dict[str, dict[str, dict[str, list[float]]]] = {}
    compared: dict[str, dict[str, list[float]]] = {}
    for rep in reps:
        masks = group_masks(rep, settings.warmup_days, categories)
        per_rep = {
            name: {g: group_metrics(rep, name, masks[g]) for g in GROUPS} for name in rep.runs
        }
        for name, groups in per_rep.items():
            for g, values in groups.items():
                slot = figures.setdefault(name, {}).setdefault(g, {})
                for key, value in values.items():
                    slot.setdefault(key, []).append(value)
        for name, values in comparisons(per_rep).items():
            for key, value in values.items():
                compared.setdefault(name, {}).setdefault(key, []).append(value)
    return {
        "policies": {
            name: {g: {k: confidence(v) for k, v in fig.items()} for g, fig in groups.items()}
            for name, groups in figures.items()
        },
        "comparison": {
            name: {k: confidence(v) for k, v in values.items()} for name, values in compared.items()
        },
    }
