"""DICOM UIDs as the archive accepts them: digits and dots, at most 64 characters.

A file's path in the archive is made of UIDs, so a UID that passes :func:`validate_uid` can
never leave the archive root (``../../etc`` is refused).
"""

from __future__ import annotations

import re

from models.errors import Invalid
from worklist.domain import StoreError

__all__ = ["UID_MAX", "UID_RE", "InvalidUIDError", "validate_uid"]

UID_RE = re.compile(r"^[0-9]+(\.[0-9]+)*$")
UID_MAX = 64


class InvalidUIDError(StoreError, Invalid):
    """A UID is missing, too long or not made of digits and dots."""


def validate_uid(value: object, what: str = "UID") -> str:
    """Return ``value`` as a valid DICOM UID or raise :class:`InvalidUIDError`.

    Parameters
    ----------
    value
        The candidate (any type; ``None`` and non-strings are refused).
    what
        Its name, for the message (``"SOP Instance UID"``).

    Returns
    -------
    str
        The UID, stripped of trailing padding (NUL or space).

    Raises
    ------
    InvalidUIDError
        If the value is empty, longer than 64 characters or not ``digits(.digits)*``.
    """
    if not isinstance(value, str):
        raise InvalidUIDError(f"{what} is missing")
    uid = value.rstrip("\x00 ")
    if not uid:
        raise InvalidUIDError(f"{what} is empty")
    if len(uid) > UID_MAX:
        raise InvalidUIDError(f"{what} is longer than {UID_MAX} characters")
    if not UID_RE.fullmatch(uid):
        raise InvalidUIDError(f"{what} {uid[:80]!r} is not a valid UID (digits and dots only)")
    return uid
