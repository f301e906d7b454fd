"""Production-monitoring scenarios: score samples, shifted or not, and reference score files.

The findings carrying the scores go into the store with
:func:`tests.builders.store.add_scored_findings`.
"""

from __future__ import annotations

import csv
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from worklist.reading.reference import REFERENCE_FILE

IMAGE_COLUMNS = (
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
"""The columns of a benchmark's ``predictions.csv`` before the per-label ones."""


def scores(n: int, seed: int, *, a: float = 2.0, b: float = 5.0) -> list[float]:
    """Draw ``n`` scores in (0, 1) from a Beta(``a``, ``b``) distribution, seeded.

    Beta(2, 5) (mean 0.29) stands for a model's usual output; Beta(5, 2) (mean 0.71) is the
    same model after a strong shift (a new scanner, a new population).

    Parameters
    ----------
    n, seed : int
        How many, and the seed of NumPy's generator.
    a, b : float, optional
        The Beta distribution's shape parameters.

    Returns
    -------
    list of float
        The scores.
    """
    return [float(x) for x in np.random.default_rng(seed).beta(a, b, size=n)]


def write_reference(models_dir: Path, model: str, columns: Mapping[str, Sequence[float]]) -> Path:
    """Write ``reference_predictions.csv`` beside where ``model``'s card lives.

    The layout of the ``predictions.csv`` that ``triage models benchmark`` writes: the image's
    columns (``image``, ``image_id``, ``patient``, ``site``...), then per label ``<label>``
    (truth, which monitoring ignores) and ``<label>_score``. Shorter columns are padded with
    blank cells.

    Parameters
    ----------
    models_dir : pathlib.Path
        The registry's folder.
    model : str
        ``NAME@VERSION``.
    columns : mapping of str to sequence of float
        Scores per label.

    Returns
    -------
    pathlib.Path
        The file written.
    """
    name, _, version = model.partition("@")
    path = models_dir / name / version / REFERENCE_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    labels = sorted(columns)
    rows = max((len(v) for v in columns.values()), default=0)
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow([*IMAGE_COLUMNS, *(c for x in labels for c in (x, f"{x}_score"))])
        for i in range(rows):
            cells: list[str] = []
            for label in labels:
                values = columns[label]
                cells += ["0", repr(values[i])] if i < len(values) else ["", ""]
            image = [f"images/{i:05d}.png", f"{i:05d}", f"P{i:05d}", "", "F", "60", "PA", "NIH"]
            writer.writerow([*image, "test", "0" * 64, *cells])
    return path
