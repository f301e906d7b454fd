"""The label's metrics within subgroups (sex, age band, view position, site), with a minimum count.

A subgroup gets estimates only when it holds at least ``min_count`` positive **and** at least
``min_count`` negative images of the label; otherwise it is reported with its counts and the
status ``"too_few"``, and no estimate (an AUROC from three positives is noise with an interval
too wide to act on). Images whose attribute is missing form the group ``"unknown"``.

Age bands (:data:`AGE_BANDS`, ages in whole years at the study): 0-19, 20-39, 40-59, 60-79 and
80+, the bands of Seyyed-Kalantari et al. 2021 (Nature Medicine 27:2176, underdiagnosis in
chest radiograph classifiers on NIH ChestX-ray14, CheXpert and MIMIC-CXR).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum

import numpy as np
from numpy.typing import NDArray

from models.evaluation.auroc import AurocResult, auroc
from models.evaluation.estimates import Proportion, generator, wilson
from models.evaluation.operating_points import OperatingPoint, operating_point

__all__ = [
    "AGE_BANDS",
    "UNKNOWN",
    "Status",
    "SubgroupResult",
    "age_bands",
    "group_labels",
    "subgroup_results",
]

UNKNOWN = "unknown"
"""The group of images whose attribute is missing."""

AGE_BANDS: tuple[tuple[float, float, str], ...] = (
    (0.0, 20.0, "0-19"),
    (20.0, 40.0, "20-39"),
    (40.0, 60.0, "40-59"),
    (60.0, 80.0, "60-79"),
    (80.0, math.inf, "80+"),
)
"""``(lower, upper, name)``: an age ``a`` is in the band with ``lower <= a < upper``."""


class Status(StrEnum):
    """Whether a subgroup was estimated."""

    ESTIMATED = "estimated"
    TOO_FEW = "too_few"


@dataclass(frozen=True)
class SubgroupResult:
    """One label's metrics in one subgroup.

    Attributes
    ----------
    attribute, group : str
        E.g. ``"sex"`` and ``"F"``.
    n, n_positive, n_negative, n_patients : int
        Labelled images of the subgroup, by class, and their patients.
    status : Status
        ``"too_few"`` below the minimum count: then the estimates are ``None``.
    prevalence : Proportion or None
        Positive fraction with its Wilson interval.
    auroc : AurocResult or None
        AUROC with the patient-clustered bootstrap and DeLong intervals.
    operating_point : OperatingPoint or None
        Sensitivity, specificity, PPV, NPV at the label's given threshold.
    """

    attribute: str
    group: str
    n: int
    n_positive: int
    n_negative: int
    n_patients: int
    status: Status
    prevalence: Proportion | None
    auroc: AurocResult | None
    operating_point: OperatingPoint | None


def age_bands(ages: Iterable[float | None]) -> list[str]:
    """Age band of each age (:data:`AGE_BANDS`); ``"unknown"`` for missing or negative ages.

    Parameters
    ----------
    ages : iterable of float or None
        Ages in years; ``None`` or NaN when not known.

    Returns
    -------
    list of str
        One band name per age.
    """
    out: list[str] = []
    for age in ages:
        band = UNKNOWN
        if age is not None and math.isfinite(age):
            band = next((name for low, high, name in AGE_BANDS if low <= age < high), UNKNOWN)
        out.append(band)
    return out


def group_labels(values: Iterable[object]) -> NDArray[np.str_]:
    """Group name of each image: the value as text, ``"unknown"`` for None, NaN or blank.

    Parameters
    ----------
    values : iterable
        One attribute value per image.

    Returns
    -------
    ndarray of str
        The group names.
    """
    names: list[str] = []
    for value in values:
        missing = value is None or (isinstance(value, float) and math.isnan(value))
        text = "" if missing else str(value).strip()
        names.append(text or UNKNOWN)
    return np.asarray(names, dtype=np.str_)


def subgroup_results(
    label: str,
    y: NDArray[np.int8],
    scores: NDArray[np.float64],
    patients: NDArray[np.intp],
    attributes: Mapping[str, NDArray[np.str_]],
    threshold: float,
    *,
    min_count: int,
    replicates: int,
    seed: int,
    confidence: float = 0.95,
) -> tuple[SubgroupResult, ...]:
    """Compute the label's metrics in every group of every attribute.

    Parameters
    ----------
    label : str
        The label's name (with ``seed`` and the group, it names the bootstrap's stream).
    y : ndarray of int8
        Labels of the labelled images, 1 positive and 0 negative.
    scores : ndarray of float64
        Their scores.
    patients : ndarray of intp
        Their patient codes.
    attributes : mapping of str to ndarray of str
        Attribute name to the group of each image (see :func:`group_labels`).
    threshold : float
        The label's given threshold.
    min_count : int
        Fewest positives and fewest negatives for a subgroup to be estimated.
    replicates : int
        Bootstrap replicates.
    seed : int
        The evaluation's seed.
    confidence : float
        Coverage of the intervals.

    Returns
    -------
    tuple of SubgroupResult
        By attribute (in the mapping's order), then by group name, ``"unknown"`` last.
    """
    results: list[SubgroupResult] = []
    for attribute, groups in attributes.items():
        names = sorted(set(groups.tolist()), key=lambda g: (g == UNKNOWN, g))
        for group in names:
            mask = groups == group
            sub_y, sub_scores = y[mask], scores[mask]
            _, sub_patients = np.unique(patients[mask], return_inverse=True)
            n_pos = int(np.count_nonzero(sub_y))
            n_neg = int(sub_y.size - n_pos)
            n_patients = int(sub_patients.max()) + 1 if sub_patients.size else 0
            counts = (attribute, group, int(sub_y.size), n_pos, n_neg, n_patients)
            if n_pos < min_count or n_neg < min_count:
                results.append(SubgroupResult(*counts, Status.TOO_FEW, None, None, None))
                continue
            rng = generator(seed, label, attribute, group)
            results.append(
                SubgroupResult(
                    *counts,
                    Status.ESTIMATED,
                    prevalence=wilson(n_pos, sub_y.size, confidence),
                    auroc=auroc(sub_y, sub_scores, sub_patients, replicates, rng, confidence),
                    operating_point=operating_point(
                        "threshold", sub_y, sub_scores, threshold, confidence
                    ),
                )
            )
    return tuple(results)
