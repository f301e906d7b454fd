"""The statistics of production monitoring: PSI, the two-sample KS test, Wilson intervals.

* **Population stability index** (PSI) of a window's scores against a reference:
  ``PSI = sum_i (c_i - r_i) * ln(c_i / r_i)`` over bins whose edges are the reference's
  quantiles ``k / bins`` (``k = 1 .. bins - 1``, repeated edges merged, the outer bins open),
  where ``r_i`` and ``c_i`` are the shares of the reference and of the window in bin ``i``
  (a bin is closed on the left, so a score equal to an edge falls in the bin above it). Empty
  shares are floored at :data:`PSI_FLOOR` so that the logarithm is defined. Rules of thumb: below
  0.1 no shift, 0.1 to 0.25 a moderate one, above 0.25 a major one.
* **KS**: scipy's :func:`scipy.stats.ks_2samp` (two-sided, exact or asymptotic p-value as scipy
  chooses): the largest distance between the two empirical distribution functions.
* **Wilson** score interval of a proportion: scipy's
  :meth:`scipy.stats.binomtest(...).proportion_ci(method="wilson")` (no continuity correction).

scipy comes with the ``bench`` extra; it is imported when first needed, so the web app starts
without it and only monitoring answers :class:`MonitoringUnavailableError` (503).
"""

from __future__ import annotations

import importlib
import logging
from dataclasses import dataclass, field
from types import ModuleType
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from models.errors import Unavailable
from worklist.settings import WorklistSettings

__all__ = [
    "CHART_BINS",
    "PSI_FLOOR",
    "Alert",
    "Drift",
    "LabelDrift",
    "MonitoringUnavailableError",
    "histogram",
    "judge",
    "ks_test",
    "psi",
    "quantile_edges",
    "wilson",
]

logger = logging.getLogger(__name__)

PSI_FLOOR = 1e-4
"""Smallest share a bin counts with in the PSI (an empty bin would make it infinite)."""

CHART_BINS = 20
"""Equal-width bins on [0, 1] of the score histograms drawn on the page."""


class MonitoringUnavailableError(Unavailable):
    """Monitoring needs scipy, which is not installed (the ``bench`` extra)."""


def _scipy_stats() -> ModuleType:
    try:
        return importlib.import_module("scipy.stats")
    except ImportError as exc:
        raise MonitoringUnavailableError(
            "production monitoring needs scipy, which is not installed: "
            "install the bench extra (pip install 'ics-triage[bench]')"
        ) from exc


def _array(values: ArrayLike) -> NDArray[np.float64]:
    return np.asarray(values, dtype=np.float64).ravel()


def quantile_edges(reference: ArrayLike, bins: int) -> NDArray[np.float64]:
    """Return the inner bin edges: the reference's ``k / bins`` quantiles, repeats merged.

    Parameters
    ----------
    reference : array_like
        The reference scores (at least one).
    bins : int
        How many quantile bins are asked for (at least 2); repeated edges give fewer.

    Returns
    -------
    numpy.ndarray
        Increasing inner edges (``bins - 1`` at most); the outer bins are open.
    """
    ref = _array(reference)
    qs = np.quantile(ref, np.arange(1, bins) / bins)
    return np.unique(qs)


def _shares(values: NDArray[np.float64], edges: NDArray[np.float64]) -> NDArray[np.float64]:
    index = np.searchsorted(edges, values, side="right")
    counts = np.bincount(index, minlength=len(edges) + 1).astype(np.float64)
    return counts / max(len(values), 1)


@dataclass(frozen=True)
class Drift:
    """The PSI of a window against a reference and what it was computed from.

    Attributes
    ----------
    psi : float
        The population stability index.
    edges : list of float
        The inner bin edges (reference quantiles).
    reference_share, current_share : list of float
        The share of each sample in each bin (before flooring).
    """

    psi: float
    edges: list[float]
    reference_share: list[float]
    current_share: list[float]


def psi(reference: ArrayLike, current: ArrayLike, bins: int = 10) -> Drift:
    """Return the population stability index of ``current`` against ``reference``.

    Parameters
    ----------
    reference, current : array_like
        Scores; each needs at least one.
    bins : int, optional
        Quantile bins of the reference (module docstring).

    Returns
    -------
    Drift
        The index, the edges and the shares per bin.

    Raises
    ------
    ValueError
        A sample is empty or ``bins`` is below 2.
    """
    ref, cur = _array(reference), _array(current)
    if len(ref) == 0 or len(cur) == 0:
        raise ValueError("the PSI needs scores in both samples")
    if bins < 2:
        raise ValueError("the PSI needs at least 2 bins")
    edges = quantile_edges(ref, bins)
    r, c = _shares(ref, edges), _shares(cur, edges)
    rf, cf = np.maximum(r, PSI_FLOOR), np.maximum(c, PSI_FLOOR)
    value = float(np.sum((cf - rf) * np.log(cf / rf)))
    return Drift(value, edges.tolist(), r.tolist(), c.tolist())


