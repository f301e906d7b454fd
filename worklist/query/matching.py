"""Attribute matching of PS3.4 C.2.2.2 as SQLAlchemy Core conditions (SQLite and PostgreSQL).

The one matcher of the store: the C-FIND SCP (:mod:`worklist.query.find`, for
:mod:`dicom_gateway.qr`) and QIDO-RS (:mod:`worklist.dicomweb.qido`, which PS3.18 8.3.4 bases
on the same rules) both match with it. What is particular to HTTP (``fuzzymatching``,
comma-separated lists, ``limit``/``offset``/``includefield``) stays in :mod:`worklist.dicomweb`.

One key's value becomes one condition on one column, or ``None`` for universal matching:

- universal matching: an empty value, or ``*`` alone, matches every entity;
- list of UID matching: a UI value of several UIDs (backslash-separated) matches any of them;
- range matching: a DA or TM value ``A-B``, ``A-`` or ``-B`` matches values between them
  (bounds included; a TM bound matches every more precise time it is a prefix of);
- wild card matching: a value of a VR other than DA, DT, TM, UI or a number with ``*`` (any
  run of characters) or ``?`` (one character);
- single value matching: anything else matches equal values.

ModalitiesInStudy is matched against the modalities of the study's series
(:func:`key_condition`): a study matches when a series of it matches any of the values.

Matching is case-sensitive except for PN, which the standard lets an SCP match insensitive to
case (C.2.2.2.1): person names match whatever their case. Leading and trailing spaces of a
value are not significant. SQLite's ``LIKE`` ignores case, so case-sensitive wild cards use
``GLOB`` there and ``LIKE`` on PostgreSQL.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import ColumnElement, and_, exists, func, or_, select

from models.errors import Invalid
from worklist.db.schema import Series, Study
from worklist.domain import StoreError

__all__ = [
    "InvalidKeyError",
    "any_of",
    "condition",
    "glob_pattern",
    "is_universal",
    "key_condition",
    "like_pattern",
]

logger = logging.getLogger(__name__)

NO_WILDCARD_VRS = frozenset({"DA", "DT", "TM", "UI", "IS", "DS", "SL", "SS", "UL", "US"})
"""VRs whose values never hold wild cards (PS3.4 C.2.2.2.4)."""

RANGE_VRS = frozenset({"DA", "TM"})
"""VRs matched as ranges when the value holds a hyphen."""

_LIKE_ESCAPE = "!"
_TM_AFTER = "~"  # sorts after every digit, '.' and ':'


class InvalidKeyError(StoreError, Invalid):
    """A key's value cannot be matched (a malformed range, a key at the wrong level)."""


def is_universal(value: str) -> bool:
    """Return whether ``value`` asks for universal matching (empty, or ``*`` alone)."""
    stripped = value.strip()
    return stripped in ("", "*")


def like_pattern(value: str, *, wild: bool = True) -> str:
    """Return a SQL ``LIKE`` pattern (escape ``!``) of a DICOM value.

    Parameters
    ----------
    value
        The value.
    wild
        Whether ``*`` and ``?`` are wild cards (``False``: every character is literal).

    Returns
    -------
    str
        The pattern.
    """
    out: list[str] = []
    for ch in value:
        if wild and ch == "*":
            out.append("%")
        elif wild and ch == "?":
            out.append("_")
        elif ch in ("%", "_", _LIKE_ESCAPE):
            out.append(_LIKE_ESCAPE + ch)
        else:
            out.append(ch)
    return "".join(out)


def glob_pattern(value: str) -> str:
    """Return an SQLite ``GLOB`` pattern (case-sensitive) of a DICOM wild card value."""
    return "".join("[[]" if ch == "[" else ch for ch in value)


def _wildcard(column: Any, value: str, *, fold_case: bool, dialect: str) -> ColumnElement[bool]:
    if fold_case:
        return func.lower(column).like(like_pattern(value.lower()), escape=_LIKE_ESCAPE)
    if dialect == "sqlite":
        return column.op("GLOB")(glob_pattern(value))  # type: ignore[no-any-return]
    return column.like(like_pattern(value), escape=_LIKE_ESCAPE)  # type: ignore[no-any-return]


