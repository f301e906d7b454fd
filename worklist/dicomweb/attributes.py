"""Which DICOM attributes QIDO-RS matches and returns at each level, and where they are kept.

Attributes the store records are the keys of the Study Root model (:data:`worklist.query.keys.KEYS`,
with their columns and VRs) that are DICOM attributes, plus Available Transfer Syntax UID at
instance level: matched in SQL by :mod:`worklist.query.matching` (the matcher the C-FIND SCP
uses) and returned from the row; the ``NumberOf...Related...`` counts are computed in SQL. Other
attributes a client asks for with ``includefield`` (or ``includefield=all``: the lists below)
are read from the header of one instance of the study or series (of the instance itself at
instance level).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from pydicom.datadict import tag_for_keyword

from worklist.db.schema import Instance
from worklist.query.keys import KEYS, Key

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
    """A matchable attribute kept in a column, with its DICOM keyword and VR."""

    tag: int
    level: Level
    keyword: str
    vr: str
    column: Any
    """The store column (an ORM attribute) of its value."""


def _of_key(key: Key) -> Attribute | None:
    tag = tag_for_keyword(key.keyword)
    if tag is None or not key.matchable or key.column is None:
        return None  # the private triage priority, counts, keys the store does not record
    return Attribute(tag, Level(key.level.depth + 1), key.keyword, key.vr, key.column)


_AVAILABLE_TRANSFER_SYNTAX = Attribute(
    0x00083002, Level.INSTANCE, "AvailableTransferSyntaxUID", "UI", Instance.transfer_syntax_uid
)

ATTRIBUTES: dict[int, Attribute] = {
    a.tag: a
    for a in (*(_of_key(k) for k in KEYS.values()), _AVAILABLE_TRANSFER_SYNTAX)
    if a is not None
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
