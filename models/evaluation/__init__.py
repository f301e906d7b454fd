"""Statistics of a model on a labelled dataset, and the benchmark report.

Per label: prevalence; AUROC with a patient-clustered bootstrap interval and DeLong's;
sensitivity, specificity, PPV and NPV with Wilson intervals at a given threshold and at the
thresholds giving target sensitivities; calibration (ECE, Brier, reliability diagram); ROC and
PR curves; the same metrics by subgroup (sex, age band, view, site) with a minimum count. The
result is a typed :class:`Report`, written as ``report.json`` (a versioned JSON Schema ships
beside this module) and a self-contained ``report.html``.

This subpackage needs the ``bench`` extra (scikit-learn, scipy, statsmodels, matplotlib,
jsonschema) and is imported by nothing on the runtime path: ``import models`` does not load it.

Examples
--------
>>> from models.evaluation import evaluate
>>> report = evaluate(
...     predictions={"Effusion": [0.9, 0.2, 0.7, 0.1]},
...     labels={"Effusion": [1, 0, 1, 0]},
...     patients=["p1", "p2", "p3", "p4"],
...     subgroups={"sex": ["F", "M", "F", "M"]},
...     thresholds={"Effusion": 0.5},
...     seed=0,
...     replicates=200,
... )
>>> report.labels[0].auroc.value
1.0
"""

from __future__ import annotations

from models.evaluation.estimates import InvalidEvaluationInput, Proportion, Undefined, wilson
from models.evaluation.evaluate import evaluate
from models.evaluation.report import (
    SCHEMA_VERSION,
    LabelResult,
    Provenance,
    Report,
    Settings,
    Throughput,
    load_schema,
    validate_document,
)
from models.evaluation.subgroups import AGE_BANDS, age_bands

__all__ = [
    "AGE_BANDS",
    "SCHEMA_VERSION",
    "InvalidEvaluationInput",
    "LabelResult",
    "Proportion",
    "Provenance",
    "Report",
    "Settings",
    "Throughput",
    "Undefined",
    "age_bands",
    "evaluate",
    "load_schema",
    "validate_document",
    "wilson",
]
