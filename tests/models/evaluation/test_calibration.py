"""ECE, Brier score and the reliability diagram against direct computations."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import brier_score_loss

from models.evaluation.calibration import calibration
from models.evaluation.estimates import Undefined


def _calibrated(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    scores = rng.random(n)
    return (rng.random(n) < scores).astype(np.int8), scores


def test_perfectly_calibrated_scores_have_a_small_ece() -> None:
    y, scores = _calibrated(50_000, 0)
    assert calibration(y, scores).ece is not None
    assert calibration(y, scores).ece < 0.02  # type: ignore[operator]


def test_overconfident_scores_have_a_large_ece() -> None:
    y, scores = _calibrated(50_000, 1)
    squashed = np.where(scores > 0.5, 1.0 - (1.0 - scores) / 3, scores / 3)  # pushed to 0 and 1
    result = calibration(y, squashed)
    assert result.ece is not None and result.ece > 0.1


@pytest.mark.parametrize("bins", [1, 5, 10, 15])
def test_ece_and_bins_equal_a_direct_loop(bins: int) -> None:
    rng = np.random.default_rng(bins)
    scores = np.concatenate([rng.random(997) ** 2, [0.0, 1.0, 0.5]])
    y = (rng.random(scores.size) < 0.4).astype(np.int8)
    result = calibration(y, scores, bins=bins)
    ece = 0.0
    for b in range(bins):
        low, high = b / bins, (b + 1) / bins
        inside = (scores >= low) & ((scores < high) | ((b == bins - 1) & (scores == 1.0)))
        diagram = result.bins[b]
        assert diagram.count == int(inside.sum())
        if inside.any():
            ece += inside.sum() / scores.size * abs(y[inside].mean() - scores[inside].mean())
            assert diagram.mean_score == pytest.approx(scores[inside].mean())
            assert diagram.observed.value == pytest.approx(y[inside].mean())
        else:
            assert diagram.mean_score is None and diagram.observed.value is None
    assert result.ece == pytest.approx(ece, abs=1e-12)
    assert sum(b.count for b in result.bins) == scores.size


def test_brier_is_scikit_learns() -> None:
    y, scores = _calibrated(1000, 2)
    result = calibration(y, scores)
    assert result.brier == pytest.approx(brier_score_loss(y, scores), abs=1e-15)
    assert result.brier == pytest.approx(np.mean((scores - y) ** 2), abs=1e-15)


def test_one_class_and_no_images() -> None:
    scores = np.array([0.1, 0.2, 0.9])
    result = calibration(np.zeros(3, dtype=np.int8), scores)
    assert result.brier == pytest.approx(np.mean(scores**2))
    empty = calibration(np.zeros(0, dtype=np.int8), np.zeros(0))
    assert empty.ece is None and empty.brier is None and empty.reason is Undefined.EMPTY
