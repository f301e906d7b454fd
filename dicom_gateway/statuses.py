"""The DIMSE statuses the listener returns, by name, from :mod:`pynetdicom.status`.

The codes are looked up in pynetdicom's Storage and Query/Retrieve Service Class status tables
by their PS3.4 meaning and registered on :class:`pynetdicom.status.Status`, so handlers return
``Status.OUT_OF_RESOURCES`` and never a bare hex literal. One code can mean different things
in different services (``0xA900`` is a data set mismatch to C-STORE and an identifier mismatch
to C-FIND): :func:`status_name` takes the service.
"""

from __future__ import annotations

import logging

from pynetdicom.status import (
    QR_FIND_SERVICE_CLASS_STATUS,
    QR_GET_SERVICE_CLASS_STATUS,
    QR_MOVE_SERVICE_CLASS_STATUS,
    STORAGE_SERVICE_CLASS_STATUS,
    Status,
)

__all__ = [
    "CANCEL",
    "CANNOT_UNDERSTAND",
    "DATASET_MISMATCH",
    "IDENTIFIER_MISMATCH",
    "MOVE_DESTINATION_UNKNOWN",
    "OUT_OF_RESOURCES",
    "PENDING",
    "PENDING_WARNING",
    "PROCESSING_FAILURE",
    "SUCCESS",
    "UNABLE_TO_PROCESS",
    "Status",
    "status_name",
]

logger = logging.getLogger(__name__)


_TABLES = {
    "C-STORE": STORAGE_SERVICE_CLASS_STATUS,
    "C-FIND": QR_FIND_SERVICE_CLASS_STATUS,
    "C-MOVE": QR_MOVE_SERVICE_CLASS_STATUS,
    "C-GET": QR_GET_SERVICE_CLASS_STATUS,
}


def _first(meaning: str, service: str = "C-STORE") -> int:
    """Return the lowest status code of ``service`` with this meaning (the range's base code)."""
    table = _TABLES[service]
    codes = [c for c, (_, text) in table.items() if text == meaning]
    if not codes:
        raise LookupError(f"pynetdicom has no {service} status {meaning!r}")
    return min(codes)


SUCCESS: int = int(Status.SUCCESS)
OUT_OF_RESOURCES: int = _first("Refused: Out of Resources")
DATASET_MISMATCH: int = _first("Data Set Does Not Match SOP Class")
CANNOT_UNDERSTAND: int = _first("Cannot Understand")
PROCESSING_FAILURE: int = _first("Processing Failure")

PENDING: int = int(Status.PENDING)
PENDING_WARNING: int = _first("Matches are continuing, warning", "C-FIND")
CANCEL: int = int(Status.CANCEL)
MOVE_DESTINATION_UNKNOWN: int = int(Status.MOVE_DESTINATION_UNKNOWN)
IDENTIFIER_MISMATCH: int = _first("Identifier Does Not Match SOP Class", "C-FIND")
UNABLE_TO_PROCESS: int = _first("Unable to Process", "C-FIND")

for _name, _code in (
    ("OUT_OF_RESOURCES", OUT_OF_RESOURCES),
    ("DATASET_MISMATCH", DATASET_MISMATCH),
    ("CANNOT_UNDERSTAND", CANNOT_UNDERSTAND),
    ("PROCESSING_FAILURE", PROCESSING_FAILURE),
    ("PENDING_WARNING", PENDING_WARNING),
    ("IDENTIFIER_MISMATCH", IDENTIFIER_MISMATCH),
    ("UNABLE_TO_PROCESS", UNABLE_TO_PROCESS),
):
    if not hasattr(Status, _name):
        Status.add(_name, _code)


def status_name(code: int, service: str = "C-STORE") -> str:
    """Return pynetdicom's meaning of a status code of ``service``, e.g. ``"Cannot Understand"``.

    Parameters
    ----------
    code
        The status.
    service
        ``"C-STORE"``, ``"C-FIND"``, ``"C-MOVE"`` or ``"C-GET"``.

    Returns
    -------
    str
        The meaning, or ``"status 0xNNNN"`` for a code the service does not define.
    """
    if code == SUCCESS:
        return "Success"
    if code == CANCEL:  # PS3.4 C.4: not in pynetdicom's tables
        return "Terminated due to Cancel"
    entry = _TABLES[service].get(code)
    return entry[1] if entry and entry[1] else f"status 0x{code:04X}"