def _range(column: Any, value: str, vr: str) -> ColumnElement[bool]:
    if value.count("-") != 1:
        raise InvalidKeyError(f"malformed {vr} range {value!r}")
    low, high = (part.strip() for part in value.split("-"))
    if not low and not high:
        raise InvalidKeyError(f"{vr} range {value!r} has no bound")
    bounds: list[ColumnElement[bool]] = [column != ""]
    if low:
        bounds.append(column >= low)
    if high:
        bounds.append(column <= (high + _TM_AFTER if vr == "TM" else high))
    return and_(*bounds)


def _single(column: Any, value: str, vr: str, *, fold_case: bool) -> ColumnElement[bool]:
    if vr == "TM":  # 1200 matches 1200, 120000 and 120000.000000; no wild cards in a TM
        prefix = like_pattern(value, wild=False) + "%"
        return or_(column == value, column.like(prefix, escape=_LIKE_ESCAPE))
    if fold_case:
        return func.lower(column) == value.lower()
    return column == value  # type: ignore[no-any-return]


def condition(column: Any, value: str, vr: str, *, dialect: str) -> ColumnElement[bool] | None:
    """Return the condition a key's value puts on ``column``, ``None`` for universal matching.

    Parameters
    ----------
    column
        The SQLAlchemy column (or expression) holding the attribute's value as text.
    value
        The key's value from the identifier; several values joined with backslashes.
    vr
        The attribute's value representation (``"PN"``, ``"DA"``, ``"UI"``...).
    dialect
        The store's SQLAlchemy dialect name (``"sqlite"``, ``"postgresql"``).

    Returns
    -------
    sqlalchemy.ColumnElement or None
        The condition, or ``None`` when every entity matches.

    Raises
    ------
    InvalidKeyError
        If a range is malformed.
    """
    value = value.strip()
    if is_universal(value):
        return None
    fold_case = vr == "PN"
    if vr == "UI":
        uids = [uid.strip() for uid in value.split("\\") if uid.strip()]
        return column == uids[0] if len(uids) == 1 else column.in_(uids)  # type: ignore[no-any-return]
    if vr in RANGE_VRS and "-" in value:
        return _range(column, value, vr)
    if vr not in NO_WILDCARD_VRS and ("*" in value or "?" in value):
        return _wildcard(column, value, fold_case=fold_case, dialect=dialect)
    return _single(column, value, vr, fold_case=fold_case)


def any_of(column: Any, values: str, vr: str, *, dialect: str) -> ColumnElement[bool] | None:
    r"""Return a condition matching any of several backslash-separated values (multi-valued keys).

    Parameters
    ----------
    column, vr, dialect
        As for :func:`condition`.
    values
        One or several values joined with backslashes (``ModalitiesInStudy`` ``CT\MR``).

    Returns
    -------
    sqlalchemy.ColumnElement or None
        The condition, or ``None`` when one of the values asks for universal matching.
    """
    conditions: list[ColumnElement[bool]] = []
    for value in values.split("\\"):
        one = condition(column, value, vr, dialect=dialect)
        if one is None:
            return None
        conditions.append(one)
    return or_(*conditions)


def key_condition(
    keyword: str, column: Any, value: str, vr: str, *, dialect: str
) -> ColumnElement[bool] | None:
    r"""Return the condition a key of the Study Root model puts on a query, ``None`` if universal.

    ``ModalitiesInStudy`` matches a study with a series of any of its values (``CT\MR``,
    ``M?``); every other key is matched by :func:`condition` on ``column``.

    Parameters
    ----------
    keyword
        The key's DICOM keyword (``"PatientName"``, ``"ModalitiesInStudy"``).
    column, value, vr, dialect
        As for :func:`condition` (``column`` is not used for ``ModalitiesInStudy``).

    Returns
    -------
    sqlalchemy.ColumnElement or None
        What :func:`condition` returns, which raises :class:`InvalidKeyError` likewise.
    """
    if keyword != "ModalitiesInStudy":
        return condition(column, value, vr, dialect=dialect)
    modality = any_of(Series.modality, value, vr, dialect=dialect)
    if modality is None:
        return None
    return exists(select(Series.id).where(Series.study_id == Study.id, modality))
