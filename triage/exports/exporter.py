"""Queue and carry out export jobs: C-STORE a study's outputs to a destination, with retry.

After a study's triage is committed and its outputs stored, :meth:`Exporter.enqueue_for` queues
one ``export`` job per matching destination, at the study's priority rank (P1 exports are
claimed first). A worker that claims one calls :meth:`Exporter.run`: it sends the instances the
destination has not acknowledged yet (:func:`dicom_gateway.scu.send_files`), records each
acknowledged one at once (so a worker that dies mid-export never makes its successor send it
again), records the attempt as an ``export.attempt`` event, and either completes the job or
fails it with the destination's exponential delay; after the last attempt it is exhausted
(``export.exhausted``), shown to admins and re-queueable.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydicom.uid import Comprehensive3DSRStorage
from sqlalchemy import select
from sqlalchemy.orm import Session

from dicom_gateway.scu import SendResult, probe, send_files
from dicom_gateway.tls import TlsClient
from triage.exports.destinations import ExportDestination, SendKind, matching
from worklist.audit import EventCategory, record_event
from worklist.db.engine import Database
from worklist.db.schema import Instance, Study
from worklist.domain import JobState, Priority
from worklist.exports import EXPORT_SOURCE, enqueue_export, record_sent, sent_uids
from worklist.jobs import ClaimedJob, complete, fail

__all__ = ["AttemptOutcome", "Exporter", "kind_of"]

logger = logging.getLogger(__name__)


def _tls(destination: ExportDestination) -> TlsClient | None:
    """Return the SCU's TLS options for ``destination``, or ``None`` when it is plain DICOM."""
    if not destination.tls:
        return None
    return TlsClient(
        ca_bundle=destination.tls_ca_bundle,
        certificate=destination.tls_certificate,
        private_key=destination.tls_private_key,
        check_hostname=destination.tls_check_hostname,
    )


def kind_of(instance: Instance) -> SendKind:
    """Say what an instance is to an export: the AI's SR or key image, or an original.

    The AI's outputs are the instances stored without a sender (no calling AE title, no
    association): a Comprehensive 3D SR is the SR, anything else the key image.
    """
    if instance.calling_aet or instance.association_id is not None:
        return "originals"
    return "sr" if instance.sop_class_uid == Comprehensive3DSRStorage else "key_image"


@dataclass
class AttemptOutcome:
    """What one attempt did: the job's new state, and the counts of instances."""

    state: str
    sent: int = 0
    already: int = 0
    failed: list[str] = field(default_factory=list)
    retry_in_s: float | None = None
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    """When the attempt began (a retry is due ``retry_in_s`` after the failure, so after this)."""


