"""The project's own layout (``triage phantoms generate``'s default): ``labels.csv`` and DICOM.

Layout::

    labels.csv   path, study_instance_uid, sop_instance_uid, one 0/1 column per finding
    dicom/phantom_000000.dcm

``path`` is relative to the CSV. Every column after the two UIDs is a finding. Patient, sex,
age, view and site come from the DICOM header. No split, no uncertainty.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

from models.datasets.base import DatasetReader, ImageCheck, ReadOptions, Record
from models.datasets.tables import Table

__all__ = ["READER", "REQUIRED"]

logger = logging.getLogger(__name__)

TITLE = "generic layout"
REQUIRED: tuple[str, ...] = ("path", "study_instance_uid", "sop_instance_uid")


def _findings(table: Table, row: dict[str, str], names: tuple[str, ...]) -> dict[str, int]:
    findings: dict[str, int] = {}
    for name in names:
        if table.code(row, name, allowed=(0, 1)):
            findings[name] = 1
    return findings


def _read(root: Path, options: ReadOptions) -> Iterator[Record]:
    table = Table(root / "labels.csv", REQUIRED)
    names = tuple(c for c in table.columns if c not in REQUIRED)
    check = ImageCheck(TITLE, table.path, options)
    for row in table:
        image = root / row["path"].strip()
        if not check(image):
            continue
        findings = {name: 0 for name in names} | _findings(table, row, names)
        header = check.header(image)
        if header is None:
            continue
        yield Record(
            dataset="generic",
            image_id=row["sop_instance_uid"].strip(),
            image=image,
            patient=header.patient_id or row["study_instance_uid"].strip(),
            study=row["study_instance_uid"].strip(),
            labels=options.label_map.apply(findings, options.uncertainty),
            findings=findings,
            sex=header.sex,
            age=header.age,
            view=header.view,
            site=header.site,
        )
    check.report()


READER = DatasetReader(name="generic", title=TITLE, function=_read)
