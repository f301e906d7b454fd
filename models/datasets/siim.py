"""SIIM-ACR Pneumothorax Segmentation as released: ``train-rle.csv`` and a DICOM tree.

Layout::

    train-rle.csv                  header "ImageId, EncodedPixels" (note the space)
    dicom-images-train/<study UID>/<series UID>/<ImageId>.dcm

``EncodedPixels`` is `` -1`` for an image without pneumothorax, else the run-length encoding of
one region; an image with several regions has several rows. An image is positive when any of
its rows has a region. ``ImageId`` is the SOP Instance UID; the patient, sex, age, view and site
come from the DICOM header. No official split for the labelled images; no uncertainty.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

from models.datasets.base import DatasetReader, ImageCheck, ReadOptions, Record
from models.datasets.tables import Table
from models.errors import DatasetError

__all__ = ["IMAGES", "LABELS", "READER"]

logger = logging.getLogger(__name__)

TITLE = "SIIM-ACR Pneumothorax"
IMAGES = "dicom-images-train"
LABELS: tuple[str, ...] = ("Pneumothorax",)


def _positives(root: Path) -> tuple[Table, dict[str, int]]:
    table = Table(root / "train-rle.csv", ("ImageId", "EncodedPixels"), strip_names=True)
    positive: dict[str, int] = {}
    for row in table:
        image_id = row["ImageId"].strip()
        runs = row["EncodedPixels"].strip()
        if not runs:
            raise table.error(row, "EncodedPixels", "empty (-1 means no pneumothorax)")
        positive[image_id] = max(positive.get(image_id, 0), int(runs != "-1"))
    return table, positive


def _dicom_index(root: Path) -> dict[str, Path]:
    folder = root / IMAGES
    if not folder.is_dir():
        raise DatasetError(f"{TITLE}: folder {folder} not found")
    return {path.stem: path for path in sorted(folder.rglob("*.dcm"))}


def _read(root: Path, options: ReadOptions) -> Iterator[Record]:
    table, positive = _positives(root)
    images = _dicom_index(root)
    check = ImageCheck(TITLE, table.path, options)
    for image_id, code in positive.items():
        image = images.get(image_id, root / IMAGES / f"{image_id}.dcm")
        if not check(image):
            continue
        header = check.header(image)
        if header is None:
            continue
        findings = {"Pneumothorax": code}
        yield Record(
            dataset="siim",
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
        )
    check.report()


READER = DatasetReader(name="siim", title=TITLE, function=_read, vocabulary=LABELS)
