"""AUROC, DeLong and the patient-clustered bootstrap against independent computations."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.typing import NDArray
from scipy import stats  # type: ignore[import-untyped, unused-ignore]
from sklearn.metrics import roc_auc_score

from models.evaluation import auroc as auroc_module
from models.evaluation.auroc import auroc, bootstrap_replicates, delong
from models.evaluation.estimates import Undefined


def _data(
    n: int, n_patients: int, seed: int, *, decimals: int | None = None, shift: float = 1.0
) -> tuple[NDArray[np.int8], NDArray[np.float64], NDArray[np.intp]]:
    rng = np.random.default_rng(seed)
    patients = np.concatenate([np.arange(n_patients), rng.integers(0, n_patients, n - n_patients)])
    y = (rng.random(n) < 0.3).astype(np.int8)
    scores = 1.0 / (1.0 + np.exp(-(rng.normal(size=n) + shift * y)))
    if decimals is not None:
        scores = np.round(scores, decimals)  # many ties
    return y, scores, patients.astype(np.intp)


def delong_1988(y: NDArray[np.int8], scores: NDArray[np.float64]) -> tuple[float, float]:
    """DeLong, DeLong & Clarke-Pearson (1988), straight from the definition: O(m * n)."""
    x = scores[y == 1]
    z = scores[y == 0]
    m, n = x.size, z.size
    psi = (x[:, None] > z[None, :]).astype(float) + 0.5 * (x[:, None] == z[None, :])
    theta = psi.sum() / (m * n)
    v10 = psi.sum(axis=1) / n  # structural component of each positive
    v01 = psi.sum(axis=0) / m  # structural component of each negative
    s10 = ((v10 - theta) ** 2).sum() / (m - 1)
    s01 = ((v01 - theta) ** 2).sum() / (n - 1)
    return float(theta), float(s10 / m + s01 / n)


@pytest.mark.parametrize(("n", "decimals"), [(60, None), (500, None), (500, 1), (2000, 2)])
def test_auroc_equals_scikit_learn(n: int, decimals: int | None) -> None:
    y, scores, patients = _data(n, n // 3, seed=n, decimals=decimals)
    result = auroc(y, scores, patients, 50, np.random.default_rng(0))
    assert result.value == pytest.approx(roc_auc_score(y, scores), abs=1e-12)
    assert result.reason is None


@pytest.mark.parametrize(("n", "decimals"), [(7, None), (60, None), (400, None), (400, 1)])
def test_delong_equals_the_1988_definition(n: int, decimals: int | None) -> None:
    y, scores, _ = _data(n, n, seed=n + 1, decimals=decimals)
    y[:2] = [0, 1]  # both classes, at least two of each for n = 7
    y[2:4] = [0, 1]
    theta, variance = delong_1988(y, scores)
    auc, interval = delong(y, scores, confidence=0.95)
    assert auc == pytest.approx(theta, abs=1e-6)
    assert interval.variance is not None
    assert interval.variance == pytest.approx(variance, abs=1e-6, rel=1e-6)
    half = stats.norm.ppf(0.975) * np.sqrt(variance)
    assert interval.low == pytest.approx(max(0.0, theta - half), abs=1e-6)
    assert interval.high == pytest.approx(min(1.0, theta + half), abs=1e-6)


def test_delong_needs_two_of_each_class() -> None:
    y = np.array([1, 0, 0, 0], dtype=np.int8)
    auc, interval = delong(y, np.array([0.9, 0.1, 0.2, 0.3]))
    assert auc == 1.0
    assert interval.variance is None and interval.reason is Undefined.TOO_FEW


def test_each_replicate_is_scikit_learns_weighted_auroc() -> None:
    """A replicate's AUROC is roc_auc_score with the drawn patients' counts as weights."""
    y, scores, patients = _data(300, 90, seed=3, decimals=2)
    replicates = bootstrap_replicates(y, scores, patients, 25, np.random.default_rng(11))
    rng = np.random.default_rng(11)
    for value in replicates:
        drawn = rng.integers(0, 90, size=90)
        weights = np.bincount(drawn, minlength=90)[patients]
        assert value == pytest.approx(roc_auc_score(y, scores, sample_weight=weights), abs=1e-12)


def test_bootstrap_is_seed_deterministic_and_blocking_does_not_matter(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    y, scores, patients = _data(1000, 300, seed=4)
    first = bootstrap_replicates(y, scores, patients, 200, np.random.default_rng(5))
    again = bootstrap_replicates(y, scores, patients, 200, np.random.default_rng(5))
    other = bootstrap_replicates(y, scores, patients, 200, np.random.default_rng(6))
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)
    monkeypatch.setattr(auroc_module, "_BLOCK_ELEMENTS", 7 * 1000)  # blocks of 7 replicates
    blocked = bootstrap_replicates(y, scores, patients, 200, np.random.default_rng(5))
    np.testing.assert_array_equal(first, blocked)


def _width(result: auroc_module.AurocResult) -> float:
    assert result.bootstrap is not None
    assert result.bootstrap.low is not None and result.bootstrap.high is not None
    return result.bootstrap.high - result.bootstrap.low


def test_duplicating_every_image_of_a_patient_does_not_narrow_the_clustered_interval() -> None:
    """Five copies of every image: same patients, so the clustered interval must not shrink.

    With the same seed the draws are identical (they depend only on the number of patients)
    and each replicate's AUROC is unchanged (every pair's weight is multiplied by 25), so the
    interval is the same up to rounding (tolerance 1e-9). With another seed it differs only by
    Monte Carlo error, a few per cent of the width with 2,000 replicates (tolerance 15%). As a
    check that the test can fail, the same copies treated as independent images (each its own
    cluster, i.e. an image-level bootstrap) narrow the interval by about sqrt(5).
    """
    y, scores, patients = _data(600, 200, seed=7)
    base = _width(auroc(y, scores, patients, 2000, np.random.default_rng(1)))
    y5, scores5, patients5 = np.repeat(y, 5), np.repeat(scores, 5), np.repeat(patients, 5)
    same_seed = _width(auroc(y5, scores5, patients5, 2000, np.random.default_rng(1)))
    other_seed = _width(auroc(y5, scores5, patients5, 2000, np.random.default_rng(2)))
    assert same_seed >= base * (1 - 1e-9)
    assert other_seed >= base * 0.85
    per_image = np.arange(y5.size, dtype=np.intp)
    naive = _width(auroc(y5, scores5, per_image, 2000, np.random.default_rng(1)))
    assert naive < base * 0.6


def test_perfect_random_and_constant_scores() -> None:
    rng = np.random.default_rng(8)
    y = (rng.random(4000) < 0.4).astype(np.int8)
    patients = np.arange(y.size, dtype=np.intp) // 2
    perfect = auroc(y, 0.2 + 0.6 * y + 0.1 * rng.random(y.size), patients, 300, rng)
    assert perfect.value == 1.0
    assert perfect.bootstrap is not None and perfect.bootstrap.low == 1.0
    random = auroc(y, rng.random(y.size), patients, 300, rng)
    assert random.value is not None and abs(random.value - 0.5) < 0.03
    assert random.bootstrap is not None and random.bootstrap.low is not None
    assert random.bootstrap.low < 0.5 < (random.bootstrap.high or 0)
    constant = auroc(y, np.full(y.size, 0.3), patients, 300, rng)
    assert constant.value is None and constant.reason is Undefined.CONSTANT_SCORES
    assert constant.bootstrap is None and constant.delong is None


@pytest.mark.parametrize(
    ("label", "reason"), [(0, Undefined.NO_POSITIVES), (1, Undefined.NO_NEGATIVES)]
)
def test_one_class_only_is_undefined(label: int, reason: Undefined) -> None:
    y = np.full(20, label, dtype=np.int8)
    result = auroc(
        y, np.linspace(0, 1, 20), np.arange(20, dtype=np.intp), 10, np.random.default_rng()
    )
    assert result.value is None and result.reason is reason


def test_replicates_that_draw_one_class_are_left_out() -> None:
    # Two patients, one positive image and one negative: half the replicates draw one class.
    y = np.array([1, 0], dtype=np.int8)
    result = auroc(
        y, np.array([0.8, 0.2]), np.array([0, 1], dtype=np.intp), 400, np.random.default_rng(0)
    )
    assert result.bootstrap is not None
    assert 100 < result.bootstrap.valid_replicates < 300
    assert result.bootstrap.replicates == 400
    assert result.bootstrap.low == result.bootstrap.high == 1.0
