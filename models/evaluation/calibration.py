"""Calibration: expected calibration error, Brier score and the reliability diagram's data.

**ECE** (expected calibration error) uses ``bins`` equal-width bins of the score over [0, 1]:
bin ``b`` holds the scores in ``[b / bins, (b + 1) / bins)``, the last bin also holds 1.0.
With ``n_b`` images in bin ``b``, mean score ``conf_b`` and observed positive fraction
``acc_b``, ``ECE = sum_b n_b / n * |acc_b - conf_b|`` (Naeini et al. 2015; Guo et al. 2017).
Empty bins add nothing. ECE is biased upwards on small samples (about
``sqrt(p (1 - p) / n_b)`` per bin from sampling alone), so compare ECEs on similar sizes.

The **Brier score** is scikit-learn's :func:`~sklearn.metrics.brier_score_loss`, the mean of
``(score - label) ** 2``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from sklearn.metrics import brier_score_loss

from models.evaluation.estimates import Proportion, Undefined, wilson

__all__ = ["Calibration", "ReliabilityBin", "calibration"]


@dataclass(frozen=True)
class ReliabilityBin:
    """One bin of the reliability diagram.

    Attributes
    ----------
    lower, upper : float
        The bin's score range ``[lower, upper)`` (the last bin includes 1.0).
    count : int
        Images in the bin.
    mean_score : float or None
        Mean score of those images; ``None`` for an empty bin.
    observed : Proportion
        Fraction of them that are positive, with its Wilson interval.
    """

    lower: float
    upper: float
    count: int
    mean_score: float | None
    observed: Proportion


@dataclass(frozen=True)
class Calibration:
    """Calibration of one label.

    Attributes
    ----------
    ece : float or None
        Expected calibration error over equal-width bins; ``None`` without images.
    brier : float or None
        Brier score; ``None`` without images.
    bins : tuple of ReliabilityBin
        The reliability diagram (every bin, empty ones included).
    reason : Undefined or None
        :attr:`Undefined.EMPTY` without images.
    """

    ece: float | None
    brier: float | None
    bins: tuple[ReliabilityBin, ...]
    reason: Undefined | None = None


def calibration(
    y: NDArray[np.int8], scores: NDArray[np.float64], bins: int = 10, confidence: float = 0.95
) -> Calibration:
    """ECE, Brier score and reliability diagram of scores in [0, 1].

    Parameters
    ----------
    y : ndarray of int8
        Labels, 1 positive and 0 negative.
    scores : ndarray of float64
        Probabilities in [0, 1].
    bins : int
        Number of equal-width bins.
    confidence : float
        Coverage of the observed fractions' Wilson intervals.

    Returns
    -------
    Calibration
        Undefined (:attr:`Undefined.EMPTY`) when there is no image.
    """
    index = np.minimum((scores * bins).astype(np.intp), bins - 1)
    counts = np.bincount(index, minlength=bins)
    positives = np.bincount(index[y == 1], minlength=bins)
    score_sums = np.bincount(index, weights=scores, minlength=bins)
    diagram = tuple(
        ReliabilityBin(
            lower=b / bins,
            upper=(b + 1) / bins,
            count=int(counts[b]),
            mean_score=float(score_sums[b] / counts[b]) if counts[b] else None,
            observed=wilson(int(positives[b]), int(counts[b]), confidence),
        )
        for b in range(bins)
    )
    if y.size == 0:
        return Calibration(None, None, diagram, Undefined.EMPTY)
    filled = counts > 0
    gaps = np.abs(positives[filled] - score_sums[filled])  # n_b * |acc_b - conf_b|
    ece = float(gaps.sum() / y.size)
    brier = float(brier_score_loss(y, scores, pos_label=1))
    return Calibration(ece, brier, diagram)
