"""VinDr-CXR 1.0.0 as released on PhysioNet: image-level labels and DICOM files.

Layout::

    annotations/image_labels_train.csv   image_id, rad_id, the 28 labels (a row per radiologist)
    annotations/image_labels_test.csv    image_id, the 28 labels (consensus of five)
    train/<image_id>.dicom
    test/<image_id>.dicom

Each training image was read by three radiologists independently. Policy: a finding all of
them marked is positive (1), one none marked is negative (0), and one they disagree on is
uncertain (-1), which :class:`Uncertainty` resolves: ``ignore`` leaves it unknown, ``negative``
keeps only unanimous positives, ``positive`` takes any radiologist's positive. Test labels are
the consensus and never uncertain. The images carry no patient identifier (each image is its own
patient unless the DICOM header has a Patient ID); sex, age, view and site come from the DICOM
header. Official split: ``train`` and ``test`` (the evaluation split).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

from models.datasets.base import ALL, DatasetReader, ImageCheck, ReadOptions, Record
from models.datasets.tables import Table

__all__ = ["LABELS", "LABEL_FILES", "READER"]

logger = logging.getLogger(__name__)

TITLE = "VinDr-CXR"

LABELS: tuple[str, ...] = (
    "Aortic enlargement",
    "Atelectasis",
    "Calcification",
    "Cardiomegaly",
    "Clavicle fracture",
    "Consolidation",
    "Edema",
    "Emphysema",
    "Enlarged PA",
    "ILD",
    "Infiltration",
    "Lung Opacity",
    "Lung cavity",
    "Lung cyst",
    "Mediastinal shift",
    "Nodule/Mass",
    "Pleural effusion",
    "Pleural thickening",
    "Pneumothorax",
    "Pulmonary fibrosis",
    "Rib fracture",
    "Other lesion",
    "COPD",
    "Lung tumor",
    "Pneumonia",
    "Tuberculosis",
    "Other diseases",
    "No finding",
)
"""The 22 local and 6 global labels, in the column order of ``image_labels_*.csv``."""

LABEL_FILES: dict[str, str] = {
    "train": "annotations/image_labels_train.csv",
    "test": "annotations/image_labels_test.csv",
}


def _votes(table: Table) -> dict[str, dict[str, list[int]]]:
    votes: dict[str, dict[str, list[int]]] = {}
    for row in table:
        image_id = row["image_id"].strip()
        per_label = votes.setdefault(image_id, {name: [] for name in LABELS})
        for name in LABELS:
            code = table.code(row, name, allowed=(0, 1))
            if code is None:
                raise table.error(row, name, "blank; expected 0 or 1")
            per_label[name].append(code)
    return votes


def _agreement(marks: list[int]) -> int:
    if all(marks):
        return 1
    return -1 if any(marks) else 0


def _read(root: Path, options: ReadOptions) -> Iterator[Record]:
    splits = LABEL_FILES if options.split == ALL else {options.split: LABEL_FILES[options.split]}
    tables = {split: Table(root / file, ("image_id", *LABELS)) for split, file in splits.items()}
    for split, table in tables.items():
        check = ImageCheck(TITLE, table.path, options)
        for image_id, votes in _votes(table).items():
            image = root / split / f"{image_id}.dicom"
            if not check(image):
                continue
            findings = {name: _agreement(marks) for name, marks in votes.items() if any(marks)}
            header = check.header(image)
            if header is None:
                continue
            yield Record(
                dataset="vindr",
                image_id=image_id,
                image=image,
                patient=header.patient_id or image_id,
                study=header.study_uid,
                labels=options.label_map.apply(findings, options.uncertainty),
                findings=findings,
                sex=header.sex,
                age=header.age,
                view=header.view,
                site=header.site,
                split=split,
            )
        check.report()


READER = DatasetReader(
    name="vindr",
    title=TITLE,
    function=_read,
    splits=tuple(LABEL_FILES),
    evaluation_split="test",
    uncertain=True,
    vocabulary=LABELS,
)
