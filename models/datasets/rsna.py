"""RSNA Pneumonia Detection Challenge (stage 2) as released on Kaggle.

Layout::

    stage_2_train_labels.csv          patientId, x, y, width, height, Target (a row per box)
    stage_2_detailed_class_info.csv   patientId, class (a row per box too)
    stage_2_train_images/<patientId>.dcm

``patientId`` names one image (the challenge had one radiograph per patient), so it is both the
image and the patient key. ``Target`` 1 marks a lung opacity suggesting pneumonia; the detailed
class is ``Lung Opacity``, ``No Lung Opacity / Not Normal`` or ``Normal``. Sex, age and view come
from the DICOM header. No official split for the labelled images; no uncertainty.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

from models.datasets.base import DatasetReader, ImageCheck, ReadOptions, Record
from models.datasets.tables import Table

__all__ = ["CLASSES", "READER"]

logger = logging.getLogger(__name__)

TITLE = "RSNA Pneumonia Detection"

CLASSES: tuple[str, ...] = ("Lung Opacity", "No Lung Opacity / Not Normal", "Normal")
"""The values of ``class`` in ``stage_2_detailed_class_info.csv``."""


def _targets(root: Path) -> tuple[Table, dict[str, int]]:
    table = Table(root / "stage_2_train_labels.csv", ("patientId", "Target"))
    targets: dict[str, int] = {}
    for row in table:
        code = table.code(row, "Target", allowed=(0, 1))
        if code is None:
            raise table.error(row, "Target", "blank; expected 0 or 1")
        pid = row["patientId"].strip()
        targets[pid] = max(targets.get(pid, 0), code)
    return table, targets


def _classes(root: Path) -> dict[str, str]:
    table = Table(root / "stage_2_detailed_class_info.csv", ("patientId", "class"))
    return {row["patientId"].strip(): row["class"].strip() for row in table}


def _read(root: Path, options: ReadOptions) -> Iterator[Record]:
    table, targets = _targets(root)
    classes = _classes(root)
    images = root / "stage_2_train_images"
    check = ImageCheck(TITLE, table.path, options)
    for pid, target in targets.items():
        image = images / f"{pid}.dcm"
        if not check(image):
            continue
        findings = {"Lung Opacity": target}
        if pid in classes:
            findings[classes[pid]] = 1
        header = check.header(image)
        if header is None:
            continue
        yield Record(
            dataset="rsna",
            image_id=pid,
            image=image,
            patient=pid,
            study=header.study_uid,
            labels=options.label_map.apply(findings, options.uncertainty),
            findings=findings,
            sex=header.sex,
            age=header.age,
            view=header.view,
            site=header.site,
        )
    check.report()


READER = DatasetReader(name="rsna", title=TITLE, function=_read, vocabulary=CLASSES)