def ks_test(reference: ArrayLike, current: ArrayLike) -> tuple[float, float]:
    """Return the two-sample Kolmogorov-Smirnov statistic and its two-sided p-value.

    Parameters
    ----------
    reference, current : array_like
        Scores; each needs at least one.

    Returns
    -------
    tuple of (float, float)
        ``(statistic, pvalue)`` of :func:`scipy.stats.ks_2samp`.

    Raises
    ------
    MonitoringUnavailableError
        scipy is not installed.
    """
    result = _scipy_stats().ks_2samp(_array(reference), _array(current))
    return float(result.statistic), float(result.pvalue)


def wilson(successes: int, n: int, confidence: float = 0.95) -> tuple[float | None, float, float]:
    """Return a proportion and its Wilson score interval.

    Parameters
    ----------
    successes, n : int
        Successes out of ``n`` trials.
    confidence : float, optional
        The interval's confidence level.

    Returns
    -------
    tuple of (float or None, float, float)
        ``(proportion, low, high)``; with ``n == 0`` ``(None, 0.0, 1.0)``.

    Raises
    ------
    MonitoringUnavailableError
        scipy is not installed.
    """
    if n == 0:
        return None, 0.0, 1.0
    ci = (
        _scipy_stats()
        .binomtest(successes, n)
        .proportion_ci(confidence_level=confidence, method="wilson")
    )
    return successes / n, float(ci.low), float(ci.high)


@dataclass(frozen=True)
class Alert:
    """A drift bound passed: which model and label, by which measure, how far."""

    model: str
    label: str
    measure: Literal["psi", "ks_pvalue"]
    value: float
    bound: float
    message: str


@dataclass(frozen=True)
class LabelDrift:
    """One label's scores in the window against the reference."""

    label: str
    status: Literal["ok", "drift", "insufficient", "no_reference"]
    n_reference: int
    n_current: int
    psi: float | None = None
    ks_statistic: float | None = None
    ks_pvalue: float | None = None
    edges: list[float] = field(default_factory=list)
    reference_share: list[float] = field(default_factory=list)
    current_share: list[float] = field(default_factory=list)
    reference_histogram: list[float] = field(default_factory=list)
    current_histogram: list[float] = field(default_factory=list)


def judge(
    ref: str,
    label: str,
    reference: list[float],
    current: list[float],
    settings: WorklistSettings,
) -> tuple[LabelDrift, list[Alert]]:
    """Compare one label's window scores with its reference and raise the alerts due.

    Parameters
    ----------
    ref, label : str
        The model (``NAME@VERSION``) and label, for the alerts.
    reference, current : list of float
        The scores.
    settings : worklist.settings.WorklistSettings
        ``monitoring_bins``, ``monitoring_min_n`` and the bounds.

    Returns
    -------
    tuple of (LabelDrift, list of Alert)
        The comparison (``no_reference`` or ``insufficient`` below ``monitoring_min_n``) and
        an alert per bound passed.

    Raises
    ------
    MonitoringUnavailableError
        scipy is not installed.
    """
    n_ref, n_cur = len(reference), len(current)
    ref_hist, cur_hist = histogram(reference), histogram(current)
    if n_ref == 0 or min(n_ref, n_cur) < settings.monitoring_min_n:
        status: Literal["no_reference", "insufficient"] = (
            "no_reference" if n_ref == 0 else "insufficient"
        )
        unjudged = LabelDrift(
            label,
            status,
            n_ref,
            n_cur,
            reference_histogram=ref_hist,
            current_histogram=cur_hist,
        )
        return unjudged, []
    shift = psi(reference, current, settings.monitoring_bins)
    statistic, pvalue = ks_test(reference, current)
    alerts = []
    if shift.psi > settings.monitoring_psi_bound:
        alerts.append(
            Alert(
                ref,
                label,
                "psi",
                shift.psi,
                settings.monitoring_psi_bound,
                f"{ref} {label}: PSI {shift.psi:.3f} > {settings.monitoring_psi_bound:g}",
            )
        )
    if pvalue < settings.monitoring_ks_p_bound:
        alerts.append(
            Alert(
                ref,
                label,
                "ks_pvalue",
                pvalue,
                settings.monitoring_ks_p_bound,
                f"{ref} {label}: KS D {statistic:.3f}, p {pvalue:.2g} "
                f"< {settings.monitoring_ks_p_bound:g}",
            )
        )
    result = LabelDrift(
        label,
        "drift" if alerts else "ok",
        n_ref,
        n_cur,
        psi=shift.psi,
        ks_statistic=statistic,
        ks_pvalue=pvalue,
        edges=shift.edges,
        reference_share=shift.reference_share,
        current_share=shift.current_share,
        reference_histogram=ref_hist,
        current_histogram=cur_hist,
    )
    return result, alerts


def histogram(values: ArrayLike, bins: int = CHART_BINS) -> list[float]:
    """Return the share of ``values`` in each of ``bins`` equal-width bins on [0, 1].

    Scores outside [0, 1] count in the outer bins. An empty sample gives zeros.
    """
    data = np.clip(_array(values), 0.0, 1.0)
    counts, _ = np.histogram(data, bins=bins, range=(0.0, 1.0))
    total = counts.sum()
    return (counts / total).tolist() if total else [0.0] * bins
