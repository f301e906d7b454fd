"""The keys of the Study Root Query/Retrieve information model this store answers.

Each key has a level, a value representation and the store column its value is kept in.
:data:`TRIAGE_PRIORITY` is not a DICOM attribute: the priority the triage gave the study
(``P1`` to ``P3``), which :mod:`dicom_gateway.qr` exposes as a private attribute.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sqlalchemy import func, select

from worklist.db.schema import Instance, Series, Study

__all__ = [
    "KEYS",
    "TRIAGE_PRIORITY",
    "UNRECORDED",
    "Key",
    "Level",
    "keys_at",
]

logger = logging.getLogger(__name__)

TRIAGE_PRIORITY = "TriagePriority"
"""The name of the key of the study's triage priority (``P1`` most urgent)."""


class Level(StrEnum):
    """Query/Retrieve levels of the Study Root information model, top down."""

    STUDY = "STUDY"
    SERIES = "SERIES"
    IMAGE = "IMAGE"

    @property
    def depth(self) -> int:
        """0 for STUDY, 1 for SERIES, 2 for IMAGE."""
        return list(Level).index(self)


@dataclass(frozen=True)
class Key:
    """One matching or return key."""

    keyword: str
    level: Level
    vr: str
    column: Any
    """The column (or scalar expression) of its value; ``None`` for :data:`UNRECORDED` keys."""
    unique: bool = False
    matchable: bool = True
    """``False`` for return-only keys (counts)."""


def _count(of: Any, where: Any) -> Any:
    return select(func.count()).select_from(of).where(where).scalar_subquery()


_STUDY_SERIES = _count(Series, Series.study_id == Study.id)
_STUDY_INSTANCES = _count(Instance, Instance.study_id == Study.id)
_SERIES_INSTANCES = _count(Instance, Instance.series_id == Series.id)

_L = Level
KEYS: dict[str, Key] = {
    k.keyword: k
    for k in (
        Key("StudyInstanceUID", _L.STUDY, "UI", Study.study_instance_uid, unique=True),
        Key("StudyDate", _L.STUDY, "DA", Study.study_date),
        Key("StudyTime", _L.STUDY, "TM", Study.study_time),
        Key("AccessionNumber", _L.STUDY, "SH", Study.accession_number),
        Key("PatientID", _L.STUDY, "LO", Study.patient_id),
        Key("PatientName", _L.STUDY, "PN", Study.patient_name),
        Key("PatientBirthDate", _L.STUDY, "DA", Study.patient_birth_date),
        Key("PatientSex", _L.STUDY, "CS", Study.patient_sex),
        Key("StudyDescription", _L.STUDY, "LO", Study.study_description),
        Key("ModalitiesInStudy", _L.STUDY, "CS", Study.modalities),
        Key("StudyID", _L.STUDY, "SH", None),
        Key("NumberOfStudyRelatedSeries", _L.STUDY, "IS", _STUDY_SERIES, matchable=False),
        Key("NumberOfStudyRelatedInstances", _L.STUDY, "IS", _STUDY_INSTANCES, matchable=False),
        Key(TRIAGE_PRIORITY, _L.STUDY, "CS", Study.priority),
        Key("SeriesInstanceUID", _L.SERIES, "UI", Series.series_instance_uid, unique=True),
        Key("Modality", _L.SERIES, "CS", Series.modality),
        Key("SeriesNumber", _L.SERIES, "IS", Series.series_number),
        Key("SeriesDescription", _L.SERIES, "LO", Series.series_description),
        Key("BodyPartExamined", _L.SERIES, "CS", Series.body_part),
        Key("NumberOfSeriesRelatedInstances", _L.SERIES, "IS", _SERIES_INSTANCES, matchable=False),
        Key("SOPInstanceUID", _L.IMAGE, "UI", Instance.sop_instance_uid, unique=True),
        Key("SOPClassUID", _L.IMAGE, "UI", Instance.sop_class_uid),
        Key("InstanceNumber", _L.IMAGE, "IS", Instance.instance_number),
        Key("ViewPosition", _L.IMAGE, "CS", Instance.view_position),
    )
}
"""Every key, by keyword, in the order the conformance statement lists them."""

UNRECORDED = frozenset(k.keyword for k in KEYS.values() if k.column is None)
"""Keys the ingest does not record: returned empty, a value given for them is not matched."""


def keys_at(level: Level) -> list[Key]:
    """Return the keys of ``level`` (not those of the levels above it)."""
    return [k for k in KEYS.values() if k.level == level]
