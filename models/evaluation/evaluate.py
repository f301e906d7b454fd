"""The entry point: per-image predictions, labels, patients and attributes in, a Report out."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

import numpy as np
from numpy.typing import ArrayLike, NDArray

from models.evaluation.auroc import auroc
from models.evaluation.calibration import calibration
from models.evaluation.estimates import InvalidEvaluationInput, generator, wilson
from models.evaluation.operating_points import (
    operating_point,
    pr_curve,
    roc_points,
    threshold_for_sensitivity,
)
from models.evaluation.report import LabelResult, Provenance, Report, Settings, Throughput
from models.evaluation.subgroups import AGE_BANDS, group_labels, subgroup_results

__all__ = ["evaluate"]

logger = logging.getLogger(__name__)


def evaluate(
    predictions: Mapping[str, ArrayLike],
    labels: Mapping[str, ArrayLike],
    patients: Sequence[object] | ArrayLike,
    subgroups: Mapping[str, Sequence[object]] | None,
    thresholds: Mapping[str, float],
    seed: int,
    *,
    replicates: int = 2000,
    confidence: float = 0.95,
    min_count: int = 10,
    ece_bins: int = 10,
    sensitivity_targets: Sequence[float] = (0.90, 0.95),
    threshold_source: str = "card",
    max_curve_points: int = 1000,
    provenance: Provenance | None = None,
    throughput: Throughput | None = None,
) -> Report:
    """Evaluate per-image scores against per-image labels.

    Parameters
    ----------
    predictions : mapping of str to array_like
        Label name to the score of each image, probabilities in [0, 1] (finite).
    labels : mapping of str to array_like
        Label name (the same names) to the truth of each image: 1 positive, 0 negative, NaN
        not labelled (uncertain labels under the "ignore" policy, not mentioned); an image is
        left out of a label's statistics where its truth is NaN.
    patients : sequence
        Patient key of each image (compared as text): the bootstrap's clusters.
    subgroups : mapping of str to sequence, or None
        Attribute name (``"sex"``, ``"age_band"``, ``"view"``, ``"site"``) to the group of each
        image; None, NaN or blank are the group ``"unknown"``. Turn ages into bands with
        :func:`models.evaluation.subgroups.age_bands` first.
    thresholds : mapping of str to float
        Label name to its operating threshold (e.g. the card's); positive when
        ``score >= threshold``.
    seed : int
        Seed of the bootstraps (non-negative); the same inputs and seed give the same report.
    replicates : int
        Bootstrap replicates per AUROC.
    confidence : float
        Coverage of every interval.
    min_count : int
        Fewest positives and fewest negatives for a subgroup to be estimated.
    ece_bins : int
        Equal-width bins of the ECE and reliability diagram.
    sensitivity_targets : sequence of float
        Targets whose thresholds are found on this data and reported as operating points.
    threshold_source : str
        Where ``thresholds`` came from, for the report (``"card"``).
    max_curve_points : int
        Most points kept per ROC and PR curve.
    provenance : Provenance or None
        The model and dataset, copied into the report.
    throughput : Throughput or None
        Speed of the run, copied into the report.

    Returns
    -------
    Report
        Write it with :meth:`Report.write`.

    Raises
    ------
    InvalidEvaluationInput
        Arrays of different lengths, other label names, scores outside [0, 1] or not finite,
        truths other than 0, 1 or NaN, bad parameters.
    """
    _check_parameters(
        seed, replicates, confidence, min_count, ece_bins, sensitivity_targets, max_curve_points
    )
    names = list(predictions)
    if set(labels) != set(names) or set(thresholds) != set(names):
        raise InvalidEvaluationInput(
            f"predictions, labels and thresholds must name the same labels: {sorted(predictions)}"
            f", {sorted(labels)}, {sorted(thresholds)}"
        )
    keys = np.asarray(patients, dtype=object)
    n = keys.shape[0] if keys.ndim == 1 else -1
    if n < 0:
        raise InvalidEvaluationInput("patients must be one key per image")
    codes = _codes(keys)
    attributes = {
        attribute: group_labels(_length(f"subgroups[{attribute!r}]", values, n, dtype=object))
        for attribute, values in (subgroups or {}).items()
    }
    results = []
    for name in names:
        scores = _scores(name, predictions[name], n)
        truth = _truth(name, labels[name], n)
        threshold = float(thresholds[name])
        if not 0.0 <= threshold <= 1.0:
            raise InvalidEvaluationInput(f"thresholds[{name!r}] = {threshold} is not in [0, 1]")
        labelled = ~np.isnan(truth)
        y = truth[labelled].astype(np.int8)
        s = scores[labelled]
        _, patients_l = np.unique(codes[labelled], return_inverse=True)
        results.append(
            _label(
                name,
                y,
                s,
                patients_l,
                {a: g[labelled] for a, g in attributes.items()},
                threshold,
                seed=seed,
                replicates=replicates,
                confidence=confidence,
                min_count=min_count,
                ece_bins=ece_bins,
                targets=tuple(sensitivity_targets),
                max_points=max_curve_points,
            )
        )
        logger.info("evaluated %s on %d labelled images", name, y.size)
    settings = Settings(
        seed=seed,
        replicates=replicates,
        confidence=confidence,
        min_count=min_count,
        ece_bins=ece_bins,
        sensitivity_targets=tuple(float(t) for t in sensitivity_targets),
        threshold_source=threshold_source,
        max_curve_points=max_curve_points,
        age_bands=tuple(band for _, _, band in AGE_BANDS),
    )
    return Report(
        provenance=provenance or Provenance(),
        settings=settings,
        n_images=n,
        n_patients=int(codes.max()) + 1 if n else 0,
        labels=tuple(results),
        throughput=throughput,
    )


def _label(
    name: str,
    y: NDArray[np.int8],
    scores: NDArray[np.float64],
    patients: NDArray[np.intp],
    attributes: Mapping[str, NDArray[np.str_]],
    threshold: float,
    *,
    seed: int,
    replicates: int,
    confidence: float,
    min_count: int,
    ece_bins: int,
    targets: tuple[float, ...],
    max_points: int,
) -> LabelResult:
    n_pos = int(np.count_nonzero(y))
    points = [operating_point("threshold", y, scores, threshold, confidence)]
    for target in targets:
        chosen = threshold_for_sensitivity(y, scores, target)
        points.append(
            operating_point(f"sensitivity_{target:.2f}", y, scores, chosen, confidence, target)
        )
    return LabelResult(
        name=name,
        n=int(y.size),
        n_positive=n_pos,
        n_negative=int(y.size) - n_pos,
        n_patients=int(patients.max()) + 1 if patients.size else 0,
        prevalence=wilson(n_pos, y.size, confidence),
        auroc=auroc(y, scores, patients, replicates, generator(seed, name), confidence),
        operating_points=tuple(points),
        calibration=calibration(y, scores, ece_bins, confidence),
        roc=roc_points(y, scores, max_points),
        pr=pr_curve(y, scores, max_points),
        subgroups=subgroup_results(
            name,
            y,
            scores,
            patients,
            attributes,
            threshold,
            min_count=min_count,
            replicates=replicates,
            seed=seed,
            confidence=confidence,
        ),
    )


def _check_parameters(
    seed: int,
    replicates: int,
    confidence: float,
    min_count: int,
    ece_bins: int,
    targets: Sequence[float],
    max_curve_points: int,
) -> None:
    problems = []
    if seed < 0:
        problems.append(f"seed must be non-negative, got {seed}")
    if replicates < 1:
        problems.append(f"replicates must be at least 1, got {replicates}")
    if not 0.0 < confidence < 1.0:
        problems.append(f"confidence must be in (0, 1), got {confidence}")
    if min_count < 1:
        problems.append(f"min_count must be at least 1, got {min_count}")
    if ece_bins < 1:
        problems.append(f"ece_bins must be at least 1, got {ece_bins}")
    if max_curve_points < 2:
        problems.append(f"max_curve_points must be at least 2, got {max_curve_points}")
    problems += [f"sensitivity target {t} is not in (0, 1]" for t in targets if not 0 < t <= 1]
    if problems:
        raise InvalidEvaluationInput("; ".join(problems))


def _length(what: str, values: object, n: int, dtype: type = np.float64) -> NDArray[np.generic]:
    try:
        array: NDArray[np.generic] = np.asarray(values, dtype=dtype)
    except (TypeError, ValueError) as exc:
        raise InvalidEvaluationInput(f"{what}: not an array of numbers ({exc})") from exc
    if array.shape != (n,):
        raise InvalidEvaluationInput(f"{what} has shape {array.shape}, expected ({n},)")
    return array


def _scores(name: str, values: ArrayLike, n: int) -> NDArray[np.float64]:
    scores = _length(f"predictions[{name!r}]", values, n).astype(np.float64)
    if not np.all(np.isfinite(scores)) or np.any((scores < 0) | (scores > 1)):
        raise InvalidEvaluationInput(
            f"predictions[{name!r}] must be finite probabilities in [0, 1]"
        )
    return scores


def _truth(name: str, values: ArrayLike, n: int) -> NDArray[np.float64]:
    truth = _length(f"labels[{name!r}]", values, n).astype(np.float64)
    known = truth[~np.isnan(truth)]
    if np.any((known != 0) & (known != 1)):
        raise InvalidEvaluationInput(f"labels[{name!r}] must hold 1, 0 or NaN")
    return truth


def _codes(keys: NDArray[np.object_]) -> NDArray[np.intp]:
    try:
        _, codes = np.unique(keys.astype(str), return_inverse=True)
    except (TypeError, ValueError) as exc:
        raise InvalidEvaluationInput(f"patients: keys that cannot be compared ({exc})") from exc
    return codes.astype(np.intp)