class Exporter:
    """Queue export jobs for triaged studies and carry them out.

    Parameters
    ----------
    db
        The store.
    archive_dir
        The archive root (instances' paths are relative to it).
    destinations
        The configured destinations.
    owner
        The worker's lease owner (and the events' actor).
    """

    def __init__(
        self,
        db: Database,
        archive_dir: Path,
        destinations: Sequence[ExportDestination],
        *,
        owner: str,
    ) -> None:
        self.db, self.archive_dir, self.owner = db, archive_dir, owner
        self.destinations = {d.name: d for d in destinations}

    def enqueue_for(self, study_id: int) -> list[int]:
        """Queue an export of ``study_id`` to each matching destination; return the job ids."""
        if not self.destinations:
            return []
        with self.db.write() as session:
            return self.enqueue_in(session, study_id)

    def enqueue_in(self, session: Session, study_id: int) -> list[int]:
        """Queue the exports of ``study_id`` in the caller's transaction; return the job ids.

        Parameters
        ----------
        session
            An open write session; the caller commits (the worker, with the completion of the
            study's publish job, so that the exports are queued exactly once).
        study_id
            The study.

        Returns
        -------
        list of int
            One export job per destination whose filters the study matches.
        """
        study = session.get(Study, study_id) if self.destinations else None
        if study is None:
            return []
        rank = Priority.rank_of(study.priority)
        return [
            enqueue_export(session, study_id, d.name, priority=rank, max_attempts=d.attempts).id
            for d in matching(list(self.destinations.values()), study)
        ]

    def _instances(self, study_id: int, send: Sequence[SendKind]) -> list[tuple[str, Path]]:
        with self.db.read() as session:
            rows = session.scalars(
                select(Instance).where(Instance.study_id == study_id).order_by(Instance.id)
            ).all()
            return [
                (r.sop_instance_uid, self.archive_dir / r.path) for r in rows if kind_of(r) in send
            ]

    def run(self, job: ClaimedJob) -> AttemptOutcome:
        """Carry out one attempt of a claimed export job and record it.

        Parameters
        ----------
        job
            The export job, held by this exporter's owner.

        Returns
        -------
        AttemptOutcome
            The job's new state (``done``, ``queued`` for a retry, ``failed`` when exhausted,
            ``""`` if the lease was lost) and what was sent.
        """
        name = str(job.payload.get("destination", ""))
        destination = self.destinations.get(name)
        if destination is None or job.study_id is None:
            error = f"no export destination named {name!r} is configured"
            state = fail(self.db, job.id, self.owner, error, retry=False)
            outcome = AttemptOutcome(state, failed=[error])
            self._record(job, name, outcome)
            return outcome
        wanted = self._instances(job.study_id, destination.send)
        done = sent_uids(self.db, name, job.study_id)
        todo = {path: uid for uid, path in wanted if uid not in done}
        outcome = AttemptOutcome(JobState.RUNNING, already=len(wanted) - len(todo))

        def on_result(result: SendResult) -> None:
            uid = todo[result.path]
            if result.ok:
                record_sent(self.db, name, job.study_id or 0, uid, job.id, job.attempts)
                outcome.sent += 1
            else:
                outcome.failed.append(f"{uid}: {result.label}: {result.message}")

        down = probe(destination.host, destination.port, destination.timeout_s) if todo else ""
        if down:
            outcome.failed = [f"{uid}: not sent: {down}" for uid in todo.values()]
        elif todo:
            send_files(
                list(todo),
                destination.host,
                destination.port,
                calling_aet=destination.calling_aet,
                called_aet=destination.ae_title,
                timeout_s=destination.timeout_s,
                on_result=on_result,
                tls=_tls(destination),
            )
        if outcome.failed:
            outcome.retry_in_s = destination.delay_after(job.attempts)
            error = f"{len(outcome.failed)} of {len(todo)} not stored: {outcome.failed[0]}"
            outcome.state = fail(self.db, job.id, self.owner, error, delay_s=outcome.retry_in_s)
            if outcome.state != JobState.QUEUED:
                outcome.retry_in_s = None
        else:
            with self.db.write() as session:
                outcome.state = JobState.DONE if complete(session, job.id, self.owner) else ""
        self._record(job, name, outcome)
        return outcome

    def _record(self, job: ClaimedJob, name: str, outcome: AttemptOutcome) -> None:
        details: dict[str, Any] = {
            "job_id": job.id,
            "destination": name,
            "attempt": job.attempts,
            "max_attempts": job.max_attempts,
            "state": outcome.state,
            "sent": outcome.sent,
            "already_sent": outcome.already,
            "failed": len(outcome.failed),
            "errors": outcome.failed[:5],
            "retry_in_s": outcome.retry_in_s,
            "started_at": outcome.started_at.isoformat(),
        }
        actions = ["export.attempt"]
        if outcome.state == JobState.FAILED:
            actions.append("export.exhausted")
            logger.error("export job %d to %s exhausted: %s", job.id, name, outcome.failed[:1])
        try:
            with self.db.write() as session:
                study_uid = session.scalar(
                    select(Study.study_instance_uid).where(Study.id == job.study_id)
                )
                for action in actions:
                    record_event(
                        session,
                        EventCategory.SYSTEM,
                        action,
                        actor=self.owner[:64],
                        source=EXPORT_SOURCE,
                        study_instance_uid=study_uid or "",
                        outcome="success" if outcome.state == JobState.DONE else "failure",
                        details=details,
                    )
        except Exception:
            logger.exception("export job %d: attempt not recorded", job.id)
