"""Statistics of a model on a labelled dataset, and the benchmark report.

Per label: prevalence; AUROC with a patient-clustered bootstrap interval and DeLong's;
sensitivity, specificity, PPV and NPV with Wilson intervals at a given threshold and at the
thresholds giving target sensitivities; calibration (ECE, Brier, reliability diagram); ROC and
PR curves; the same metrics by subgroup (sex, age band, view, site) with a minimum count. The
result is a typed :class:`Report`, written as ``report.json`` (a versioned JSON Schema ships
beside this module) and a self-contained ``report.html``.

This subpackage needs the ``bench`` extra (scikit-learn, scipy, statsmodels, matplotlib,
jsonschema) and is imported by nothing on the runtime path: ``import models`` does not load it.
"""
