"""Operating points (sensitivity, specificity, PPV, NPV with Wilson CIs) and ROC / PR curves.

An image is called positive when its score is at least the threshold (``score >= threshold``),
as :func:`models.results.label_results` does with a card's thresholds.

The thresholds "giving sensitivity 0.90 / 0.95" are chosen on the evaluated data itself: the
highest threshold whose sensitivity is at least the target (the k-th highest positive score,
``k = ceil(target * positives)``). They are therefore optimistic for new data; a threshold meant
for deployment is chosen on a validation split and evaluated on another.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from sklearn.metrics import precision_recall_curve, roc_curve

from models.evaluation.estimates import Proportion, Undefined, wilson

__all__ = [
    "Curve",
    "OperatingPoint",
    "operating_point",
    "pr_curve",
    "roc_points",
    "threshold_for_sensitivity",
]


@dataclass(frozen=True)
class OperatingPoint:
    """The confusion matrix at one threshold and the four rates with Wilson CIs.

    Attributes
    ----------
    name : str
        ``"threshold"`` (the threshold given, e.g. the card's) or ``"sensitivity_0.90"`` etc.
    threshold : float or None
        ``None`` when no threshold gives the target (no positives).
    target_sensitivity : float or None
        The target for a chosen threshold, ``None`` for a given one.
    tp, fp, tn, fn : int
        The confusion matrix (zeros when ``threshold`` is ``None``).
    sensitivity, specificity, ppv, npv : Proportion
        TP/(TP+FN), TN/(TN+FP), TP/(TP+FP), TN/(TN+FN) with Wilson intervals.
    reason : Undefined or None
        Why there is no threshold (:attr:`Undefined.NO_POSITIVES`).
    """

    name: str
    threshold: float | None
    target_sensitivity: float | None
    tp: int
    fp: int
    tn: int
    fn: int
    sensitivity: Proportion
    specificity: Proportion
    ppv: Proportion
    npv: Proportion
    reason: Undefined | None = None


@dataclass(frozen=True)
class Curve:
    """Points of a ROC or precision-recall curve, thinned (both ends kept).

    A ROC curve has the false positive rate as x and sensitivity as y; a PR curve has recall as
    x and precision as y.

    Attributes
    ----------
    x, y : tuple of float
        The points; empty when the curve is undefined.
    reason : Undefined or None
        Why the curve is empty.
    """

    x: tuple[float, ...]
    y: tuple[float, ...]
    reason: Undefined | None = None


def threshold_for_sensitivity(
    y: NDArray[np.int8], scores: NDArray[np.float64], target: float
) -> float | None:
    """Highest threshold whose sensitivity (``score >= threshold``) is at least ``target``.

    Parameters
    ----------
    y : ndarray of int8
        Labels, 1 positive and 0 negative.
    scores : ndarray of float64
        Scores.
    target : float
        Target sensitivity in (0, 1].

    Returns
    -------
    float or None
        The k-th highest positive score, ``k = ceil(target * positives)``; ``None`` without
        positives.
    """
    positives = np.sort(scores[y == 1])[::-1]
    if positives.size == 0:
        return None
    # round() first: 0.9 * 10 is 9.000000000000002 in binary floating point.
    k = max(1, math.ceil(round(target * positives.size, 9)))
    return float(positives[k - 1])


def operating_point(
    name: str,
    y: NDArray[np.int8],
    scores: NDArray[np.float64],
    threshold: float | None,
    confidence: float = 0.95,
    target_sensitivity: float | None = None,
) -> OperatingPoint:
    """Confusion matrix and rates with Wilson CIs at ``threshold``.

    Parameters
    ----------
    name : str
        Name of the operating point in the report.
    y : ndarray of int8
        Labels, 1 positive and 0 negative.
    scores : ndarray of float64
        Scores.
    threshold : float or None
        Positive when ``score >= threshold``; ``None`` gives an undefined point (no positives).
    confidence : float
        Coverage of the Wilson intervals.
    target_sensitivity : float or None
        Recorded with a chosen threshold.

    Returns
    -------
    OperatingPoint
        Rates whose denominator is zero are undefined (:attr:`Undefined.EMPTY`).
    """
    if threshold is None:
        empty = wilson(0, 0, confidence)
        return OperatingPoint(
            name, None, target_sensitivity, 0, 0, 0, 0, empty, empty, empty, empty,
            Undefined.NO_POSITIVES,
        )  # fmt: skip
    called = scores >= threshold
    positive = y == 1
    tp = int(np.count_nonzero(called & positive))
    fp = int(np.count_nonzero(called & ~positive))
    fn = int(np.count_nonzero(~called & positive))
    tn = int(np.count_nonzero(~called & ~positive))
    return OperatingPoint(
        name=name,
        threshold=float(threshold),
        target_sensitivity=target_sensitivity,
        tp=tp,
        fp=fp,
        tn=tn,
        fn=fn,
        sensitivity=wilson(tp, tp + fn, confidence),
        specificity=wilson(tn, tn + fp, confidence),
        ppv=wilson(tp, tp + fp, confidence),
        npv=wilson(tn, tn + fn, confidence),
    )


def roc_points(y: NDArray[np.int8], scores: NDArray[np.float64], max_points: int) -> Curve:
    """ROC curve (scikit-learn's ``roc_curve``, collinear points dropped), thinned.

    Parameters
    ----------
    y : ndarray of int8
        Labels, 1 positive and 0 negative.
    scores : ndarray of float64
        Scores.
    max_points : int
        Most points kept (evenly spaced along the curve's points, both ends kept).

    Returns
    -------
    Curve
        False positive rate (x) against sensitivity (y); empty with a reason when one class
        is missing.
    """
    reason = _one_class(y)
    if reason is not None:
        return Curve((), (), reason)
    fpr, tpr, _ = roc_curve(y, scores, drop_intermediate=True)
    return _thin(fpr, tpr, max_points)


def pr_curve(y: NDArray[np.int8], scores: NDArray[np.float64], max_points: int) -> Curve:
    """Precision-recall curve (scikit-learn's ``precision_recall_curve``), thinned.

    Parameters
    ----------
    y : ndarray of int8
        Labels, 1 positive and 0 negative.
    scores : ndarray of float64
        Scores.
    max_points : int
        Most points kept (evenly spaced along the curve's points, both ends kept).

    Returns
    -------
    Curve
        Recall (x) against precision (y); empty with a reason when there is no positive.
    """
    if not np.any(y == 1):
        return Curve((), (), Undefined.NO_POSITIVES)
    precision, recall, _ = precision_recall_curve(y, scores, drop_intermediate=True)
    return _thin(recall, precision, max_points)


def _one_class(y: NDArray[np.int8]) -> Undefined | None:
    if not np.any(y == 1):
        return Undefined.NO_POSITIVES
    if not np.any(y == 0):
        return Undefined.NO_NEGATIVES
    return None


def _thin(x: NDArray[np.float64], y: NDArray[np.float64], max_points: int) -> Curve:
    if x.size > max_points:
        keep = np.unique(np.round(np.linspace(0, x.size - 1, max(2, max_points))).astype(int))
        x, y = x[keep], y[keep]
    return Curve(tuple(float(v) for v in x), tuple(float(v) for v in y))
