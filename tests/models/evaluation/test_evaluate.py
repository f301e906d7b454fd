"""The entry point: inputs checked, unknown truths left out, one stream per label and group."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from models.evaluation import InvalidEvaluationInput, Provenance, Throughput, Undefined, evaluate
from tests.builders.cohorts import Cohort


def _run(cohort: Cohort, **kwargs: Any) -> Any:
    arguments: dict[str, Any] = {
        "predictions": cohort.predictions,
        "labels": cohort.labels,
        "patients": cohort.patients,
        "subgroups": cohort.subgroups,
        "thresholds": cohort.thresholds,
        "seed": 3,
        "replicates": 100,
    }
    arguments.update(kwargs)
    return evaluate(**arguments)


def test_unknown_truths_are_left_out_image_by_image(cohort: Cohort) -> None:
    report = _run(cohort)
    truth = cohort.labels["Effusion"]
    known = ~np.isnan(truth)
    effusion = report.labels[0]
    assert effusion.n == int(known.sum()) < len(cohort.patients)
    assert effusion.n_positive == int(np.nansum(truth))
    expected = roc_auc_score(truth[known], cohort.predictions["Effusion"][known])
    assert effusion.auroc.value == pytest.approx(expected)
    assert effusion.n_patients == len({p for p, k in zip(cohort.patients, known, strict=True) if k})
    assert report.n_images == len(cohort.patients) and report.n_patients == 200


def test_operating_points_are_the_threshold_then_the_targets(cohort: Cohort) -> None:
    points = _run(cohort).labels[0].operating_points
    assert [p.name for p in points] == ["threshold", "sensitivity_0.90", "sensitivity_0.95"]
    assert points[0].threshold == 0.5 and points[0].target_sensitivity is None
    for point, target in zip(points[1:], (0.9, 0.95), strict=True):
        assert point.target_sensitivity == target
        assert point.sensitivity.value is not None and point.sensitivity.value >= target


def test_a_labels_results_do_not_depend_on_the_other_labels(cohort: Cohort) -> None:
    both = _run(cohort).labels[0]
    alone = _run(
        cohort,
        predictions={"Effusion": cohort.predictions["Effusion"]},
        labels={"Effusion": cohort.labels["Effusion"]},
        thresholds={"Effusion": 0.5},
    ).labels[0]
    assert both == alone


def test_a_label_without_any_known_truth_is_undefined_not_a_crash(cohort: Cohort) -> None:
    labels = {**cohort.labels, "Nodule": np.full(len(cohort.patients), np.nan)}
    nodule = _run(cohort, labels=labels).labels[2]
    assert nodule.n == 0 and nodule.prevalence.reason is Undefined.EMPTY
    assert nodule.auroc.reason is Undefined.NO_POSITIVES
    assert nodule.calibration.reason is Undefined.EMPTY
    assert nodule.operating_points[1].reason is Undefined.NO_POSITIVES
    assert nodule.subgroups == ()


def test_provenance_and_throughput_are_copied(cohort: Cohort) -> None:
    provenance = Provenance(model="m", model_sha256="ab" * 32, created_at="2026-01-01T00:00Z")
    report = _run(cohort, provenance=provenance, throughput=Throughput(50.0, 40.0))
    assert report.provenance == provenance
    assert report.throughput is not None and report.throughput.share_of_bare == 1.25
    assert Throughput(50.0).share_of_bare is None


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda c: replace(c, patients=c.patients[:-1]), "shape"),
        (lambda c: replace(c, thresholds={"Effusion": 0.5}), "same labels"),
        (lambda c: replace(c, thresholds={**c.thresholds, "Nodule": 1.5}), "not in [0, 1]"),
        (
            lambda c: replace(
                c, predictions={**c.predictions, "Nodule": c.predictions["Nodule"] * 2}
            ),
            "probabilities",
        ),
        (
            lambda c: replace(c, labels={**c.labels, "Nodule": c.labels["Nodule"] * 2}),
            "1, 0 or NaN",
        ),
        (lambda c: replace(c, subgroups={"sex": ["F"]}), "subgroups['sex']"),
    ],
)
def test_inputs_that_do_not_fit_are_refused(cohort: Cohort, change: Any, message: str) -> None:
    broken = change(cohort)
    with pytest.raises(
        InvalidEvaluationInput, match=message.replace("[", r"\[").replace("]", r"\]")
    ):
        _run(
            broken,
            predictions=broken.predictions,
            labels=broken.labels,
            patients=broken.patients,
            subgroups=broken.subgroups,
            thresholds=broken.thresholds,
        )


@pytest.mark.parametrize(
    "bad",
    [{"seed": -1}, {"replicates": 0}, {"confidence": 1.0}, {"min_count": 0}, {"ece_bins": 0},
     {"sensitivity_targets": (0.0,)}, {"max_curve_points": 1}],
)  # fmt: skip
def test_bad_parameters_are_refused(cohort: Cohort, bad: dict[str, Any]) -> None:
    with pytest.raises(InvalidEvaluationInput):
        _run(cohort, **bad)
