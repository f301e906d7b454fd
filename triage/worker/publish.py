"""Publish a triaged study: its SR and key images, then its exports and notifications.

The triage commit queues a ``publish`` job in its own transaction
(:func:`triage.worker.store.enqueue_publish`); the worker that committed usually claims it at
once (:meth:`triage.worker.loop.Worker.run_publish`), and any worker does when that one died
first. So a worker killed between the triage commit and its outputs no longer leaves a study
triaged but without its SR, key images, exports or urgent-result notifications.

A publish job reads the study's findings back from the store (the latest triage's; a newer
triage replaces them), stores the outputs of each model run not yet stored for that triage
(an attempt cut short is resumed, not repeated), then queues the exports and notifications in
the very transaction that completes the job: they are queued exactly once.
"""

from __future__ import annotations

import logging
from dataclasses import fields

from sqlalchemy import select
from sqlalchemy.orm import Session

from triage.exports.exporter import Exporter
from triage.outputs.writer import OutputWriter
from triage.webhooks.notifier import Notifier
from triage.worker.inference import FindingRecord, StudyWork
from triage.worker.store import load_work
from worklist.db.engine import Database
from worklist.db.schema import Finding
from worklist.jobs import ClaimedJob, complete

__all__ = ["Publisher", "load_triaged"]

logger = logging.getLogger(__name__)

_RECORD_FIELDS = tuple(f.name for f in fields(FindingRecord))


def load_triaged(session: Session, study_id: int) -> tuple[StudyWork, int | None] | None:
    """Read a triaged study's images and current findings back from the store.

    Parameters
    ----------
    session
        A read session.
    study_id
        The study.

    Returns
    -------
    tuple of (StudyWork, int or None) or None
        The study with its findings, and the triage job that wrote them (``None`` when it has
        none); ``None`` when the study is gone.
    """
    work = load_work(session, study_id)
    if work is None:
        return None
    rows = session.scalars(
        select(Finding).where(Finding.study_id == study_id).order_by(Finding.id)
    ).all()
    work.findings = [
        FindingRecord(**{name: getattr(row, name) for name in _RECORD_FIELDS}) for row in rows
    ]
    job_ids = {row.job_id for row in rows if row.job_id is not None}
    return work, (max(job_ids) if job_ids else None)


class Publisher:
    """Carry out publish jobs.

    Parameters
    ----------
    db
        The store.
    owner
        The worker's lease owner name.
    outputs
        Stores the SR and key images (``None``: outputs are off).
    exporter
        Queues the exports (``None``: no destinations).
    notifier
        Queues the webhook notifications (``None``: no webhooks).
    """

    def __init__(
        self,
        db: Database,
        owner: str,
        outputs: OutputWriter | None,
        exporter: Exporter | None,
        notifier: Notifier | None,
    ) -> None:
        self.db, self.owner = db, owner
        self.outputs, self.exporter, self.notifier = outputs, exporter, notifier

    def run(self, job: ClaimedJob) -> bool:
        """Publish the study of one claimed ``publish`` job and complete the job.

        A failure in one model run's outputs is confined to it (logged, and recorded as an
        ``outputs.failed`` event by :class:`~triage.outputs.writer.OutputWriter`); anything
        else raises, and the caller fails the job for a later retry.

        Parameters
        ----------
        job
            The job, held by this worker.

        Returns
        -------
        bool
            ``False`` if the lease was lost before completing (another worker has the job).
        """
        if job.study_id is None:
            raise ValueError(f"publish job {job.id} names no study")
        with self.db.read() as session:
            loaded = load_triaged(session, job.study_id)
        if loaded is None:  # deleted meanwhile: storing outputs would bring it back
            with self.db.write() as session:
                return complete(session, job.id, self.owner)
        work, triage_job = loaded
        if self.outputs is not None and work.findings:
            self.outputs.write(work, triage_job)
        with self.db.write() as session:
            if not complete(session, job.id, self.owner):
                logger.warning("publish job %d: lease lost; another worker publishes", job.id)
                return False
            if self.exporter is not None:
                self.exporter.enqueue_in(session, job.study_id)
            if self.notifier is not None and triage_job is not None:
                self.notifier.enqueue_in(session, job.study_id, triage_job)
        return True
