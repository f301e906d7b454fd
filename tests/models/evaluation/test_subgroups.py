"""Subgroups: age bands, the minimum count, and the metrics on each subset."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from models.evaluation.subgroups import (
    UNKNOWN,
    Status,
    age_bands,
    group_labels,
    subgroup_results,
)


def test_age_bands_at_their_edges() -> None:
    ages = [0, 19.9, 20, 39, 40, 59.5, 60, 79, 80, 104, None, math.nan, -1]
    assert age_bands(ages) == [
        "0-19", "0-19", "20-39", "20-39", "40-59", "40-59", "60-79", "60-79", "80+", "80+",
        UNKNOWN, UNKNOWN, UNKNOWN,
    ]  # fmt: skip


def test_missing_values_form_the_unknown_group() -> None:
    assert group_labels(["F", None, "", " M ", math.nan, 3]).tolist() == [
        "F", UNKNOWN, UNKNOWN, "M", UNKNOWN, "3",
    ]  # fmt: skip


def _cohort() -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """Site A: 30 positives, 30 negatives; B: 10 and 50; C: 9 and 50; D: 50 and 9."""
    rng = np.random.default_rng(0)
    sites, y = [], []
    for site, pos, neg in (("A", 30, 30), ("B", 10, 50), ("C", 9, 50), ("D", 50, 9)):
        sites += [site] * (pos + neg)
        y += [1] * pos + [0] * neg
    labels = np.array(y, dtype=np.int8)
    scores = np.clip(rng.normal(0.4 + 0.3 * labels, 0.2), 0, 1)
    patients = np.arange(labels.size, dtype=np.intp) // 2
    return labels, scores, patients, {"site": group_labels(sites)}


def test_the_minimum_count_is_honoured() -> None:
    y, scores, patients, attributes = _cohort()
    results = subgroup_results(
        "L", y, scores, patients, attributes, 0.5, min_count=10, replicates=50, seed=0
    )
    by_group = {r.group: r for r in results}
    assert [r.group for r in results] == ["A", "B", "C", "D"]
    assert by_group["A"].status is Status.ESTIMATED and by_group["B"].status is Status.ESTIMATED
    for small in ("C", "D"):
        row = by_group[small]
        assert row.status is Status.TOO_FEW
        assert row.prevalence is None and row.auroc is None and row.operating_point is None
    assert (by_group["C"].n, by_group["C"].n_positive, by_group["C"].n_negative) == (59, 9, 50)
    lower = subgroup_results(
        "L", y, scores, patients, attributes, 0.5, min_count=9, replicates=50, seed=0
    )
    assert all(r.status is Status.ESTIMATED for r in lower)


def test_subgroup_metrics_are_those_of_the_subset() -> None:
    y, scores, patients, attributes = _cohort()
    results = subgroup_results(
        "L", y, scores, patients, attributes, 0.5, min_count=5, replicates=50, seed=0
    )
    for row in results:
        inside = attributes["site"] == row.group
        assert row.auroc is not None and row.operating_point is not None
        assert row.auroc.value == pytest.approx(roc_auc_score(y[inside], scores[inside]))
        assert row.n_patients == np.unique(patients[inside]).size
        called = scores[inside] >= 0.5
        assert row.operating_point.tp == int(np.sum(called & (y[inside] == 1)))


def test_unknown_sorts_last() -> None:
    y, scores, patients, _ = _cohort()
    sexes = group_labels(
        [None if i % 3 == 0 else ("M" if label else "F") for i, label in enumerate(y)]
    )
    results = subgroup_results(
        "L", y, scores, patients, {"sex": sexes}, 0.5, min_count=1, replicates=20, seed=0
    )
    assert [r.group for r in results] == ["F", "M", UNKNOWN]
