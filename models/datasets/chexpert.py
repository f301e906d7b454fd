"""CheXpert v1.0 (and CheXpert-v1.0-small) as released: ``train.csv``, ``valid.csv``, JPEGs.

Layout::

    train.csv   valid.csv
    train/patient00001/study1/view1_frontal.jpg
    valid/patient64541/study1/view1_frontal.jpg

``Path`` starts with the release's folder name (``CheXpert-v1.0-small/train/...``); the reader
resolves it from the split folder on, so the copy's own folder may be named anything. The
patient is the path's ``patientNNNNN`` and the study its ``studyN``. Label codes: ``1.0``
positive, ``0.0`` negative, ``-1.0`` uncertain (resolved by :class:`Uncertainty`), blank not
mentioned (negative). ``valid.csv`` (radiologists' consensus, no uncertainty) is the official
evaluation split; the hidden test set is not public. No site.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

from models.datasets.base import ALL, DatasetReader, ImageCheck, ReadOptions, Record
from models.datasets.tables import Table
from models.datasets.values import parse_age, parse_sex, parse_view

__all__ = ["LABELS", "READER", "REQUIRED", "SPLIT_FILES"]

logger = logging.getLogger(__name__)

TITLE = "CheXpert"

LABELS: tuple[str, ...] = (
    "No Finding",
    "Enlarged Cardiomediastinum",
    "Cardiomegaly",
    "Lung Opacity",
    "Lung Lesion",
    "Edema",
    "Consolidation",
    "Pneumonia",
    "Atelectasis",
    "Pneumothorax",
    "Pleural Effusion",
    "Pleural Other",
    "Fracture",
    "Support Devices",
)
"""The 14 observations, in the column order of ``train.csv``."""

REQUIRED: tuple[str, ...] = ("Path", "Sex", "Age", "Frontal/Lateral", "AP/PA", *LABELS)

SPLIT_FILES: dict[str, str] = {"train": "train.csv", "valid": "valid.csv"}


def _relative(table: Table, row: dict[str, str]) -> tuple[str, ...]:
    parts = PurePosixPath(row["Path"].strip()).parts
    for i, part in enumerate(parts):
        if part in SPLIT_FILES and len(parts) - i == 4:
            return parts[i:]
    problem = f"{row['Path']!r} is not <folder>/<split>/patientN/studyN/<view>.jpg"
    raise table.error(row, "Path", problem)


def _view(row: dict[str, str]) -> str | None:
    if row["Frontal/Lateral"].strip().lower() == "lateral":
        return parse_view(row["AP/PA"]) if row["AP/PA"].strip() in {"LL", "RL"} else "LATERAL"
    return parse_view(row["AP/PA"])


def _findings(table: Table, row: dict[str, str]) -> dict[str, int]:
    codes = {name: table.code(row, name) for name in LABELS}
    return {name: code for name, code in codes.items() if code is not None}


def _read(root: Path, options: ReadOptions) -> Iterator[Record]:
    names = SPLIT_FILES if options.split == ALL else {options.split: SPLIT_FILES[options.split]}
    tables = {split: Table(root / file, REQUIRED) for split, file in names.items()}
    for split, table in tables.items():
        check = ImageCheck(TITLE, table.path, options)
        for row in table:
            parts = _relative(table, row)
            image = root.joinpath(*parts)
            if not check(image):
                continue
            findings = _findings(table, row)
            yield Record(
                dataset="chexpert",
                image_id="/".join(parts),
                image=image,
                patient=parts[1],
                study=f"{parts[1]}/{parts[2]}",
                labels=options.label_map.apply(findings, options.uncertainty),
                findings=findings,
                sex=parse_sex(row["Sex"]),
                age=parse_age(row["Age"]),
                view=_view(row),
                split=split,
            )
        check.report()


READER = DatasetReader(
    name="chexpert",
    title=TITLE,
    function=_read,
    splits=tuple(SPLIT_FILES),
    evaluation_split="valid",
    uncertain=True,
    vocabulary=LABELS,
)
