"""Wilson intervals, operating points and curves against statsmodels, scipy and scikit-learn."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import binomtest  # type: ignore[import-untyped, unused-ignore]
from sklearn.metrics import confusion_matrix, precision_recall_curve, roc_curve
from statsmodels.stats.proportion import proportion_confint

from models.evaluation.estimates import InvalidEvaluationInput, Undefined, wilson
from models.evaluation.operating_points import (
    operating_point,
    pr_curve,
    roc_points,
    threshold_for_sensitivity,
)


@pytest.mark.parametrize(
    ("count", "total"), [(0, 1), (0, 10), (3, 10), (10, 10), (87, 91), (512, 2000)]
)
@pytest.mark.parametrize("confidence", [0.95, 0.9])
def test_wilson_equals_statsmodels_and_scipy(count: int, total: int, confidence: float) -> None:
    result = wilson(count, total, confidence)
    low, high = proportion_confint(count, total, alpha=1 - confidence, method="wilson")
    scipy_ci = binomtest(count, total).proportion_ci(confidence_level=confidence, method="wilson")
    assert result.value == count / total
    assert result.low == pytest.approx(low, abs=1e-12)
    assert result.high == pytest.approx(high, abs=1e-12)
    assert result.low == pytest.approx(scipy_ci.low, abs=1e-9)
    assert result.high == pytest.approx(scipy_ci.high, abs=1e-9)


def test_wilson_with_an_empty_denominator_is_undefined() -> None:
    result = wilson(0, 0)
    assert result.value is result.low is result.high is None
    assert result.reason is Undefined.EMPTY
    with pytest.raises(InvalidEvaluationInput):
        wilson(5, 3)


def _scores(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.3).astype(np.int8)
    return y, np.round(np.clip(rng.normal(0.35 + 0.3 * y, 0.2), 0, 1), 3)


def test_operating_point_equals_scikit_learns_confusion_matrix() -> None:
    y, scores = _scores(700, 1)
    point = operating_point("threshold", y, scores, 0.5)
    tn, fp, fn, tp = confusion_matrix(y, scores >= 0.5, labels=[0, 1]).ravel()
    assert (point.tp, point.fp, point.tn, point.fn) == (tp, fp, tn, fn)
    assert point.sensitivity == wilson(tp, tp + fn)
    assert point.specificity == wilson(tn, tn + fp)
    assert point.ppv == wilson(tp, tp + fp)
    assert point.npv == wilson(tn, tn + fn)


def test_a_threshold_above_every_score_leaves_ppv_undefined() -> None:
    y, scores = _scores(100, 2)
    point = operating_point("threshold", y, scores, 1.0 + 1e-9)
    assert point.tp == point.fp == 0
    assert point.ppv.value is None and point.ppv.reason is Undefined.EMPTY
    assert point.sensitivity.value == 0.0 and point.specificity.value == 1.0


@pytest.mark.parametrize("target", [0.9, 0.95, 0.5, 1.0])
@pytest.mark.parametrize("n", [10, 40, 700])
def test_threshold_for_sensitivity_is_the_highest_reaching_the_target(
    target: float, n: int
) -> None:
    y, scores = _scores(n, n)
    y[:2] = [1, 0]
    threshold = threshold_for_sensitivity(y, scores, target)
    assert threshold is not None
    positives = scores[y == 1]
    assert np.mean(positives >= threshold) >= target - 1e-12
    higher = np.unique(scores[scores > threshold])
    if higher.size:  # the next score up misses the target
        assert np.mean(positives >= higher[0]) < target
    point = operating_point("s", y, scores, threshold, target_sensitivity=target)
    assert point.sensitivity.value is not None and point.sensitivity.value >= target - 1e-12


def test_target_sensitivity_of_exactly_nine_in_ten() -> None:
    """0.9 * 10 is 9.000000000000002 in binary: the threshold must still give 9 of 10."""
    y = np.array([1] * 10 + [0] * 5, dtype=np.int8)
    scores = np.array([0.95, 0.9, 0.85, 0.8, 0.75, 0.7, 0.65, 0.6, 0.55, 0.5, 0, 0, 0, 0, 0])
    assert threshold_for_sensitivity(y, scores, 0.9) == 0.55


def test_no_positives_gives_no_threshold() -> None:
    y = np.zeros(10, dtype=np.int8)
    scores = np.linspace(0, 1, 10)
    assert threshold_for_sensitivity(y, scores, 0.9) is None
    point = operating_point("sensitivity_0.90", y, scores, None, target_sensitivity=0.9)
    assert point.reason is Undefined.NO_POSITIVES and point.sensitivity.value is None


def test_curves_are_scikit_learns() -> None:
    y, scores = _scores(300, 3)
    fpr, tpr, _ = roc_curve(y, scores, drop_intermediate=True)
    precision, recall, _ = precision_recall_curve(y, scores, drop_intermediate=True)
    roc = roc_points(y, scores, max_points=10_000)
    pr = pr_curve(y, scores, max_points=10_000)
    np.testing.assert_array_equal(roc.x, fpr)
    np.testing.assert_array_equal(roc.y, tpr)
    np.testing.assert_array_equal(pr.x, recall)
    np.testing.assert_array_equal(pr.y, precision)


def test_thinned_curves_keep_both_ends() -> None:
    y, scores = _scores(3000, 4)
    scores = scores + np.random.default_rng(0).random(scores.size) * 1e-4  # few ties
    roc = roc_points(y, scores, max_points=50)
    assert 2 <= len(roc.x) <= 50
    assert (roc.x[0], roc.y[0]) == (0.0, 0.0) and (roc.x[-1], roc.y[-1]) == (1.0, 1.0)
    assert list(roc.x) == sorted(roc.x)


def test_curves_of_one_class_are_empty_with_a_reason() -> None:
    scores = np.linspace(0, 1, 10)
    assert roc_points(np.zeros(10, dtype=np.int8), scores, 100).reason is Undefined.NO_POSITIVES
    assert roc_points(np.ones(10, dtype=np.int8), scores, 100).reason is Undefined.NO_NEGATIVES
    assert pr_curve(np.zeros(10, dtype=np.int8), scores, 100).x == ()
