"""AUROC with two 95% intervals: a patient-clustered bootstrap and DeLong's.

* The point estimate is scikit-learn's :func:`~sklearn.metrics.roc_auc_score` (ties count one
  half, the Mann-Whitney convention).
* **Patient-clustered bootstrap** (the primary interval): each replicate draws as many patients
  as the data holds, with replacement, and keeps all images of every drawn patient (a patient
  drawn twice counts twice); the interval is the percentile interval of the replicate AUROCs.
  Images of one patient are correlated, so resampling images would give intervals too narrow.
  The replicates are computed all at once rather than by calling scikit-learn per replicate:
  every replicate is the same set of scores with other weights (the number of times each
  patient was drawn), so with the scores sorted once into levels (tie groups, runs of groups
  of one class merged), a sparse matrix product gives each replicate's positive and negative
  weight per level, and the weighted Mann-Whitney statistic follows from a cumulative sum over
  levels.
* **DeLong** (DeLong, DeLong & Clarke-Pearson 1988, computed by the fast midrank algorithm of
  Sun & Xu 2014): the variance from the structural components, and the normal interval
  ``auc +/- z * se`` clipped to [0, 1]. It treats images as independent.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy import sparse, stats  # type: ignore[import-untyped, unused-ignore]
from sklearn.metrics import roc_auc_score

from models.evaluation.estimates import Undefined

__all__ = [
    "AurocResult",
    "BootstrapInterval",
    "DelongInterval",
    "auroc",
    "auroc_undefined",
    "bootstrap_replicates",
    "delong",
]

# Elements of one dense (levels x replicates) block: bounds the memory of the bootstrap
# (a few such float64 blocks, about 80 MB each) whatever the number of replicates.
_BLOCK_ELEMENTS = 10_000_000


@dataclass(frozen=True)
class BootstrapInterval:
    """Percentile interval of a patient-clustered bootstrap.

    Attributes
    ----------
    low, high : float or None
        The interval; ``None`` when no replicate was valid.
    replicates : int
        Replicates drawn.
    valid_replicates : int
        Replicates that drew both classes (the others have no AUROC and are left out).
    reason : Undefined or None
        :attr:`Undefined.NO_VALID_REPLICATES` when no replicate was valid.
    """

    low: float | None
    high: float | None
    replicates: int
    valid_replicates: int
    reason: Undefined | None = None


@dataclass(frozen=True)
class DelongInterval:
    """DeLong's variance of the AUROC and its normal interval.

    Attributes
    ----------
    variance, low, high : float or None
        ``None`` with :attr:`Undefined.TOO_FEW` when there are fewer than two positives or
        two negatives (the structural components' variances need two of each).
    reason : Undefined or None
        Why the interval is not given.
    """

    variance: float | None
    low: float | None
    high: float | None
    reason: Undefined | None = None


@dataclass(frozen=True)
class AurocResult:
    """AUROC of one label (or subgroup) with both intervals.

    Attributes
    ----------
    value : float or None
        scikit-learn's AUROC; ``None`` when undefined.
    reason : Undefined or None
        Why it is undefined (one class only, constant scores).
    bootstrap : BootstrapInterval or None
        The patient-clustered bootstrap interval (``None`` when the AUROC is undefined).
    delong : DelongInterval or None
        DeLong's interval (``None`` when the AUROC is undefined).
    """

    value: float | None
    reason: Undefined | None
    bootstrap: BootstrapInterval | None
    delong: DelongInterval | None


def auroc_undefined(y: NDArray[np.int8], scores: NDArray[np.float64]) -> Undefined | None:
    """Why the AUROC of ``scores`` against ``y`` is undefined, or ``None`` when it is defined.

    Parameters
    ----------
    y : ndarray of int8
        Labels, 1 positive and 0 negative.
    scores : ndarray of float64
        Scores, one per label.

    Returns
    -------
    Undefined or None
        No positives, no negatives, constant scores; ``None`` otherwise.
    """
    n_pos = int(np.count_nonzero(y))
    if n_pos == 0:
        return Undefined.NO_POSITIVES
    if n_pos == y.size:
        return Undefined.NO_NEGATIVES
    if np.ptp(scores) == 0:
        return Undefined.CONSTANT_SCORES
    return None


def delong(
    y: NDArray[np.int8], scores: NDArray[np.float64], confidence: float = 0.95
) -> tuple[float, DelongInterval]:
    """AUROC and its DeLong variance and interval (fast midrank algorithm of Sun & Xu 2014).

    Parameters
    ----------
    y : ndarray of int8
        Labels, 1 positive and 0 negative; both classes present.
    scores : ndarray of float64
        Scores.
    confidence : float
        Coverage of the normal interval.

    Returns
    -------
    tuple of (float, DelongInterval)
        The AUROC (Mann-Whitney, ties one half) and DeLong's variance and interval.
    """
    positives = scores[y == 1]
    negatives = scores[y == 0]
    m, n = positives.size, negatives.size
    combined = stats.rankdata(np.concatenate([positives, negatives]))
    within_pos = stats.rankdata(positives)
    within_neg = stats.rankdata(negatives)
    auc = float((combined[:m].sum() - m * (m + 1) / 2) / (m * n))
    if m < 2 or n < 2:
        return auc, DelongInterval(None, None, None, Undefined.TOO_FEW)
    # Structural components: V10 per positive (share of negatives it outranks, ties one half),
    # V01 per negative (share of positives that outrank it).
    v10 = (combined[:m] - within_pos) / n
    v01 = 1.0 - (combined[m:] - within_neg) / m
    variance = float(np.var(v10, ddof=1) / m + np.var(v01, ddof=1) / n)
    half = _z(confidence) * math.sqrt(variance)
    return auc, DelongInterval(variance, max(0.0, auc - half), min(1.0, auc + half))


def bootstrap_replicates(
    y: NDArray[np.int8],
    scores: NDArray[np.float64],
    patients: NDArray[np.intp],
    replicates: int,
    rng: np.random.Generator,
) -> NDArray[np.float64]:
    """AUROC of each patient-clustered bootstrap replicate, all replicates at once.

    Parameters
    ----------
    y : ndarray of int8
        Labels, 1 positive and 0 negative.
    scores : ndarray of float64
        Scores.
    patients : ndarray of intp
        Patient of each image, as codes ``0 .. P-1`` (e.g. from ``np.unique(...,
        return_inverse=True)``); every code in that range must occur.
    replicates : int
        Number of replicates.
    rng : numpy.random.Generator
        Source of the draws; the same generator state gives the same replicates.

    Returns
    -------
    ndarray of float64
        One AUROC per replicate; NaN for a replicate that drew one class only.
    """
    if y.size == 0:
        return np.full(replicates, np.nan)
    n_patients = int(patients.max()) + 1
    positive = y == 1
    level = _levels(scores, positive)
    n_levels = int(level.max()) + 1
    # (levels x patients) counts of positive and of negative images.
    pos_counts = _counts(level[positive], patients[positive], n_levels, n_patients)
    neg_counts = _counts(level[~positive], patients[~positive], n_levels, n_patients)
    block = max(1, _BLOCK_ELEMENTS // max(n_levels, n_patients))
    out = np.empty(replicates)
    for start in range(0, replicates, block):
        b = min(block, replicates - start)
        draws = rng.integers(0, n_patients, size=(b, n_patients))
        # times[p, r]: how often replicate r drew patient p (one bincount per replicate: its
        # bins stay in cache, where one bincount over the whole block would not).
        times = np.empty((n_patients, b))
        for r in range(b):
            times[:, r] = np.bincount(draws[r], minlength=n_patients)
        pos_w = np.asarray(pos_counts @ times)
        neg_w = np.asarray(neg_counts @ times)
        below = np.cumsum(neg_w, axis=0)
        below -= 0.5 * neg_w  # negatives strictly below each level, plus half of the ties
        pos_total = pos_w.sum(axis=0)
        neg_total = neg_w.sum(axis=0)
        valid = (pos_total > 0) & (neg_total > 0)
        auc = np.full(b, np.nan)
        auc[valid] = (pos_w * below).sum(axis=0)[valid] / (pos_total * neg_total)[valid]
        out[start : start + b] = auc
    return out


def auroc(
    y: NDArray[np.int8],
    scores: NDArray[np.float64],
    patients: NDArray[np.intp],
    replicates: int,
    rng: np.random.Generator,
    confidence: float = 0.95,
) -> AurocResult:
    """AUROC with its patient-clustered bootstrap and DeLong intervals.

    Parameters
    ----------
    y : ndarray of int8
        Labels, 1 positive and 0 negative.
    scores : ndarray of float64
        Scores.
    patients : ndarray of intp
        Patient codes ``0 .. P-1`` of the images (see :func:`bootstrap_replicates`).
    replicates : int
        Bootstrap replicates, at least 1.
    rng : numpy.random.Generator
        Source of the bootstrap draws.
    confidence : float
        Coverage of both intervals.

    Returns
    -------
    AurocResult
        With ``value`` ``None`` and a reason when the AUROC is undefined.
    """
    reason = auroc_undefined(y, scores)
    if reason is not None:
        return AurocResult(None, reason, None, None)
    value = float(roc_auc_score(y, scores))
    _, delong_interval = delong(y, scores, confidence)
    interval = _percentile_interval(
        bootstrap_replicates(y, scores, patients, replicates, rng), confidence
    )
    return AurocResult(value, None, interval, delong_interval)


def _percentile_interval(values: NDArray[np.float64], confidence: float) -> BootstrapInterval:
    valid = values[np.isfinite(values)]
    if valid.size == 0:
        return BootstrapInterval(None, None, values.size, 0, Undefined.NO_VALID_REPLICATES)
    tail = 100.0 * (1.0 - confidence) / 2.0
    low, high = np.percentile(valid, [tail, 100.0 - tail])
    return BootstrapInterval(float(low), float(high), values.size, valid.size)


def _levels(scores: NDArray[np.float64], positive: NDArray[np.bool_]) -> NDArray[np.intp]:
    """Level of each image: its tie group of scores, with runs of one-class groups merged.

    Only a positive's negatives below and tied count, so consecutive groups holding only
    negatives (or only positives) can be one level without changing any replicate's AUROC;
    that cuts the levels, the dense dimension of the bootstrap, by about half or more.
    """
    _, tie = np.unique(scores, return_inverse=True)
    tie = tie.reshape(-1)
    n_ties = int(tie.max()) + 1
    has_pos = np.bincount(tie[positive], minlength=n_ties) > 0
    has_neg = np.bincount(tie[~positive], minlength=n_ties) > 0
    kind = has_pos.astype(np.int8) + 2 * has_neg.astype(np.int8)  # 1 pos, 2 neg, 3 both
    starts = np.ones(n_ties, dtype=bool)
    starts[1:] = (kind[1:] != kind[:-1]) | (kind[1:] == 3)
    merged: NDArray[np.intp] = (np.cumsum(starts) - 1)[tie]
    return merged


def _counts(
    level: NDArray[np.intp], patient: NDArray[np.intp], n_levels: int, n_patients: int
) -> sparse.csr_matrix:
    ones = np.ones(level.size)
    return sparse.csr_matrix((ones, (level, patient)), shape=(n_levels, n_patients))


def _z(confidence: float) -> float:
    return float(stats.norm.ppf(0.5 + confidence / 2.0))
