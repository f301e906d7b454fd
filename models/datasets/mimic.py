"""MIMIC-CXR-JPG 2.0.0 as released on PhysioNet: three gzipped tables and ``files/``.

Layout::

    mimic-cxr-2.0.0-chexpert.csv.gz   subject_id, study_id, the 14 CheXpert labels (per study)
    mimic-cxr-2.0.0-metadata.csv.gz   dicom_id, subject_id, study_id, ..., ViewPosition, ...
    mimic-cxr-2.0.0-split.csv.gz      dicom_id, study_id, subject_id, split
    files/p10/p10000032/s50414267/02aa804e-bde0afdd-112c0b34-7bc16630-4e384014.jpg

Uncompressed ``.csv`` copies are read too. One record per row of the metadata table; labels come
from the study's row of the CheXpert table (codes as CheXpert's: 1, 0, -1 uncertain, blank not
mentioned); a study absent from it has unknown labels. The patient is ``subject_id``. The
official split (``train``, ``validate``, ``test``) is patient-wise; ``test`` is the evaluation
split. Sex and age are not part of MIMIC-CXR-JPG (they are in MIMIC-IV); single site.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

from models.datasets.base import ALL, DatasetReader, ImageCheck, ReadOptions, Record, first_file
from models.datasets.tables import Table
from models.datasets.values import parse_view

__all__ = ["LABELS", "METADATA", "PREFIX", "READER"]

logger = logging.getLogger(__name__)

TITLE = "MIMIC-CXR-JPG"
PREFIX = "mimic-cxr-2.0.0-"

LABELS: tuple[str, ...] = (
    "Atelectasis",
    "Cardiomegaly",
    "Consolidation",
    "Edema",
    "Enlarged Cardiomediastinum",
    "Fracture",
    "Lung Lesion",
    "Lung Opacity",
    "No Finding",
    "Pleural Effusion",
    "Pleural Other",
    "Pneumonia",
    "Pneumothorax",
    "Support Devices",
)
"""The CheXpert labeller's 14 observations, in the column order of the chexpert table."""

METADATA: tuple[str, ...] = (
    "dicom_id",
    "subject_id",
    "study_id",
    "PerformedProcedureStepDescription",
    "ViewPosition",
    "Rows",
    "Columns",
    "StudyDate",
    "StudyTime",
    "ProcedureCodeSequence_CodeMeaning",
    "ViewCodeSequence_CodeMeaning",
    "PatientOrientationCodeSequence_CodeMeaning",
)
"""The metadata table's header as released."""

SPLITS: tuple[str, ...] = ("train", "validate", "test")


def _table(root: Path, name: str, required: tuple[str, ...]) -> Table:
    stem = f"{PREFIX}{name}.csv"
    return Table(first_file(root, (f"{stem}.gz", stem), TITLE), required)


def _labels(root: Path) -> dict[tuple[str, str], dict[str, int]]:
    table = _table(root, "chexpert", ("subject_id", "study_id", *LABELS))
    studies: dict[tuple[str, str], dict[str, int]] = {}
    for row in table:
        codes = {name: table.code(row, name) for name in LABELS}
        key = (row["subject_id"].strip(), row["study_id"].strip())
        studies[key] = {name: code for name, code in codes.items() if code is not None}
    return studies


def _splits(root: Path, needed: bool) -> dict[str, str] | None:
    stem = f"{PREFIX}split.csv"
    if not needed and not any((root / name).is_file() for name in (f"{stem}.gz", stem)):
        logger.info("%s: no %s(.gz) in %s; records carry no split", TITLE, stem, root)
        return None
    table = _table(root, "split", ("dicom_id", "split"))
    return {row["dicom_id"].strip(): row["split"].strip() for row in table}


def _image(root: Path, subject: str, study: str, dicom_id: str) -> Path:
    return root / "files" / f"p{subject[:2]}" / f"p{subject}" / f"s{study}" / f"{dicom_id}.jpg"


def _read(root: Path, options: ReadOptions) -> Iterator[Record]:
    metadata = _table(root, "metadata", ("dicom_id", "subject_id", "study_id", "ViewPosition"))
    studies = _labels(root)
    splits = _splits(root, needed=options.split != ALL)
    check = ImageCheck(TITLE, metadata.path, options)
    unlabelled = 0
    for row in metadata:
        dicom_id, subject, study = (row[k].strip() for k in ("dicom_id", "subject_id", "study_id"))
        split = splits.get(dicom_id) if splits is not None else None
        if not options.wants(split):
            continue
        image = _image(root, subject, study, dicom_id)
        if not check(image):
            continue
        findings = studies.get((subject, study))
        unlabelled += findings is None
        yield Record(
            dataset="mimic",
            image_id=dicom_id,
            image=image,
            patient=subject,
            study=study,
            labels=options.label_map.apply(findings, options.uncertainty),
            findings=findings or {},
            view=parse_view(row["ViewPosition"]),
            split=split,
        )
    check.report()
    if unlabelled:
        logger.warning("%s: %d images of studies without labels (unknown)", TITLE, unlabelled)


READER = DatasetReader(
    name="mimic",
    title=TITLE,
    function=_read,
    splits=SPLITS,
    evaluation_split="test",
    uncertain=True,
    vocabulary=LABELS,
)
