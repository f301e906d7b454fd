"""Recording received instances: studies, series, instances, associations and ingest events.

:class:`Ingestor` is what every receiver (the DICOM listener, later STOW-RS) calls with the bytes
of one instance and its parsed :class:`~worklist.ingest.header.InstanceHeader`. It writes the file
durably to the :class:`~worklist.archive.Archive`, then records it in one short write
transaction, so that when :meth:`Ingestor.store` returns both are durable (with group commit,
concurrent instances share the sync and the transaction: :mod:`worklist.ingest.group_commit`).
Duplicates follow the duplicate policy (keep the first, or replace) and are logged as events.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from worklist.archive import Archive, StoredFile, sha256_hex
from worklist.audit import EventCategory, record_event
from worklist.db.engine import Database
from worklist.db.schema import Instance, Series, Study
from worklist.db.types import utcnow
from worklist.domain import StudyState
from worklist.ingest.associations import (
    close_association,
    open_association,
    record_duplicate,
    record_refusal,
)
from worklist.ingest.group_commit import GroupCommitter
from worklist.ingest.header import InstanceHeader

__all__ = [
    "IngestOutcome",
    "IngestResult",
    "Ingestor",
    "close_association",
    "open_association",
    "record_refusal",
]

logger = logging.getLogger(__name__)


class IngestOutcome(StrEnum):
    """What happened to one received instance."""

    STORED = "stored"  # new instance, written and recorded
    IDENTICAL = "identical"  # same SOP Instance UID, same bytes: already stored
    KEPT_FIRST = "kept_first"  # same UID, different bytes; the first copy was kept
    REPLACED = "replaced"  # same UID, different bytes; replaced (policy "replace")


@dataclass(frozen=True)
class IngestResult:
    """The outcome of :meth:`Ingestor.store`."""

    outcome: IngestOutcome
    study_id: int
    instance_id: int
    path: str
    sha256: str


def _insert(session: Session, model: Any) -> Any:
    """Return an INSERT for ``model`` that supports ``on_conflict_do_nothing``."""
    dialect = session.get_bind().dialect.name
    return pg_insert(model) if dialect == "postgresql" else sqlite_insert(model)


def _merge_modalities(current: str, modality: str) -> str:
    items = [m for m in current.split("\\") if m]
    if modality and modality not in items:
        items.append(modality)
    return "\\".join(items)[:64]


class Ingestor:
    """Store and record received instances.

    Parameters
    ----------
    db
        The store.
    archive
        Where the files go.
    replace_duplicates
        The duplicate policy: ``False`` keeps the first copy of a SOP instance that arrives
        again with different bytes (and warns); ``True`` replaces it durably.
    group_commit
        Make new instances durable and record them together with those stored concurrently
        by other threads (:class:`~worklist.ingest.group_commit.GroupCommitter`): one archive sync
        and one transaction per batch. :meth:`store` still returns only once its instance is
        durable and committed. Call :meth:`close` when done.
    reopen
        ``False``: an instance for a complete study does not reopen it (the AI's own outputs).
    """

    def __init__(
        self,
        db: Database,
        archive: Archive,
        *,
        replace_duplicates: bool = False,
        group_commit: bool = False,
        reopen: bool = True,
    ) -> None:
        self.db, self.archive = db, archive
        self.replace_duplicates, self.reopen = replace_duplicates, reopen
        self.group = GroupCommitter(db, archive) if group_commit else None

    def close(self) -> None:
        """Stop the group-commit thread, if any (after the last :meth:`store` returned)."""
        if self.group is not None:
            self.group.close()

    def _used_bytes(self) -> int | None:
        if self.archive.quota_bytes is None:
            return None
        with self.db.read() as session:
            total = session.scalar(select(func.coalesce(func.sum(Instance.size_bytes), 0)))
        return int(total or 0)

    def store(
        self,
        data: bytes,
        header: InstanceHeader,
        *,
        association_id: str | None = None,
        calling_aet: str = "",
        source: str = "",
    ) -> IngestResult:
        """Write one instance to the archive and record it; both are durable on return.

        Parameters
        ----------
        data
            The instance as a DICOM file (preamble, file meta, dataset).
        header
            The fields parsed from it.
        association_id
            The delivering association's row id (recorded beforehand with
            :func:`open_association`), if any.
        calling_aet
            The sender's AE title.
        source
            The sender's address, for events.

        Returns
        -------
        IngestResult
            What happened and where the instance is.

        Raises
        ------
        InvalidUIDError
            If a UID would make an unsafe path.
        ArchiveFullError
            If the archive is over quota or the disk is full.
        StoreUnavailableError
            On other archive errors (database errors propagate as SQLAlchemy errors).
        """
        relative = self.archive.relative_path(header.study_uid, header.series_uid, header.sop_uid)
        digest = sha256_hex(data)
        with self.archive.lock(header.sop_uid):
            with self.db.read() as session:
                existing = session.execute(
                    select(Instance.id, Instance.sha256, Instance.path, Instance.study_id).where(
                        Instance.sop_instance_uid == header.sop_uid
                    )
                ).first()
            if existing is None:
                self.archive.check_space(len(data), self._used_bytes())
                stored = self.archive.write(relative, data, digest, sync=self.group is None)

                def record(session: Session) -> tuple[int, int]:
                    return self._record_new(
                        session, header, stored, association_id, calling_aet, source
                    )

                if self.group is None:
                    with self.db.write() as session:
                        study_id, instance_id = record(session)
                else:  # the file is made durable, then recorded, with concurrent ones
                    key = f"{header.study_uid}/{header.series_uid}"  # lock order
                    study_id, instance_id = self.group.submit(stored.path, record, key=key)
                return IngestResult(
                    IngestOutcome.STORED, study_id, instance_id, stored.path, digest
                )
            instance_id, old_sha, old_path, study_id = existing
            if old_sha == digest:
                outcome = IngestOutcome.IDENTICAL
            elif not self.replace_duplicates:
                outcome = IngestOutcome.KEPT_FIRST
            else:
                return self._replace(data, header, digest, existing, association_id, calling_aet)
            record_duplicate(
                self.db,
                study_uid=header.study_uid,
                sop_uid=header.sop_uid,
                policy_outcome=outcome.value,
                stored_sha256=old_sha,
                received_sha256=digest,
                calling_aet=calling_aet,
                source=source,
            )
            return IngestResult(outcome, study_id, instance_id, old_path, old_sha)

    def _record_new(
        self,
        session: Session,
        header: InstanceHeader,
        stored: StoredFile,
        association_id: str | None,
        calling_aet: str,
        source: str,
    ) -> tuple[int, int]:
        """Record a new instance (its study and series too); return the study and row ids."""
        study_id = self._touch_study(session, header, calling_aet, source, 1)
        series_id = self._series_id(session, header, study_id)
        instance_id = session.execute(
            insert(Instance)
            .values(
                study_id=study_id,
                series_id=series_id,
                sop_instance_uid=header.sop_uid,
                sop_class_uid=header.sop_class_uid,
                transfer_syntax_uid=header.transfer_syntax_uid,
                instance_number=header.instance_number,
                view_position=header.view_position,
                path=stored.path,
                size_bytes=stored.size_bytes,
                sha256=stored.sha256,
                association_id=association_id,
                calling_aet=calling_aet[:16],
                received_at=utcnow(),
            )
            .returning(Instance.id)
        ).scalar_one()
        return study_id, int(instance_id)

    def _replace(
        self,
        data: bytes,
        header: InstanceHeader,
        digest: str,
        existing: Any,
        association_id: str | None,
        calling_aet: str,
    ) -> IngestResult:
        """Write the new copy beside the old one, repoint the row, then drop the old file."""
        instance_id, old_sha, old_path, _old_study = existing
        relative = self.archive.relative_path(
            header.study_uid, header.series_uid, header.sop_uid, variant=digest[:16]
        )
        self.archive.check_space(len(data), self._used_bytes())
        stored: StoredFile = self.archive.write(relative, data, digest)
        with self.db.write() as session:
            study_id = self._touch_study(session, header, calling_aet, "", 0)
            series_id = self._series_id(session, header, study_id)
            instance = session.get(Instance, instance_id, with_for_update=True)
            assert instance is not None
            if instance.study_id != study_id:  # the replacement moved it to another study
                for moved_from, delta in ((instance.study_id, -1), (study_id, 1)):
                    session.execute(
                        update(Study)
                        .where(Study.id == moved_from)
                        .values(instance_count=Study.instance_count + delta)
                    )
            instance.study_id = study_id
            instance.series_id = series_id
            instance.sop_class_uid = header.sop_class_uid
            instance.transfer_syntax_uid = header.transfer_syntax_uid
            instance.instance_number = header.instance_number
            instance.view_position = header.view_position
            instance.path = stored.path
            instance.size_bytes = stored.size_bytes
            instance.sha256 = stored.sha256
            instance.association_id = association_id
            instance.calling_aet = calling_aet[:16]
            instance.received_at = utcnow()
            record_event(
                session,
                EventCategory.INGEST,
                "instance.duplicate",
                actor=calling_aet,
                study_instance_uid=header.study_uid,
                sop_instance_uid=header.sop_uid,
                outcome="warning",
                details={
                    "policy_outcome": IngestOutcome.REPLACED.value,
                    "stored_sha256": old_sha,
                    "received_sha256": digest,
                },
            )
        logger.warning(
            "duplicate SOP instance %s from %s replaced (sha256 %s -> %s)",
            header.sop_uid,
            calling_aet,
            old_sha[:12],
            digest[:12],
        )
        if old_path != stored.path:
            self.archive.remove(old_path)
        return IngestResult(IngestOutcome.REPLACED, study_id, instance_id, stored.path, digest)

    def _touch_study(
        self,
        session: Session,
        header: InstanceHeader,
        calling_aet: str,
        source: str,
        count_delta: int,
    ) -> int:
        """Create the study if new, lock it, merge the header in, mark it receiving.

        Core statements only (this runs once per received instance). Returns the study's id.
        """
        now = utcnow()
        fields = header.study_fields()
        columns = [getattr(Study, name) for name in fields]
        query = (
            select(
                Study.id,
                Study.state,
                Study.modalities,
                Study.site,
                Study.last_received_at,
                *columns,
            )
            .where(Study.study_instance_uid == header.study_uid)
            .with_for_update()
        )
        row = session.execute(query).first()  # usually there: one statement less
        if row is None:
            session.execute(
                _insert(session, Study)
                .values(
                    study_instance_uid=header.study_uid,
                    site=calling_aet[:64],
                    first_received_at=now,
                    last_received_at=now,
                    state=StudyState.RECEIVING.value,
                )
                .on_conflict_do_nothing(index_elements=["study_instance_uid"])
            )
            row = session.execute(query).one()
        values: dict[str, Any] = {
            name: value for name, value in fields.items() if value and not getattr(row, name)
        }
        modalities = _merge_modalities(row.modalities, header.modality)
        if modalities != row.modalities:
            values["modalities"] = modalities
        if not row.site:
            values["site"] = calling_aet[:64]
        values["last_received_at"] = max(row.last_received_at, now)
        if count_delta:
            values["instance_count"] = Study.instance_count + count_delta
        if row.state != StudyState.RECEIVING and self.reopen:
            logger.info("study %s reopened: an instance arrived after completion", row.id)
            record_event(
                session,
                EventCategory.INGEST,
                "study.reopened",
                actor=calling_aet,
                source=source,
                study_instance_uid=header.study_uid,
                sop_instance_uid=header.sop_uid,
                details={"previous_state": row.state},
            )
            values["state"] = StudyState.RECEIVING.value
            values["completed_at"] = None
            values["version"] = Study.version + 1
        session.execute(update(Study).where(Study.id == row.id).values(**values))
        return int(row.id)

    def _series_id(self, session: Session, header: InstanceHeader, study_id: int) -> int:
        query = select(Series.id).where(Series.series_instance_uid == header.series_uid)
        series_id = session.scalar(query)
        if series_id is None:
            session.execute(
                _insert(session, Series)
                .values(
                    study_id=study_id,
                    series_instance_uid=header.series_uid,
                    modality=header.modality[:16],
                    body_part=header.body_part[:64],
                    series_number=header.series_number[:12],
                    series_description=header.series_description[:64],
                )
                .on_conflict_do_nothing(index_elements=["series_instance_uid"])
            )
            series_id = session.scalar(query)
        assert series_id is not None
        return int(series_id)
