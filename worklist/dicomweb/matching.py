r"""QIDO-RS matching (PS3.18 8.3.4, PS3.4 C.2.2.2) turned into SQL conditions.

Single value matching, UID list matching (values separated by ``,`` or ``\``), wildcard matching
(``*`` and ``?``; case-insensitive for person names), range matching of dates and times
(``A-B``, ``A-``, ``-B``) and universal matching (an empty value or ``*``).
``fuzzymatching`` is accepted and ignored (the response says so in a ``Warning``).
"""

from __future__ import annotations

import logging
import re

from sqlalchemy import ColumnElement, and_, exists, func

from worklist.db.schema import Series, Study
from worklist.dicomweb.attributes import Attribute

__all__ = ["condition", "like_pattern"]

logger = logging.getLogger(__name__)

_ESCAPE = "/"


def like_pattern(value: str) -> str:
    """Return a SQL LIKE pattern (escape ``/``) for a DICOM value with ``*`` and ``?``."""
    escaped = value.replace(_ESCAPE, _ESCAPE * 2).replace("%", "/%").replace("_", "/_")
    return escaped.replace("*", "%").replace("?", "_")


def _has_wildcard(value: str) -> bool:
    return "*" in value or "?" in value


def _range(column: ColumnElement[str], value: str, *, time: bool) -> ColumnElement[bool]:
    low, _, high = value.partition("-")
    parts: list[ColumnElement[bool]] = [column != ""]
    if low:
        parts.append(column >= low)
    if high:
        # A time range's end is inclusive at its own precision: "-1200" takes 12:00:59.
        parts.append(column < high + "~" if time else column <= high)
    return and_(*parts)


def _text(column: ColumnElement[str], value: str, *, fold: bool) -> ColumnElement[bool]:
    if fold:
        column, value = func.lower(column), value.lower()
    if _has_wildcard(value):
        return column.like(like_pattern(value), escape=_ESCAPE)
    return column == value


def _modalities(value: str) -> ColumnElement[bool]:
    values = [v for v in re.split(r"[,\\]", value) if v]
    match = (
        Series.modality.like(like_pattern(values[0]), escape=_ESCAPE)
        if len(values) == 1 and _has_wildcard(values[0])
        else Series.modality.in_(values)
    )
    return exists().where(Series.study_id == Study.id, match)


def condition(attribute: Attribute, raw: str) -> ColumnElement[bool] | None:
    """Return the SQL condition of one matching key, or ``None`` for universal matching.

    Parameters
    ----------
    attribute
        The attribute and its column.
    raw
        The query value as given.

    Returns
    -------
    sqlalchemy.ColumnElement or None
        The condition.
    """
    value = raw.strip()
    if value in ("", "*"):
        return None
    kind = attribute.kind
    if kind == "uid":
        return attribute.column.in_([v.strip() for v in re.split(r"[,\\]", value) if v.strip()])
    if kind == "modalities":
        return _modalities(value)
    if kind in ("date", "time") and "-" in value:
        return _range(attribute.column.expression, value, time=kind == "time")
    if kind == "time":
        return attribute.column.like(like_pattern(value) + "%", escape=_ESCAPE)
    return _text(attribute.column.expression, value, fold=kind == "pn")
