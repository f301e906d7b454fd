"""What a benchmark writes: ``predictions.csv``, ``report.json`` and ``report.html``.

``predictions.csv`` has one row per image in the reader's order: ``image`` (path relative to the
dataset folder), ``image_id``, ``patient``, ``study``, ``sex``, ``age``, ``view``, ``site``,
``split``, ``sha256``, then per evaluated label ``<label>`` (truth: 1, 0, or blank when unknown)
and ``<label>_score`` (the model's probability). It is the file ``triage simulate`` reads.

``left_out.csv`` lists the images left out with ``--skip-bad-images``: ``image`` (relative to
the dataset folder), ``reason`` (``absent`` or ``unreadable``) and ``detail``; it always has its
header, so an empty list is visible as such.
"""

from __future__ import annotations

import csv
import logging
import math
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from models.benchmarking.run import BenchmarkOptions, Scored
from models.card import ModelCard

if TYPE_CHECKING:
    from models.evaluation import Report

__all__ = [
    "LEFT_OUT_COLUMNS",
    "PREDICTION_COLUMNS",
    "build_report",
    "write_left_out",
    "write_predictions",
]

logger = logging.getLogger(__name__)

PREDICTION_COLUMNS = (
    "image",
    "image_id",
    "patient",
    "study",
    "sex",
    "age",
    "view",
    "site",
    "split",
    "sha256",
)
"""The columns before the per-label truth and score columns."""

LEFT_OUT_COLUMNS = ("image", "reason", "detail")
"""The columns of ``left_out.csv``."""


def _text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return "" if math.isnan(value) else repr(value)
    return str(value)


def _relative(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return path.as_posix()


def write_predictions(scored: Scored, dataset_dir: Path, path: Path) -> Path:
    """Write ``predictions.csv``.

    Parameters
    ----------
    scored
        The records and scores.
    dataset_dir
        The dataset folder (image paths are written relative to it).
    path
        The file to write.

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    header = [*PREDICTION_COLUMNS]
    for label in scored.labels:
        header += [label, f"{label}_score"]
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as fh:
        out = csv.writer(fh, lineterminator="\n")
        out.writerow(header)
        for i, (record, digest) in enumerate(zip(scored.records, scored.digests, strict=True)):
            row = [
                _relative(record.image, dataset_dir),
                record.image_id,
                record.patient,
                _text(record.study),
                _text(record.sex),
                _text(record.age),
                _text(record.view),
                _text(record.site),
                _text(record.split),
                digest,
            ]
            for label in scored.labels:
                row += [_text(record.labels.get(label)), repr(float(scored.scores[label][i]))]
            out.writerow(row)
    logger.info("wrote %s (%d images)", path, len(scored.records))
    return path


def write_left_out(scored: Scored, dataset_dir: Path, path: Path) -> Path:
    """Write ``left_out.csv``: the images left out of the evaluation, and why.

    Parameters
    ----------
    scored
        The records and scores (with :attr:`~models.benchmarking.Scored.left_out`).
    dataset_dir
        The dataset folder (image paths are written relative to it).
    path
        The file to write.

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as fh:
        out = csv.writer(fh, lineterminator="\n")
        out.writerow(LEFT_OUT_COLUMNS)
        for item in scored.left_out:
            out.writerow([_relative(item.image, dataset_dir), item.reason, item.detail])
    return path


def build_report(
    scored: Scored,
    card: ModelCard,
    dataset_dir: Path,
    options: BenchmarkOptions,
    *,
    seed: int,
    replicates: int,
) -> Report:
    """Evaluate the scores against the labels (:func:`models.evaluation.evaluate`).

    Parameters
    ----------
    scored
        The records and scores.
    card
        The model's card (its thresholds are the report's first operating point).
    dataset_dir
        The dataset folder (its name is the report's dataset).
    options
        The layout and split.
    seed, replicates
        The bootstrap's seed and replicates.

    Returns
    -------
    models.evaluation.Report
        The report; write it with its ``write`` method.
    """
    from models.evaluation import Provenance, Throughput, age_bands, evaluate

    truths = {
        label: np.array(
            [np.nan if r.labels.get(label) is None else r.labels[label] for r in scored.records],
            dtype=np.float64,
        )
        for label in scored.labels
    }
    records = scored.records
    subgroups: dict[str, list[object]] = {
        "sex": [None if r.sex is None else str(r.sex) for r in records],
        "age_band": list(age_bands([r.age for r in records])),
        "view": [r.view for r in records],
        "site": [r.site for r in records],
    }
    thresholds = {label.name: label.threshold for label in card.outputs.labels}
    timing = scored.timing
    throughput = None
    if timing is not None:
        throughput = Throughput(
            images_per_s=float(timing["images_per_s"]),
            bare_images_per_s=timing.get("bare_images_per_s"),
            provider=timing.get("provider"),
            batch_size=timing.get("batch_size"),
            images=timing.get("images"),
        )
    return evaluate(
        predictions=scored.scores,
        labels=truths,
        patients=[r.patient for r in records],
        subgroups=subgroups,
        thresholds={name: thresholds[name] for name in scored.labels},
        seed=seed,
        replicates=replicates,
        provenance=Provenance(
            model=card.identity.name,
            model_version=card.identity.version,
            model_sha256=card.identity.sha256,
            dataset=dataset_dir.resolve().name,
            layout=options.layout,
            split=options.split,
            left_out_absent=sum(item.reason == "absent" for item in scored.left_out),
            left_out_unreadable=sum(item.reason == "unreadable" for item in scored.left_out),
        ),
        throughput=throughput,
    )
