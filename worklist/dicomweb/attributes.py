"""Which DICOM attributes QIDO-RS matches and returns at each level, and where they are kept.

Attributes the store records (:mod:`worklist.db.schema`) are matched in SQL and returned from the
row; the ``NumberOf...Related...`` counts are computed in SQL. Other attributes a client asks
for with ``includefield`` (or ``includefield=all``: the lists below) are read from the header of
one instance of the study or series (of the instance itself at instance level).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from enum import IntEnum

from sqlalchemy.orm import InstrumentedAttribute

from worklist.db.schema import Instance, Series, Study

__all__ = [
    "ATTRIBUTES",
    "COUNTS",
    "DEFAULTS",
    "FILE_ALL",
    "RETRIEVE_URL",
    "Attribute",
    "Level",
]

logger = logging.getLogger(__name__)


class Level(IntEnum):
    """A QIDO-RS query level; an attribute of a level is available at every deeper level."""

    STUDY = 1
    SERIES = 2
    INSTANCE = 3


@dataclass(frozen=True)
class Attribute:
    """A matchable attribute kept in a column.

    ``kind`` says how a query value matches: ``uid`` (list of UIDs), ``date`` and ``time``
    (single value or range), ``pn`` (wildcards, case-insensitive), ``modalities`` (any series of
    the study), ``text`` (single value or wildcards).
    """

    tag: int
    level: Level
    column: InstrumentedAttribute[str]
    kind: str


ATTRIBUTES: dict[int, Attribute] = {
    a.tag: a
    for a in (
        Attribute(0x00080020, Level.STUDY, Study.study_date, "date"),
        Attribute(0x00080030, Level.STUDY, Study.study_time, "time"),
        Attribute(0x00080050, Level.STUDY, Study.accession_number, "text"),
        Attribute(0x00080061, Level.STUDY, Study.modalities, "modalities"),
        Attribute(0x00081030, Level.STUDY, Study.study_description, "text"),
        Attribute(0x00100010, Level.STUDY, Study.patient_name, "pn"),
        Attribute(0x00100020, Level.STUDY, Study.patient_id, "text"),
        Attribute(0x00100030, Level.STUDY, Study.patient_birth_date, "date"),
        Attribute(0x00100040, Level.STUDY, Study.patient_sex, "text"),
        Attribute(0x0020000D, Level.STUDY, Study.study_instance_uid, "uid"),
        Attribute(0x00080060, Level.SERIES, Series.modality, "text"),
        Attribute(0x0008103E, Level.SERIES, Series.series_description, "text"),
        Attribute(0x00180015, Level.SERIES, Series.body_part, "text"),
        Attribute(0x0020000E, Level.SERIES, Series.series_instance_uid, "uid"),
        Attribute(0x00200011, Level.SERIES, Series.series_number, "text"),
        Attribute(0x00080016, Level.INSTANCE, Instance.sop_class_uid, "uid"),
        Attribute(0x00080018, Level.INSTANCE, Instance.sop_instance_uid, "uid"),
        Attribute(0x00083002, Level.INSTANCE, Instance.transfer_syntax_uid, "uid"),
        Attribute(0x00185101, Level.INSTANCE, Instance.view_position, "text"),
        Attribute(0x00200013, Level.INSTANCE, Instance.instance_number, "text"),
    )
}
"""Attributes kept in the store, by tag."""

COUNTS = {
    0x00201206: Level.STUDY,  # Number of Study Related Series
    0x00201208: Level.STUDY,  # Number of Study Related Instances
    0x00201209: Level.SERIES,  # Number of Series Related Instances
}
"""Computed counts, by tag, with the level they describe."""

RETRIEVE_URL = 0x00081190

DEFAULTS: dict[Level, tuple[int, ...]] = {
    Level.STUDY: (
        0x00080020,
        0x00080030,
        0x00080050,
        0x00080061,
        0x00081030,
        0x00100010,
        0x00100020,
        0x00100030,
        0x00100040,
        0x0020000D,
        0x00201206,
        0x00201208,
    ),
    Level.SERIES: (
        0x00080060,
        0x0008103E,
        0x00180015,
        0x0020000D,
        0x0020000E,
        0x00200011,
        0x00201209,
    ),
    Level.INSTANCE: (
        0x00080016,
        0x00080018,
        0x00083002,
        0x00080060,
        0x0020000D,
        0x0020000E,
        0x00200011,
        0x00200013,
    ),
}
"""What each level returns without ``includefield`` (with the Retrieve URL)."""

FILE_ALL: dict[Level, tuple[int, ...]] = {
    Level.STUDY: (
        0x00080090,  # Referring Physician's Name
        0x00200010,  # Study ID
        0x00080080,  # Institution Name
        0x00101010,  # Patient's Age
        0x00101020,  # Patient's Size
        0x00101030,  # Patient's Weight
    ),
    Level.SERIES: (
        0x00080021,  # Series Date
        0x00080031,  # Series Time
        0x00080070,  # Manufacturer
        0x00081010,  # Station Name
        0x00181030,  # Protocol Name
        0x00200060,  # Laterality
        0x00400244,  # Performed Procedure Step Start Date
        0x00400245,  # Performed Procedure Step Start Time
    ),
    Level.INSTANCE: (
        0x00080008,  # Image Type
        0x00080023,  # Content Date
        0x00080033,  # Content Time
        0x00280002,  # Samples per Pixel
        0x00280004,  # Photometric Interpretation
        0x00280008,  # Number of Frames
        0x00280010,  # Rows
        0x00280011,  # Columns
        0x00280100,  # Bits Allocated
    ),
}
"""What ``includefield=all`` adds at each level, read from an instance's header."""
