"""The few DICOM header attributes the readers take from images (pydicom, pixels not read)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from models.datasets.values import Sex, parse_age, parse_sex, parse_view
from models.errors import DatasetError

__all__ = ["DicomHeader", "read_header"]

logger = logging.getLogger(__name__)

_TAGS = (
    "PatientID",
    "PatientSex",
    "PatientAge",
    "ViewPosition",
    "InstitutionName",
    "StudyInstanceUID",
)


@dataclass(frozen=True)
class DicomHeader:
    """Patient and acquisition attributes of one DICOM image (``None`` when absent or empty)."""

    patient_id: str | None
    sex: Sex | None
    age: float | None
    view: str | None
    site: str | None
    study_uid: str | None


def _text(value: object) -> str | None:
    text = str(value).strip() if value is not None else ""
    return text or None


def read_header(path: Path) -> DicomHeader:
    """Read patient ID, sex, age, view position, institution and study UID from a DICOM file.

    Parameters
    ----------
    path
        A DICOM Part 10 file (RSNA ``.dcm``, VinDr-CXR ``.dicom``...).

    Returns
    -------
    DicomHeader
        The attributes; those absent or empty are ``None``.

    Raises
    ------
    DatasetError
        When the file cannot be read as DICOM; the message names it.
    """
    import pydicom
    from pydicom.errors import InvalidDicomError

    try:
        ds = pydicom.dcmread(path, stop_before_pixels=True, specific_tags=list(_TAGS))
    except (OSError, InvalidDicomError, ValueError, EOFError) as exc:
        raise DatasetError(f"{path} cannot be read as DICOM: {exc}") from exc
    return DicomHeader(
        patient_id=_text(ds.get("PatientID")),
        sex=parse_sex(_text(ds.get("PatientSex"))),
        age=parse_age(_text(ds.get("PatientAge"))),
        view=parse_view(_text(ds.get("ViewPosition"))),
        site=_text(ds.get("InstitutionName")),
        study_uid=_text(ds.get("StudyInstanceUID")),
    )
