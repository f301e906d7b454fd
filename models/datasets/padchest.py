"""PadChest as released by BIMCV: one labels table and 16-bit PNGs in numbered folders.

Layout::

    PADCHEST_chest_x_ray_images_labels_160K_01.02.19.csv   (or .csv.gz)
    <ImageDir>/<ImageID>    e.g. 0/216840111366964012283393834152009033102258826_00-059-087.png

``Labels`` is a Python-list-like string of the report's findings (``"['pleural effusion',
'cardiomegaly']"``, ``"['normal']"``); entries are stripped of spaces. A row with an empty
``Labels`` has unknown labels. The patient is ``PatientID`` and the study ``StudyID``; sex is
``PatientSex_DICOM``; age is the study year (``StudyDate_DICOM``) less ``PatientBirth`` (a year);
the view is ``Projection`` (``PA``, ``AP``, ``AP_horizontal`` -> AP, ``L`` -> LATERAL, ...).
No official split, no uncertainty, one site.
"""

from __future__ import annotations

import ast
import logging
from collections.abc import Iterator
from pathlib import Path

from models.datasets.base import DatasetReader, ImageCheck, ReadOptions, Record, first_file
from models.datasets.tables import Table
from models.datasets.values import parse_age, parse_sex, parse_view

__all__ = ["CSV_NAME", "READER", "REQUIRED"]

logger = logging.getLogger(__name__)

TITLE = "PadChest"
CSV_NAME = "PADCHEST_chest_x_ray_images_labels_160K_01.02.19.csv"

REQUIRED: tuple[str, ...] = (
    "ImageID",
    "ImageDir",
    "StudyDate_DICOM",
    "StudyID",
    "PatientID",
    "PatientBirth",
    "PatientSex_DICOM",
    "Projection",
    "Labels",
)


def parse_labels(value: str) -> dict[str, int] | None:
    """Return ``{label: 1}`` from a ``Labels`` cell; ``None`` when the cell is empty.

    Parameters
    ----------
    value
        The cell, a Python list literal of strings.

    Returns
    -------
    dict or None
        Each non-empty stripped entry, positive.

    Raises
    ------
    ValueError
        When the cell is not a list of strings.
    """
    text = value.strip()
    if not text or text.lower() == "nan":
        return None
    try:
        parsed = ast.literal_eval(text)
    except (ValueError, SyntaxError, MemoryError, RecursionError) as exc:
        raise ValueError(f"{value!r} is not a list of labels") from exc
    if not isinstance(parsed, list) or not all(isinstance(v, str) for v in parsed):
        raise ValueError(f"{value!r} is not a list of labels")
    return {label.strip(): 1 for label in parsed if label.strip()}


def _age(row: dict[str, str]) -> float | None:
    date, birth = row["StudyDate_DICOM"].strip(), row["PatientBirth"].strip()
    try:
        return parse_age(str(int(date[:4]) - int(float(birth))))
    except ValueError:
        return None


def _folder(value: str) -> str:
    text = value.strip()
    return text[:-2] if text.endswith(".0") else text


def _read(root: Path, options: ReadOptions) -> Iterator[Record]:
    table = Table(first_file(root, (CSV_NAME, f"{CSV_NAME}.gz"), TITLE), REQUIRED)
    check = ImageCheck(TITLE, table.path, options)
    for row in table:
        image_id = row["ImageID"].strip()
        image = root / _folder(row["ImageDir"]) / image_id
        if not check(image):
            continue
        try:
            findings = parse_labels(row["Labels"])
        except ValueError as exc:
            raise table.error(row, "Labels", str(exc)) from None
        yield Record(
            dataset="padchest",
            image_id=image_id,
            image=image,
            patient=row["PatientID"].strip(),
            study=row["StudyID"].strip() or None,
            labels=options.label_map.apply(findings, options.uncertainty),
            findings=findings or {},
            sex=parse_sex(row["PatientSex_DICOM"]),
            age=_age(row),
            view=parse_view(row["Projection"]),
        )
    check.report()


READER = DatasetReader(name="padchest", title=TITLE, function=_read)
