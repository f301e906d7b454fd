"""The DIMSE statuses the listener returns, by name, from :mod:`pynetdicom.status`.

The codes are looked up in pynetdicom's Storage Service Class status table by their PS3.4
meaning and registered on :class:`pynetdicom.status.Status`, so handlers return
``Status.OUT_OF_RESOURCES`` and never a bare hex literal.
"""

from __future__ import annotations

import logging

from pynetdicom.status import STORAGE_SERVICE_CLASS_STATUS, Status

__all__ = [
    "CANNOT_UNDERSTAND",
    "DATASET_MISMATCH",
    "OUT_OF_RESOURCES",
    "PROCESSING_FAILURE",
    "SUCCESS",
    "Status",
    "status_name",
]

logger = logging.getLogger(__name__)


def _first(meaning: str) -> int:
    """Return the lowest Storage status code with this meaning (the range's base code)."""
    codes = [c for c, (_, text) in STORAGE_SERVICE_CLASS_STATUS.items() if text == meaning]
    if not codes:
        raise LookupError(f"pynetdicom has no storage status {meaning!r}")
    return min(codes)


SUCCESS: int = int(Status.SUCCESS)
OUT_OF_RESOURCES: int = _first("Refused: Out of Resources")
DATASET_MISMATCH: int = _first("Data Set Does Not Match SOP Class")
CANNOT_UNDERSTAND: int = _first("Cannot Understand")
PROCESSING_FAILURE: int = _first("Processing Failure")

for _name, _code in (
    ("OUT_OF_RESOURCES", OUT_OF_RESOURCES),
    ("DATASET_MISMATCH", DATASET_MISMATCH),
    ("CANNOT_UNDERSTAND", CANNOT_UNDERSTAND),
    ("PROCESSING_FAILURE", PROCESSING_FAILURE),
):
    if not hasattr(Status, _name):
        Status.add(_name, _code)


def status_name(code: int) -> str:
    """Return pynetdicom's meaning of a Storage status code, e.g. ``"Cannot Understand"``."""
    if code == SUCCESS:
        return "Success"
    entry = STORAGE_SERVICE_CLASS_STATUS.get(code)
    return entry[1] if entry and entry[1] else f"status 0x{code:04X}"
