"""Shared vocabulary of the evaluation: why an estimate is undefined, and proportions with CIs.

An estimate that cannot be made (a label with one class only, a rate with an empty denominator,
a subgroup below the minimum count) is never a crash and never a made-up number: its value and
interval are ``None`` and its ``reason`` says why, with one of the codes of :class:`Undefined`.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from enum import StrEnum

import numpy as np
from statsmodels.stats.proportion import proportion_confint

from models.errors import ModelError

__all__ = ["InvalidEvaluationInput", "Proportion", "Undefined", "generator", "wilson"]


class InvalidEvaluationInput(ModelError, ValueError):  # noqa: N818  (the project's style)
    """The arrays given to the evaluation do not fit together or hold impossible values.

    The message names the argument (and the label) at fault.
    """


class Undefined(StrEnum):
    """Why an estimate is not given (the ``reason`` of results and of ``report.json``)."""

    NO_POSITIVES = "no_positives"
    """No labelled positive image: AUROC, sensitivity and the curves need one."""
    NO_NEGATIVES = "no_negatives"
    """No labelled negative image: AUROC, specificity and the ROC curve need one."""
    CONSTANT_SCORES = "constant_scores"
    """Every image has the same score: the model ranks nothing, so AUROC is not an estimate of
    discrimination (the ties convention would give 0.5 with a zero-width interval)."""
    EMPTY = "empty"
    """The proportion's denominator is zero (e.g. PPV when no image is called positive)."""
    TOO_FEW = "too_few"
    """Fewer images than the method needs: a subgroup below the minimum count, or DeLong's
    variance with fewer than two positives or negatives."""
    NO_VALID_REPLICATES = "no_valid_replicates"
    """Every bootstrap replicate drew patients of one class only."""


@dataclass(frozen=True)
class Proportion:
    """A proportion ``count / total`` with its Wilson score interval.

    Attributes
    ----------
    count, total : int
        Numerator and denominator.
    value, low, high : float or None
        The proportion and its interval; ``None`` when ``total`` is 0.
    reason : Undefined or None
        :attr:`Undefined.EMPTY` when ``total`` is 0, else ``None``.
    """

    count: int
    total: int
    value: float | None
    low: float | None
    high: float | None
    reason: Undefined | None = None


def wilson(count: int, total: int, confidence: float = 0.95) -> Proportion:
    """Proportion with the Wilson score interval (statsmodels ``proportion_confint``).

    Parameters
    ----------
    count : int
        Successes, ``0 <= count <= total``.
    total : int
        Trials.
    confidence : float
        Coverage of the interval.

    Returns
    -------
    Proportion
        Undefined (:attr:`Undefined.EMPTY`) when ``total`` is 0.

    Notes
    -----
    The interval treats the ``total`` trials as independent. Several images of one patient are
    not, so for per-image rates the interval is somewhat narrower than a patient-level one.
    """
    count, total = int(count), int(total)
    if not 0 <= count <= total:
        raise InvalidEvaluationInput(f"a proportion needs 0 <= count <= total, got {count}/{total}")
    if total == 0:
        return Proportion(count, total, None, None, None, Undefined.EMPTY)
    low, high = proportion_confint(count, total, alpha=1.0 - confidence, method="wilson")
    value = count / total
    # At 0/n and n/n statsmodels' bounds can miss the estimate by rounding (6.9e-18 for 0/37).
    return Proportion(count, total, value, min(float(low), value), max(float(high), value))


def generator(seed: int, *keys: str) -> np.random.Generator:
    """Make the random generator of ``seed`` and the names of what it is for.

    Parameters
    ----------
    seed : int
        The evaluation's seed, non-negative.
    *keys : str
        Names (label, subgroup attribute, group): each estimate draws from its own stream, so
        one label's interval does not depend on which other labels were evaluated before it.

    Returns
    -------
    numpy.random.Generator
        PCG64 seeded by ``SeedSequence([seed, crc32(key), ...])``.
    """
    entropy = [int(seed), *(zlib.crc32(key.encode()) for key in keys)]
    return np.random.default_rng(np.random.SeedSequence(entropy))
