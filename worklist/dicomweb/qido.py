"""QIDO-RS: search for studies, series and instances (PS3.18 10.6).

:func:`search` takes the query parameters as given (``StudyDate=20240101-``, ``00100020=P1``,
``limit``, ``offset``, ``includefield``, ``fuzzymatching``), matches stored attributes in one
SQL query (SQLAlchemy Core) and returns DICOM JSON datasets plus the warnings a ``Warning``
header carries. Matching is the C-FIND SCP's (:mod:`worklist.query.matching`, PS3.4 C.2.2.2,
which PS3.18 8.3.4 refers to); what is particular to HTTP is parsed here: lists of UIDs and of
modalities separated by commas as well as backslashes, ``fuzzymatching`` (accepted, not
supported: a warning says literal matching was used), paging and ``includefield``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pydicom
from pydicom.errors import InvalidDicomError
from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

from worklist.db.schema import Instance, Series, Study
from worklist.dicomweb.attributes import (
    ATTRIBUTES,
    COUNTS,
    DEFAULTS,
    FILE_ALL,
    RETRIEVE_URL,
    Attribute,
    Level,
)
from worklist.dicomweb.dicomjson import DicomJson, element, parse_tag, tag_key
from worklist.dicomweb.errors import WrongQueryError
from worklist.query.matching import key_condition
from worklist.reading.imagelimits import ImageLimits, ImageTooLargeError, check_inflated

__all__ = ["MAX_RESULTS", "SearchResult", "search"]

logger = logging.getLogger(__name__)

MAX_RESULTS = 10_000
"""The most results one query returns (a ``Warning`` says when more matched)."""

_CONTROL = frozenset({"limit", "offset", "includefield", "fuzzymatching"})


@dataclass
class SearchResult:
    """The matches of one query and the warnings for the ``Warning`` header."""

    items: list[DicomJson] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


@dataclass
class _Query:
    level: Level
    conditions: list[ColumnElement[bool]] = field(default_factory=list)
    include: set[int] = field(default_factory=set)
    include_all: bool = False
    limit: int = MAX_RESULTS
    offset: int = 0
    warnings: list[str] = field(default_factory=list)


def _integer(name: str, value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise WrongQueryError(f"{name}={value!r} is not an integer") from None
    if number < 0:
        raise WrongQueryError(f"{name} must not be negative")
    return number


def _control(query: _Query, name: str, value: str) -> None:
    if name == "limit":
        query.limit = min(_integer(name, value), MAX_RESULTS)
    elif name == "offset":
        query.offset = _integer(name, value)
    elif name == "fuzzymatching":
        if value.lower() == "true":
            query.warnings.append("fuzzymatching is not supported: literal matching was used")
    else:
        for item in value.split(","):
            if item.strip().lower() == "all":
                query.include_all = True
            elif item.strip():
                query.include.add(parse_tag(item.strip()))


def _listed(attribute: Attribute, value: str) -> str:
    r"""Return ``value`` with the lists QIDO-RS separates by commas joined by ``\`` as in DICOM."""
    if attribute.vr == "UI" or attribute.keyword == "ModalitiesInStudy":
        return value.replace(",", "\\")
    return value


def _parse(level: Level, params: Sequence[tuple[str, str]], dialect: str) -> _Query:
    query = _Query(level)
    ignored: list[str] = []
    for name, value in params:
        if name in _CONTROL:
            _control(query, name, value)
            continue
        tag = parse_tag(name)
        attribute = ATTRIBUTES.get(tag)
        if attribute is None or attribute.level > level:
            ignored.append(name)
            continue
        cond = key_condition(
            attribute.keyword,
            attribute.column,
            _listed(attribute, value),
            attribute.vr,
            dialect=dialect,
        )
        if cond is not None:
            query.conditions.append(cond)
        query.include.add(tag)
    if ignored:
        query.warnings.append(f"not matched (not supported here): {', '.join(ignored)}")
    return query


def _label(tag: int) -> str:
    return f"t{tag:08X}"


def _base_select(level: Level) -> Any:  # a Core Select of the level's columns
    columns: list[Any] = [
        a.column.label(_label(t)) for t, a in ATTRIBUTES.items() if a.level <= level
    ]
    if level == Level.STUDY:
        owner, key = Instance.study_id == Study.id, Study.id
        columns += [
            select(func.count(Series.id))
            .where(Series.study_id == Study.id)
            .scalar_subquery()
            .label(_label(0x00201206)),
            select(func.count(Instance.id))
            .where(owner)
            .scalar_subquery()
            .label(_label(0x00201208)),
        ]
    elif level == Level.SERIES:
        owner, key = Instance.series_id == Series.id, Series.id
        columns.append(
            select(func.count(Instance.id)).where(owner).scalar_subquery().label(_label(0x00201209))
        )
    if level == Level.INSTANCE:
        columns.append(Instance.path.label("path"))
        return (
            select(*columns)
            .select_from(Instance)
            .join(Series, Instance.series_id == Series.id)
            .join(Study, Instance.study_id == Study.id)
            .order_by(Series.id, Instance.id)
        )
    first = select(Instance.path).where(owner).order_by(Instance.id).limit(1)
    columns.append(first.scalar_subquery().label("path"))
    query = select(*columns)
    if level == Level.SERIES:
        query = query.select_from(Series).join(Study, Series.study_id == Study.id)
    return query.order_by(key)


def _values(level: Level, row: Any) -> tuple[dict[int, Any], str]:
    """Return the stored values of a row by tag, and the path of its representative file."""
    mapping = row._mapping
    tags = [t for t, a in ATTRIBUTES.items() if a.level <= level]
    tags += [t for t, lvl in COUNTS.items() if lvl == level]
    return {t: mapping[_label(t)] for t in tags}, mapping["path"] or ""


def _retrieve_url(base: str, level: Level, values: dict[int, Any]) -> str:
    url = f"{base}/studies/{values[0x0020000D]}"
    if level >= Level.SERIES:
        url += f"/series/{values[0x0020000E]}"
    if level == Level.INSTANCE:
        url += f"/instances/{values[0x00080018]}"
    return url


def _from_file(archive_root: Path, path: str, tags: set[int]) -> DicomJson:
    """Read ``tags`` from the header of an archived file (those it has)."""
    if not tags or not path:
        return {}
    try:
        check_inflated(archive_root / path, ImageLimits())  # a deflate bomb: not inflated
        ds = pydicom.dcmread(archive_root / path, stop_before_pixels=True)
    except (OSError, InvalidDicomError, ImageTooLargeError) as exc:
        logger.warning("cannot read %s for includefield: %s", path, exc)
        return {}
    found: DicomJson = {}
    for tag in sorted(tags):
        if tag in ds:
            found[tag_key(tag)] = ds[tag].to_json_dict(None, 1024)
    return found


def _dataset(query: _Query, row: Any, base: str, archive_root: Path) -> DicomJson:
    level = query.level
    values, path = _values(level, row)
    wanted = set(DEFAULTS[level]) | query.include
    if query.include_all:
        wanted |= {t for t, a in ATTRIBUTES.items() if a.level <= level}
        wanted |= {t for t, lvl in COUNTS.items() if lvl == level}
        for lvl in Level:
            if lvl <= level:
                wanted |= set(FILE_ALL[lvl])
    stored = {t for t in wanted if t in values}
    deeper = {t for t, a in ATTRIBUTES.items() if a.level > level}  # e.g. Modality of a study
    from_file = wanted - stored - deeper - set(COUNTS) - {RETRIEVE_URL}
    out: DicomJson = _from_file(archive_root, path, from_file)
    for tag in stored:
        out[tag_key(tag)] = element(tag, values[tag])
    out[tag_key(RETRIEVE_URL)] = element(RETRIEVE_URL, _retrieve_url(base, level, values))
    return dict(sorted(out.items()))


def search(
    session: Session,
    level: Level,
    params: Sequence[tuple[str, str]],
    *,
    base_url: str,
    archive_root: Path,
    study_uid: str | None = None,
    series_uid: str | None = None,
) -> SearchResult:
    """Search the store at one level.

    Parameters
    ----------
    session
        An open read session.
    level
        Studies, series or instances.
    params
        The query parameters in order (a key may repeat).
    base_url
        The DICOMweb root, for the Retrieve URL (0008,1190) of each match.
    archive_root
        The archive, to read attributes the store does not keep.
    study_uid, series_uid
        The study (and series) of the resource path, if any.

    Returns
    -------
    SearchResult
        The matches in the DICOM JSON model, and warnings.

    Raises
    ------
    WrongQueryError
        If a parameter is not a DICOM keyword or tag, or limit/offset are not integers.
    InvalidKeyError
        If a value cannot be matched (a malformed date or time range).
    """
    query = _parse(level, params, session.get_bind().dialect.name)
    statement = _base_select(level).where(*query.conditions)
    if study_uid is not None:
        statement = statement.where(Study.study_instance_uid == study_uid)
    if series_uid is not None:
        statement = statement.where(Series.series_instance_uid == series_uid)
    rows = session.execute(statement.offset(query.offset).limit(query.limit + 1)).all()
    result = SearchResult(warnings=query.warnings)
    if len(rows) > query.limit:
        rows = rows[: query.limit]
        if query.limit == MAX_RESULTS:
            result.warnings.append(
                "the number of results exceeded the maximum supported by the server; "
                "request more with offset"
            )
    result.items = [_dataset(query, row, base_url, archive_root) for row in rows]
    return result
