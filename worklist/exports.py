"""Export jobs in the store: queue, record acknowledged instances, list and re-queue.

One job per study and destination; the instances a destination acknowledged are recorded so
that none is sent there twice; exhausted jobs are listed and can be queued again (webhook
notifications too, :mod:`worklist.webhooks`: they are outbound deliveries like exports).

The sending itself (C-STORE, the retry schedule) is :mod:`triage.exports`; this module only
reads and writes rows, so that the web app can show and re-queue exports without importing
the DICOM layer.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from models.errors import Conflict, NotFound
from worklist.audit import EventCategory, record_event
from worklist.db.engine import Database
from worklist.db.schema import ExportedInstance, Job, Study
from worklist.db.types import utcnow
from worklist.domain import JobKind, JobState, StoreError

__all__ = [
    "EXPORT_SOURCE",
    "ExportNotFailedError",
    "ExportNotFoundError",
    "ExportView",
    "enqueue_export",
    "exhausted_exports",
    "record_sent",
    "requeue_export",
    "sent_uids",
]

logger = logging.getLogger(__name__)

EXPORT_SOURCE = "exports"
"""The ``source`` of the export events."""


_OUTBOUND = (str(JobKind.EXPORT), str(JobKind.WEBHOOK))
"""The job kinds listed and re-queued here."""


class ExportNotFoundError(StoreError, NotFound):
    """No export (or webhook) job has this id."""


class ExportNotFailedError(StoreError, Conflict):
    """The export job is not exhausted (it is queued, running or done)."""


@dataclass(frozen=True)
class ExportView:
    """An export (or webhook) job as the admin page and the API show it."""

    job_id: int
    destination: str
    study_instance_uid: str
    state: str
    attempts: int
    max_attempts: int
    last_error: str
    finished_at: datetime | None
    kind: str = JobKind.EXPORT

    def as_dict(self) -> dict[str, Any]:
        """Return it as JSON-ready values."""
        return {
            "job_id": self.job_id,
            "destination": self.destination,
            "study_instance_uid": self.study_instance_uid,
            "state": self.state,
            "attempts": self.attempts,
            "max_attempts": self.max_attempts,
            "last_error": self.last_error,
            "finished_at": self.finished_at.isoformat() if self.finished_at else None,
            "kind": self.kind,
        }


def enqueue_export(
    session: Session, study_id: int, destination: str, *, priority: int, max_attempts: int
) -> Job:
    """Queue the export of a study to one destination, unless one is already waiting.

    Parameters
    ----------
    session
        An open write session; the caller commits.
    study_id
        The study.
    destination
        The destination's name (``payload["destination"]``).
    priority
        Lower is claimed first: the study's priority rank (1 for P1).
    max_attempts
        Attempts before the export is exhausted.

    Returns
    -------
    Job
        The new job, or the one already waiting (its priority raised if need be).
    """
    waiting = session.scalars(
        select(Job).where(
            Job.kind == JobKind.EXPORT,
            Job.study_id == study_id,
            Job.state.in_([JobState.QUEUED, JobState.RUNNING]),
        )
    ).all()
    for job in waiting:
        if (job.payload or {}).get("destination") == destination and job.state == JobState.QUEUED:
            job.priority = min(job.priority, priority)
            return job
    job = Job(
        kind=str(JobKind.EXPORT),
        study_id=study_id,
        payload={"destination": destination},
        priority=priority,
        max_attempts=max_attempts,
        state=JobState.QUEUED,
        available_at=utcnow(),
    )
    session.add(job)
    session.flush()
    return job


def sent_uids(db: Database, destination: str, study_id: int) -> set[str]:
    """Return the SOP Instance UIDs of a study that ``destination`` already acknowledged."""
    with db.read() as session:
        return set(
            session.scalars(
                select(ExportedInstance.sop_instance_uid).where(
                    ExportedInstance.destination == destination,
                    ExportedInstance.study_id == study_id,
                )
            )
        )


def record_sent(
    db: Database, destination: str, study_id: int, sop_instance_uid: str, job_id: int, attempt: int
) -> bool:
    """Record that ``destination`` acknowledged an instance (in its own transaction).

    Returns
    -------
    bool
        False if it was recorded already (a worker that died after the acknowledgement).
    """
    try:
        with db.write() as session:
            session.add(
                ExportedInstance(
                    destination=destination,
                    sop_instance_uid=sop_instance_uid,
                    study_id=study_id,
                    job_id=job_id,
                    attempt=attempt,
                )
            )
    except IntegrityError:
        logger.warning("%s: %s was recorded as sent already", destination, sop_instance_uid)
        return False
    return True


def _view(job: Job, study_uid: str) -> ExportView:
    return ExportView(
        job_id=job.id,
        destination=str((job.payload or {}).get("destination", "")),
        study_instance_uid=study_uid,
        state=job.state,
        attempts=job.attempts,
        max_attempts=job.max_attempts,
        last_error=job.last_error,
        finished_at=job.finished_at,
        kind=job.kind,
    )


def exhausted_exports(session: Session, limit: int = 500) -> list[ExportView]:
    """Return the export and webhook jobs that ran out of attempts, newest first."""
    rows = session.execute(
        select(Job, Study.study_instance_uid)
        .join(Study, Job.study_id == Study.id)
        .where(Job.kind.in_(_OUTBOUND), Job.state == JobState.FAILED)
        .order_by(Job.finished_at.desc(), Job.id.desc())
        .limit(limit)
    ).all()
    return [_view(job, uid) for job, uid in rows]


def requeue_export(session: Session, job_id: int, *, actor: str, source: str) -> ExportView:
    """Queue an exhausted export again with a fresh count of attempts (audited).

    Instances already acknowledged by the destination are not sent again.

    Raises
    ------
    ExportNotFoundError
        No export job has this id.
    ExportNotFailedError
        The job is not exhausted.
    """
    job = session.get(Job, job_id, with_for_update=True)
    if job is None or job.kind not in _OUTBOUND:
        raise ExportNotFoundError(f"no export job {job_id}")
    if job.state != JobState.FAILED:
        raise ExportNotFailedError(f"export job {job_id} is {job.state}, not failed")
    job.state = JobState.QUEUED
    job.attempts = 0
    job.available_at = utcnow()
    job.finished_at = None
    study_uid = session.scalar(select(Study.study_instance_uid).where(Study.id == job.study_id))
    record_event(
        session,
        EventCategory.AUDIT,
        "export.requeue",
        actor=actor[:64],
        source=source[:64],
        study_instance_uid=study_uid or "",
        details={"job_id": job.id, "destination": (job.payload or {}).get("destination", "")},
    )
    return _view(job, study_uid or "")
