"""Study assembly: decide when a study is complete and queue its triage job.

A study in state ``receiving`` is complete when every association that delivered instances of
it has ended (released or aborted) and no instance arrived for the idle time of its modality
(``GatewaySettings.idle_s``; CR/DX 0 s, so a chest radiograph is complete at release). An
association still open but silent for longer than the network plus DIMSE timeouts is taken as
dead (its listener was killed), so a study is never stuck.

Completion is a conditional ``UPDATE ... WHERE state = 'receiving' AND last_received_at = :seen``
in the same transaction as the job row, so any number of assemblers may run at once, and an
instance recorded meanwhile (which moves ``last_received_at``) wins.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from datetime import datetime, timedelta

from sqlalchemy import and_, exists, or_, select, update

from dicom_gateway.settings import GatewaySettings
from worklist.audit import EventCategory, record_event
from worklist.db.engine import Database
from worklist.db.outage import OutageLog
from worklist.db.schema import Association, Instance, Study
from worklist.db.types import utcnow
from worklist.domain import JobKind, StudyState
from worklist.jobs import enqueue

__all__ = ["Assembler"]

logger = logging.getLogger(__name__)


class Assembler:
    """Completes studies and queues their triage jobs.

    Parameters
    ----------
    db
        The store.
    settings
        Idle times per modality, the poll period, and the timeouts that bound a dead
        association.
    """

    def __init__(self, db: Database, settings: GatewaySettings) -> None:
        self.db = db
        self.settings = settings
        self.stale_s = settings.network_timeout_s + settings.dimse_timeout_s

    def idle_for(self, modalities: str) -> float:
        """Return the idle time of a study: the longest of its modalities' idle times."""
        values = [
            self.settings.idle_s.get(m, self.settings.default_idle_s)
            for m in modalities.split("\\")
            if m
        ]
        return max(values) if values else self.settings.default_idle_s

    def _min_idle(self) -> float:
        return min([self.settings.default_idle_s, *self.settings.idle_s.values()])

    def run_once(
        self, now: datetime | None = None, study_ids: Iterable[int] | None = None
    ) -> list[int]:
        """Complete every study that is ready now.

        Parameters
        ----------
        now
            The time to judge by (default: now).
        study_ids
            Only consider these studies (an association just ended); ``None``: all.

        Returns
        -------
        list of int
            The studies completed (and queued) by this call.
        """
        now = now or utcnow()
        open_delivery = exists().where(
            Instance.study_id == Study.id,
            Instance.association_id == Association.id,
            Association.ended_at.is_(None),
        )
        query = select(Study.id, Study.modalities, Study.last_received_at).where(
            Study.state == StudyState.RECEIVING.value,
            Study.last_received_at <= now - timedelta(seconds=self._min_idle()),
            or_(
                ~open_delivery,
                Study.last_received_at <= now - timedelta(seconds=self.stale_s),
            ),
        )
        if study_ids is not None:
            ids = list(study_ids)
            if not ids:
                return []
            query = query.where(Study.id.in_(ids))
        with self.db.read() as session:
            candidates = session.execute(query.order_by(Study.last_received_at)).all()
        done: list[int] = []
        for study_id, modalities, last in candidates:
            if last + timedelta(seconds=self.idle_for(modalities)) > now:
                continue
            if self._complete(study_id, last, now):
                done.append(study_id)
        return done

    def _complete(self, study_id: int, seen_last: datetime, now: datetime) -> bool:
        with self.db.write() as session:
            result = session.execute(
                update(Study)
                .where(
                    and_(
                        Study.id == study_id,
                        Study.state == StudyState.RECEIVING.value,
                        Study.last_received_at == seen_last,
                    )
                )
                .values(state=StudyState.QUEUED.value, completed_at=now, version=Study.version + 1)
                .execution_options(synchronize_session=False)
            )
            if result.rowcount != 1:  # type: ignore[attr-defined]
                return False
            job = enqueue(session, JobKind.TRIAGE, study_id=study_id)
            uid = session.scalar(select(Study.study_instance_uid).where(Study.id == study_id))
            record_event(
                session,
                EventCategory.INGEST,
                "study.complete",
                actor="assembler",
                study_instance_uid=uid or "",
                details={"job_id": job.id},
            )
        logger.info("study %d complete: triage job %d queued", study_id, job.id)
        return True

    def run(self, stop: threading.Event) -> None:
        """Poll every ``assembler_interval_s`` until ``stop`` is set (errors are logged)."""
        logger.info("study assembler running (every %.2f s)", self.settings.assembler_interval_s)
        outage = OutageLog(logger, "the assembler")
        while not stop.is_set():
            try:
                self.run_once()
            except Exception as exc:
                outage.failed(exc)
            else:
                outage.succeeded()
            stop.wait(self.settings.assembler_interval_s)
