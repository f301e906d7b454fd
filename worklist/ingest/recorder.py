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
from pathlib import Path
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from worklist.archive import Archive, StoredFile, sha256_hex
from worklist.audit import EventCategory, record_event
from worklist.db.engine import Database
from worklist.db.schema import Instance, Study
from worklist.db.types import utcnow
from worklist.ingest.associations import (
    close_association,
    open_association,
    record_duplicate,
    record_refusal,
)
from worklist.ingest.group_commit import GroupCommitter
from worklist.ingest.header import InstanceHeader
from worklist.ingest.rows import AlreadyRecordedError, insert_new_instance, series_id, touch_study

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
        received: Path | None = None,
    ) -> IngestResult:
        """Write one instance to the archive and record it; both are durable on return.

        A new instance (no file at its archive path: the usual case) is written, or its
        received file renamed into place, and recorded with ``INSERT ... ON CONFLICT DO
        NOTHING`` in the write transaction, which is the duplicate check: no separate read
        comes first. Only when a file is already at that path, or the INSERT finds the SOP
        instance recorded (under another path), is the stored row looked up and the
        duplicate policy applied; the SOP instance's archive lock is held throughout.

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
        received
            The file ``data`` was read from, when it is in the archive's filesystem (a
            listener process receives there): renamed into place instead of written again.
            It is left alone when the instance is a duplicate.

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
        with self.archive.lock(header.sop_uid):
            if not self.archive.exists(relative):
                new = self._store_new(
                    data, header, relative, received, association_id, calling_aet, source
                )
                if isinstance(new, IngestResult):
                    return new
                digest = new  # recorded already, under another path: ours is removed
            else:
                digest = sha256_hex(data)
            with self.db.read() as session:
                existing = session.execute(
                    select(Instance.id, Instance.sha256, Instance.path, Instance.study_id).where(
                        Instance.sop_instance_uid == header.sop_uid
                    )
                ).first()
            if existing is None:  # a file left by a crash before its row: written again
                new = self._store_new(
                    data, header, relative, None, association_id, calling_aet, source
                )
                if isinstance(new, IngestResult):
                    return new
                raise AlreadyRecordedError(f"SOP instance {header.sop_uid} changed meanwhile")
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

    def _store_new(
        self,
        data: bytes,
        header: InstanceHeader,
        relative: str,
        received: Path | None,
        association_id: str | None,
        calling_aet: str,
        source: str,
    ) -> IngestResult | str:
        """Write and record a new instance; return its result, or its sha256 if a duplicate.

        A duplicate (the INSERT found the SOP instance recorded) rolls its rows back and its
        file is removed: the caller applies the duplicate policy.
        """
        self.archive.check_space(len(data), self._used_bytes())
        sync = self.group is None
        if received is not None and received.is_relative_to(self.archive.root):
            digest = sha256_hex(data)
            stored = self.archive.adopt(relative, received, digest, len(data), sync=sync)
        else:
            stored = self.archive.write(relative, data, sync=sync)

        def record(session: Session) -> tuple[int, int]:
            return insert_new_instance(
                session,
                header,
                stored,
                association_id=association_id,
                calling_aet=calling_aet,
                source=source,
                reopen=self.reopen,
            )

        try:
            if self.group is None:
                with self.db.write() as session:
                    study_id, instance_id = record(session)
            else:  # the file is made durable, then recorded, with concurrent ones
                key = f"{header.study_uid}/{header.series_uid}"  # lock order
                study_id, instance_id = self.group.submit(stored.path, record, key=key)
        except AlreadyRecordedError:
            self.archive.remove(stored.path)  # no row points at it (the lock is held)
            return stored.sha256
        return IngestResult(IngestOutcome.STORED, study_id, instance_id, stored.path, stored.sha256)

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
            study_id = touch_study(
                session, header, calling_aet=calling_aet, source="", count_delta=0,
                reopen=self.reopen,
            )  # fmt: skip
            series = series_id(session, header, study_id)
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
            instance.series_id = series
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
