"""The rows one received instance writes: its study (created or merged), series and instance.

Every function here runs inside the caller's write transaction (its own, or a group commit's
SAVEPOINT) with :class:`~worklist.ingest.statements.Prepared` statements: compiled once per
dialect, executed on the driver's cursor. :func:`insert_new_instance` is also the duplicate
check: ``INSERT ... ON CONFLICT (sop_instance_uid) DO NOTHING RETURNING id`` in the same
transaction, so two copies of one SOP instance can never both be recorded, whatever process
received them, and no separate read is needed first.
"""

from __future__ import annotations

import functools
import logging
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, case, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from models.errors import Conflict
from worklist.archive import StoredFile
from worklist.audit import EventCategory, record_event
from worklist.db.schema import Instance, Series, Study
from worklist.db.types import UTCDateTime, utcnow
from worklist.domain import StudyState
from worklist.ingest.header import InstanceHeader
from worklist.ingest.statements import Prepared

__all__ = ["AlreadyRecordedError", "insert_new_instance", "series_id", "touch_study"]

logger = logging.getLogger(__name__)

_STUDY_FIELDS = (
    "patient_id",
    "patient_name",
    "patient_birth_date",
    "patient_sex",
    "accession_number",
    "study_date",
    "study_time",
    "study_description",
    "referral_priority",
)


class AlreadyRecordedError(Conflict):
    """The SOP instance is already recorded (found by the INSERT's conflict, in-transaction)."""


def _by_dialect(build: Any) -> dict[str, Prepared]:
    return {"postgresql": Prepared(build(pg_insert)), "sqlite": Prepared(build(sqlite_insert))}


_SELECT_STUDY = Prepared(
    select(
        Study.id,
        Study.state,
        Study.modalities,
        Study.site,
        *(getattr(Study, name) for name in _STUDY_FIELDS),
    )
    .where(Study.study_instance_uid == bindparam("uid"))
    .with_for_update()
)

_INSERT_STUDY = _by_dialect(
    lambda ins: (
        ins(Study)
        .values(
            study_instance_uid=bindparam("uid"),
            site=bindparam("site"),
            first_received_at=bindparam("now", type_=UTCDateTime()),
            last_received_at=bindparam("now", type_=UTCDateTime()),
            state=StudyState.RECEIVING.value,
        )
        .on_conflict_do_nothing(index_elements=["study_instance_uid"])
    )
)

_SELECT_SERIES = Prepared(select(Series.id).where(Series.series_instance_uid == bindparam("uid")))

_INSERT_SERIES = _by_dialect(
    lambda ins: (
        ins(Series)
        .values(
            study_id=bindparam("study_id"),
            series_instance_uid=bindparam("uid"),
            modality=bindparam("modality"),
            body_part=bindparam("body_part"),
            series_number=bindparam("series_number"),
            series_description=bindparam("series_description"),
        )
        .on_conflict_do_nothing(index_elements=["series_instance_uid"])
    )
)

_INSTANCE_COLUMNS = (
    "study_id",
    "series_id",
    "sop_instance_uid",
    "sop_class_uid",
    "transfer_syntax_uid",
    "instance_number",
    "view_position",
    "path",
    "size_bytes",
    "sha256",
    "association_id",
    "calling_aet",
)

_INSERT_INSTANCE = _by_dialect(
    lambda ins: (
        ins(Instance)
        .values(
            **{name: bindparam(name) for name in _INSTANCE_COLUMNS},
            received_at=bindparam("now", type_=UTCDateTime()),
        )
        .on_conflict_do_nothing(index_elements=["sop_instance_uid"])
        .returning(Instance.id)
    )
)


@functools.cache
def _update_study(fields: frozenset[str], count: bool, reopen: bool) -> Prepared:
    """Return the study UPDATE for one combination of changed columns (a handful occur)."""
    now = bindparam("now", type_=UTCDateTime())
    values: dict[str, Any] = {name: bindparam(name) for name in sorted(fields)}
    values["last_received_at"] = case(
        (Study.last_received_at > now, Study.last_received_at), else_=now
    )
    if count:
        values["instance_count"] = Study.instance_count + bindparam("count_delta")
    if reopen:
        values["state"] = StudyState.RECEIVING.value
        values["completed_at"] = None
        values["version"] = Study.version + 1
    return Prepared(update(Study).where(Study.id == bindparam("study_id")).values(**values))


