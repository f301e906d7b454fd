"""The terms the FHIR resources of :mod:`worklist.reading.fhir` are written in.

Code and identifier systems (DICOM scheme designators as FHIR code systems), DICOM dates as FHIR
dateTimes, and the logical reference to a study's patient.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from worklist.db.schema import Study

__all__ = [
    "DCM_SYSTEM",
    "DICOM_UID_SYSTEM",
    "LOCAL_LABEL_SYSTEM",
    "SCHEME_SYSTEMS",
    "SHA256_SYSTEM",
    "V2_0203",
    "coding",
    "dicom_uid",
    "instant",
    "number",
    "patient_reference",
    "row_id",
    "study_datetime",
]

logger = logging.getLogger(__name__)

DICOM_UID_SYSTEM = "urn:dicom:uid"
"""The identifier system of DICOM UIDs (values ``urn:oid:<uid>``)."""

DCM_SYSTEM = "http://dicom.nema.org/resources/ontology/DCM"
"""DICOM's own code system (modalities, ``Probability``)."""

SHA256_SYSTEM = "urn:ics-triage:onnx-sha256"
"""This project's identifier system for the sha256 (hex) of a model's ONNX file."""

LOCAL_LABEL_SYSTEM = "urn:ics-triage:label"
"""This project's code system for a label whose card gives no concept (as the SR's 99ICSTRIAGE)."""

SCHEME_SYSTEMS = {
    "SCT": "http://snomed.info/sct",
    "LN": "http://loinc.org",
    "DCM": DCM_SYSTEM,
    "RADLEX": "http://radlex.org",
    "UCUM": "http://unitsofmeasure.org",
    "99ICSTRIAGE": LOCAL_LABEL_SYSTEM,
}
"""FHIR code systems of DICOM coding scheme designators (PS3.16 section 8)."""

V2_0203 = "http://terminology.hl7.org/CodeSystem/v2-0203"


def coding(scheme: str, code: str, meaning: str) -> dict[str, str]:
    """Return a FHIR Coding of a DICOM coded concept (scheme designator, value, meaning)."""
    system = SCHEME_SYSTEMS.get(scheme.upper(), f"urn:dicom:coding-scheme:{scheme}")
    return {"system": system, "code": code, "display": meaning}


def dicom_uid(uid: str) -> dict[str, str]:
    """Return the FHIR Identifier of a DICOM UID (``urn:dicom:uid`` | ``urn:oid:<uid>``)."""
    return {"system": DICOM_UID_SYSTEM, "value": f"urn:oid:{uid}"}


def instant(value: datetime) -> str:
    """Return a FHIR instant (a naive time is taken as UTC, as the store writes it)."""
    aware = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    return aware.isoformat()


def study_datetime(study: Study) -> str | None:
    """Return the study's date as a FHIR dateTime (``YYYY-MM-DD``), ``None`` if it is unusable.

    DICOM's Study Time is local time and the store keeps no Timezone Offset From UTC, while a
    FHIR dateTime with a time must carry its offset: so the date alone, rather than a guess.
    """
    try:
        return datetime.strptime(study.study_date, "%Y%m%d").date().isoformat()
    except ValueError:
        return None


def row_id(text: str) -> int | None:
    """Return a resource id that is a row id as an int; ``None`` if it cannot be one."""
    return int(text) if text.isdigit() and len(text) <= 9 else None


def number(value: str) -> int | None:
    """Return an IS value as an int, ``None`` if it is empty or not a whole number."""
    return int(value) if value.strip().isdigit() else None


def patient_reference(study: Study) -> dict[str, Any]:
    """Return the logical reference to the study's patient (identifier without a system).

    Parameters
    ----------
    study
        The study row.

    Returns
    -------
    dict
        ``{"identifier": {...}, "display": ...}``; only a display when the Patient ID is empty.
    """
    name = " ".join(part for part in study.patient_name.split("^") if part)
    ref: dict[str, Any] = {"display": name or "unnamed patient"}
    if study.patient_id:
        ref["identifier"] = {
            "type": {"coding": [{"system": V2_0203, "code": "MR"}]},
            "value": study.patient_id,
        }
    return ref
