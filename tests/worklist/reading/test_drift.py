"""The statistics of monitoring against independent computations (no shared code)."""

from __future__ import annotations

import math
import statistics
import sys
from bisect import bisect_right

import pytest
from statsmodels.stats.proportion import proportion_confint

from tests.builders.monitoring import scores
from worklist.reading.drift import (
    PSI_FLOOR,
    MonitoringUnavailableError,
    histogram,
    ks_test,
    psi,
    wilson,
)


def _psi_by_hand(reference: list[float], current: list[float], bins: int) -> float:
    """The PSI with the standard library only: quantile edges, bins closed on the left."""
    edges = sorted(set(statistics.quantiles(reference, n=bins, method="inclusive")))
    total = 0.0
    for i in range(len(edges) + 1):
        r = sum(1 for x in reference if bisect_right(edges, x) == i) / len(reference)
        c = sum(1 for x in current if bisect_right(edges, x) == i) / len(current)
        r, c = max(r, PSI_FLOOR), max(c, PSI_FLOOR)
        total += (c - r) * math.log(c / r)
    return total


@pytest.mark.parametrize(("shift_a", "shift_b"), [(2.0, 5.0), (2.5, 4.0), (5.0, 2.0)])
def test_psi_equals_a_computation_by_hand(shift_a: float, shift_b: float) -> None:
    reference = scores(400, seed=1)
    current = scores(300, seed=2, a=shift_a, b=shift_b)
    drift = psi(reference, current, bins=10)
    assert drift.psi == pytest.approx(_psi_by_hand(reference, current, 10), rel=1e-12)
    assert len(drift.edges) == 9
    assert sum(drift.reference_share) == pytest.approx(1.0)
    assert sum(drift.current_share) == pytest.approx(1.0)


def test_psi_of_a_known_shift() -> None:
    # Two bins split at the reference median 0.5: shares (0.5, 0.5) become (0.9, 0.1).
    reference = [0.1] * 50 + [0.9] * 50
    current = [0.1] * 90 + [0.9] * 10
    expected = 0.4 * math.log(0.9 / 0.5) + (-0.4) * math.log(0.1 / 0.5)
    assert psi(reference, current, bins=2).psi == pytest.approx(expected, rel=1e-12)


def test_psi_is_finite_with_empty_bins_and_zero_for_the_same_sample() -> None:
    reference = scores(200, seed=3)
    assert psi(reference, reference).psi == pytest.approx(0.0, abs=1e-12)
    everything_high = [0.99] * 50
    value = psi(reference, everything_high).psi
    assert math.isfinite(value)
    assert value > 1.0


def test_psi_refuses_empty_samples() -> None:
    with pytest.raises(ValueError, match="both samples"):
        psi([], [0.5])


def test_ks_statistic_is_the_largest_ecdf_distance() -> None:
    reference = scores(150, seed=4)
    current = scores(120, seed=5, a=3.0, b=4.0)
    pooled = sorted(set(reference) | set(current))
    by_hand = max(
        abs(
            sum(1 for x in reference if x <= t) / len(reference)
            - sum(1 for x in current if x <= t) / len(current)
        )
        for t in pooled
    )
    statistic, pvalue = ks_test(reference, current)
    assert statistic == pytest.approx(by_hand, abs=1e-12)
    assert 0.0 <= pvalue <= 1.0


def test_ks_pvalue_tells_shifted_from_same() -> None:
    reference = scores(500, seed=6)
    _, same = ks_test(reference, scores(300, seed=7))
    _, shifted = ks_test(reference, scores(300, seed=8, a=5.0, b=2.0))
    assert same > 0.05
    assert shifted < 1e-10


@pytest.mark.parametrize(("k", "n"), [(0, 10), (3, 10), (10, 10), (47, 120), (1, 1), (999, 1000)])
def test_wilson_equals_statsmodels(k: int, n: int) -> None:
    rate, low, high = wilson(k, n)
    ref_low, ref_high = proportion_confint(k, n, alpha=0.05, method="wilson")
    assert rate == k / n
    assert low == pytest.approx(ref_low, abs=1e-12)
    assert high == pytest.approx(ref_high, abs=1e-12)


def test_wilson_of_nothing() -> None:
    assert wilson(0, 0) == (None, 0.0, 1.0)


def test_histogram_shares_on_the_unit_interval() -> None:
    shares = histogram([0.0, 0.01, 0.5, 1.0, 1.7, -0.2], bins=4)
    assert shares == pytest.approx([3 / 6, 0, 1 / 6, 2 / 6])
    assert histogram([], bins=3) == [0.0, 0.0, 0.0]


def test_without_scipy_monitoring_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "scipy.stats", None)
    with pytest.raises(MonitoringUnavailableError, match="bench extra"):
        ks_test([0.1, 0.2], [0.3])
    with pytest.raises(MonitoringUnavailableError, match="scipy"):
        wilson(1, 2)