def _merge_modalities(current: str, modality: str) -> str:
    items = [m for m in current.split("\\") if m]
    if modality and modality not in items:
        items.append(modality)
    return "\\".join(items)[:64]


def _dialect(session: Session) -> str:
    return session.get_bind().dialect.name


def touch_study(
    session: Session,
    header: InstanceHeader,
    *,
    calling_aet: str,
    source: str,
    count_delta: int,
    reopen: bool,
    now: datetime | None = None,
) -> int:
    """Create the study if new, lock it, merge the header in, mark it receiving; return its id.

    Parameters
    ----------
    session
        The write transaction.
    header
        The received instance's fields.
    calling_aet, source
        The sender, for the study's site and the reopening event.
    count_delta
        Added to the study's instance count (1 for a new instance).
    reopen
        Whether an instance for a complete study reopens it.
    now
        The time of receipt (default: now).
    """
    now = now or utcnow()
    row = _SELECT_STUDY.first(session, {"uid": header.study_uid})  # usually there
    if row is None:
        insert_study = _INSERT_STUDY[_dialect(session)]
        insert_study.rows(session, {"uid": header.study_uid, "site": calling_aet[:64], "now": now})
        row = _SELECT_STUDY.first(session, {"uid": header.study_uid})
        assert row is not None
    study_id, state, modalities, site, *current = row
    fields = header.study_fields()
    values: dict[str, Any] = {
        name: fields[name]
        for name, old in zip(_STUDY_FIELDS, current, strict=True)
        if fields[name] and not old
    }
    merged = _merge_modalities(modalities, header.modality)
    if merged != modalities:
        values["modalities"] = merged
    if not site:
        values["site"] = calling_aet[:64]
    reopening = state != StudyState.RECEIVING and reopen
    if reopening:
        logger.info("study %s reopened: an instance arrived after completion", study_id)
        record_event(
            session,
            EventCategory.INGEST,
            "study.reopened",
            actor=calling_aet,
            source=source,
            study_instance_uid=header.study_uid,
            sop_instance_uid=header.sop_uid,
            details={"previous_state": state},
        )
    statement = _update_study(frozenset(values), bool(count_delta), reopening)
    values.update(study_id=study_id, now=now, count_delta=count_delta)
    statement.rows(session, values)
    return int(study_id)


def series_id(session: Session, header: InstanceHeader, study_id: int) -> int:
    """Return the id of the instance's series, creating it if new."""
    found = _SELECT_SERIES.first(session, {"uid": header.series_uid})
    if found is None:
        _INSERT_SERIES[_dialect(session)].rows(
            session,
            {
                "study_id": study_id,
                "uid": header.series_uid,
                "modality": header.modality[:16],
                "body_part": header.body_part[:64],
                "series_number": header.series_number[:12],
                "series_description": header.series_description[:64],
            },
        )
        found = _SELECT_SERIES.first(session, {"uid": header.series_uid})
        assert found is not None
    return int(found[0])


def insert_new_instance(
    session: Session,
    header: InstanceHeader,
    stored: StoredFile,
    *,
    association_id: str | None,
    calling_aet: str,
    source: str,
    reopen: bool,
) -> tuple[int, int]:
    """Record a new instance (its study and series too); return the study and row ids.

    Raises
    ------
    AlreadyRecordedError
        If the SOP instance is already recorded: the caller rolls this transaction (or
        SAVEPOINT) back, so the study's count and fields are left as they were.
    """
    now = utcnow()
    study_id = touch_study(
        session, header, calling_aet=calling_aet, source=source, count_delta=1, reopen=reopen,
        now=now,
    )  # fmt: skip
    values = {
        "study_id": study_id,
        "series_id": series_id(session, header, study_id),
        "sop_instance_uid": header.sop_uid,
        "sop_class_uid": header.sop_class_uid,
        "transfer_syntax_uid": header.transfer_syntax_uid,
        "instance_number": header.instance_number,
        "view_position": header.view_position,
        "path": stored.path,
        "size_bytes": stored.size_bytes,
        "sha256": stored.sha256,
        "association_id": association_id,
        "calling_aet": calling_aet[:16],
        "now": now,
    }
    inserted = _INSERT_INSTANCE[_dialect(session)].first(session, values)
    if inserted is None:
        raise AlreadyRecordedError(f"SOP instance {header.sop_uid} is already recorded")
    return study_id, int(inserted[0])
