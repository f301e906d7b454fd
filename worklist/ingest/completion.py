"""Completing a study and queueing its triage job, for receivers that know when they are done.

The DICOM gateway's assembler (``dicom_gateway.assembler``) decides completion by associations
and idle times; a STOW-RS request is complete when its response is due. Both end in the same
conditional ``UPDATE ... WHERE state = 'receiving'`` plus the job row in one transaction, so
completion happens once whoever gets there first, and an instance recorded meanwhile (which moves
``last_received_at``) wins. A study that another open association is still delivering is left
to the assembler.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from sqlalchemy import and_, exists, select, update

from worklist.audit import EventCategory, record_event
from worklist.db.engine import Database
from worklist.db.schema import Association, Instance, Study
from worklist.db.types import utcnow
from worklist.domain import JobKind, StudyState
from worklist.jobs import enqueue

__all__ = ["complete_studies"]

logger = logging.getLogger(__name__)


def _complete(db: Database, study_id: int, actor: str) -> bool:
    open_delivery = exists().where(
        Instance.study_id == Study.id,
        Instance.association_id == Association.id,
        Association.ended_at.is_(None),
    )
    with db.write() as session:
        row = session.execute(
            select(Study.last_received_at, Study.study_instance_uid).where(Study.id == study_id)
        ).first()
        if row is None:
            return False
        result = session.execute(
            update(Study)
            .where(
                and_(
                    Study.id == study_id,
                    Study.state == StudyState.RECEIVING.value,
                    Study.last_received_at == row.last_received_at,
                    ~open_delivery,
                )
            )
            .values(state=StudyState.QUEUED.value, completed_at=utcnow(), version=Study.version + 1)
            .execution_options(synchronize_session=False)
        )
        if result.rowcount != 1:  # type: ignore[attr-defined]
            return False
        job = enqueue(session, JobKind.TRIAGE, study_id=study_id)
        record_event(
            session,
            EventCategory.INGEST,
            "study.complete",
            actor=actor,
            study_instance_uid=row.study_instance_uid,
            details={"job_id": job.id},
        )
    logger.info("study %d complete: triage job %d queued", study_id, job.id)
    return True


def complete_studies(db: Database, study_ids: Iterable[int], *, actor: str) -> list[int]:
    """Complete each study still receiving and not being delivered elsewhere; queue triage.

    Parameters
    ----------
    db
        The store.
    study_ids
        The studies a receiver has just finished delivering.
    actor
        Who completed them, for the ``study.complete`` event (``stow-rs``).

    Returns
    -------
    list of int
        The studies completed (and queued) by this call.
    """
    return [sid for sid in sorted(set(study_ids)) if _complete(db, sid, actor)]
