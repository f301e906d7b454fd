"""Benchmark a registered model on a dataset copy in its published layout, and calibrate it.

:func:`~models.benchmarking.run.score_dataset` reads the dataset with
:data:`models.datasets.READERS`, decodes and preprocesses its images in worker processes (DICOM
as the worker does, PNG/JPEG through the card's resize and normalisation, see
:mod:`~models.benchmarking.images`), runs the model in batches and caches the scores by image
sha256 (:mod:`~models.benchmarking.cache`); :mod:`~models.benchmarking.outputs` writes
``predictions.csv`` and evaluates the scores (:mod:`models.evaluation`);
:mod:`~models.benchmarking.calibrate` writes a card version whose thresholds reach a target
sensitivity on a split. ``triage models benchmark`` and ``triage models calibrate`` call them.

It needs the ``bench`` extra for the report (scikit-learn, scipy, statsmodels, matplotlib,
jsonschema).
"""

from __future__ import annotations

from models.benchmarking.run import BenchmarkOptions, Scored, read_records, score_dataset

__all__ = ["BenchmarkOptions", "Scored", "read_records", "score_dataset"]
