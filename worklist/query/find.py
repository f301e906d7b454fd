"""C-FIND and retrieve over the store: a query at one level, the instances a retrieve sends.

Queries are hierarchical in what they return (the keys asked for, plus the unique keys of the
query level and the levels above it, as Study Root asks) and lenient in what they match: a key
of the query level or of any level above it is matched, so ``PatientName`` narrows a SERIES
query as well as a STUDY one. A key of a level below the query level is refused
(:class:`~worklist.query.matching.InvalidKeyError`), as PS3.4 C.4.1.2.1 asks.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Select, select

from worklist.db.engine import Database
from worklist.db.schema import Instance, Series, Study
from worklist.query.keys import KEYS, UNRECORDED, Key, Level
from worklist.query.matching import InvalidKeyError, is_universal, key_condition

__all__ = ["InstanceRef", "find", "parse_level", "retrieve"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class InstanceRef:
    """One instance a retrieve sends: its study, its classes and its place in the archive."""

    study_instance_uid: str
    sop_class_uid: str
    sop_instance_uid: str
    transfer_syntax_uid: str
    path: str
    """Relative to the archive root."""


def parse_level(value: str) -> Level:
    """Return the Query/Retrieve level named by ``value`` (``STUDY``, ``SERIES``, ``IMAGE``).

    Raises
    ------
    InvalidKeyError
        If it names no level this store answers (PATIENT is not in the Study Root model).
    """
    try:
        return Level(value.strip().upper())
    except ValueError:
        raise InvalidKeyError(f"unsupported QueryRetrieveLevel {value!r}") from None


def _keys_of(level: Level, identifier: Mapping[str, str]) -> list[Key]:
    """Return the known keys of ``identifier``; refuse those below ``level``."""
    keys: list[Key] = []
    for keyword in identifier:
        key = KEYS.get(keyword)
        if key is None:
            continue
        if key.level.depth > level.depth:
            raise InvalidKeyError(
                f"key {keyword} is at {key.level} level, below the query level {level}"
            )
        keys.append(key)
    return keys


def _conditions(
    keys: list[Key], identifier: Mapping[str, str], dialect: str
) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    for key in keys:
        value = identifier[key.keyword]
        if not key.matchable or key.column is None:
            if key.keyword in UNRECORDED and not is_universal(value):
                logger.info("key %s is not recorded: its value %r is not matched", key, value)
            continue
        one = key_condition(key.keyword, key.column, value, key.vr, dialect=dialect)
        if one is not None:
            conditions.append(one)
    return conditions


def _from(statement: Any, level: Level) -> Select[Any]:
    if level is Level.STUDY:
        return statement.select_from(Study).order_by(Study.id)  # type: ignore[no-any-return]
    if level is Level.SERIES:
        return statement.select_from(Series).join(Study).order_by(Study.id, Series.id)  # type: ignore[no-any-return]
    return (  # type: ignore[no-any-return]
        statement.select_from(Instance)
        .join(Series, Instance.series_id == Series.id)
        .join(Study, Series.study_id == Study.id)
        .order_by(Study.id, Series.id, Instance.id)
    )


def find(db: Database, level: Level, identifier: Mapping[str, str]) -> list[dict[str, str]]:
    """Return the matches of a C-FIND identifier at ``level``, one dict per entity.

    Parameters
    ----------
    db
        The store.
    level
        The query level.
    identifier
        Keyword to value (several values joined with backslashes); keywords this store does
        not know are ignored (the caller reports them).

    Returns
    -------
    list of dict of str to str
        Per match: the known keys asked for, plus the unique keys of ``level`` and above,
        by keyword; ``""`` where the store has no value.

    Raises
    ------
    InvalidKeyError
        If a key is below ``level`` or a value is malformed.
    """
    keys = _keys_of(level, identifier)
    unique = [k for k in KEYS.values() if k.unique and k.level.depth <= level.depth]
    returned = list({k.keyword: k for k in [*unique, *keys]}.values())
    columns = [k.column.label(k.keyword) for k in returned if k.column is not None]
    conditions = _conditions(keys, identifier, db.engine.dialect.name)
    statement = _from(select(*columns), level).where(*conditions)
    with db.read() as s:
        rows = s.execute(statement).mappings().all()
    return [
        {k.keyword: "" if row.get(k.keyword) is None else str(row[k.keyword]) for k in returned}
        for row in rows
    ]


def retrieve(db: Database, level: Level, identifier: Mapping[str, str]) -> list[InstanceRef]:
    """Return the instances a C-MOVE or C-GET of ``identifier`` at ``level`` sends.

    Parameters
    ----------
    db
        The store.
    level
        The retrieve level.
    identifier
        Keyword to value, as for :func:`find` (normally the unique keys).

    Returns
    -------
    list of InstanceRef
        In study, series and arrival order.

    Raises
    ------
    InvalidKeyError
        If a key is below ``level`` or a value is malformed.
    """
    keys = _keys_of(level, identifier)
    conditions = _conditions(keys, identifier, db.engine.dialect.name)
    statement = _from(
        select(
            Study.study_instance_uid,
            Instance.sop_class_uid,
            Instance.sop_instance_uid,
            Instance.transfer_syntax_uid,
            Instance.path,
        ),
        Level.IMAGE,
    ).where(*conditions)
    with db.read() as s:
        rows = s.execute(statement).all()
    return [InstanceRef(*row) for row in rows]
