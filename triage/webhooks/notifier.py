"""Queue and deliver webhook notifications of urgent AI results, with retry.

After a study's triage is committed, :meth:`Notifier.enqueue_for` looks at the decision: when
the AI's findings raised the study to P1 above its clinical priority, it builds the event (a
JSON body with a stable ``event_id``) and queues one ``webhook`` job per webhook. A worker that
claims one calls :meth:`Notifier.run`: it POSTs the body, signed, and completes the job on a
2xx answer or fails it with the webhook's exponential delay; every attempt is recorded as a
``webhook.attempt`` event and the last as ``webhook.exhausted``. A failure never touches the
study's triage.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx
from sqlalchemy import select
from sqlalchemy.orm import Session

from triage.webhooks.config import (
    EVENT_ID_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    Webhook,
    WebhookSecretError,
    sign,
)
from worklist.audit import EventCategory, record_event
from worklist.db.engine import Database
from worklist.db.schema import Finding, Study
from worklist.domain import AIStatus, JobState, Priority
from worklist.jobs import ClaimedJob, complete, fail
from worklist.webhooks import WEBHOOK_SOURCE, enqueue_webhook

__all__ = ["Delivery", "Notifier", "ai_raised_to_p1", "event_body"]

logger = logging.getLogger(__name__)

_EVENT_NAMESPACE = uuid.UUID("6f1c0c8e-4b7a-5d1e-9a55-1c0ffee7a1e5")
NOTICE = "AI decision support, not a diagnosis"


def ai_raised_to_p1(study: Study) -> bool:
    """Say whether the AI decided this study's P1: a P1 finding above the clinical priority."""
    if study.priority != Priority.P1 or study.clinical_priority == Priority.P1:
        return False
    if study.ai_status != AIStatus.DONE:
        return False
    return any(
        e.get("rule") == "ai_finding" and e.get("priority") == Priority.P1
        for e in study.priority_explanation or []
        if isinstance(e, dict)
    )


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def event_body(study: Study, findings: Sequence[Finding], triage_job_id: int) -> dict[str, Any]:
    """Build the JSON event of an AI-decided P1 (no patient name or ID: the UIDs identify it).

    The ``event_id`` is derived from the study and its triage job, so the same decision always
    gives the same id (receivers deduplicate on it); a later re-triage is a new event.
    """
    key = f"{study.study_instance_uid}:{triage_job_id}"
    return {
        "event": "study.ai_p1",
        "event_id": str(uuid.uuid5(_EVENT_NAMESPACE, key)),
        "study_instance_uid": study.study_instance_uid,
        "accession_number": study.accession_number or "",
        "site": study.site or "",
        "priority": study.priority,
        "clinical_priority": study.clinical_priority,
        "decided_at": _iso(study.triaged_at),
        "due_at": _iso(study.due_at),
        "findings": [
            {
                "label": f.label,
                "code": {
                    "scheme": f.concept_scheme,
                    "value": f.concept_code,
                    "meaning": f.concept_meaning,
                },
                "probability": round(float(f.probability), 6),
                "threshold": round(float(f.threshold), 6),
                "category": f.category,
                "sop_instance_uid": f.sop_instance_uid,
                "model": {
                    "name": f.model_name,
                    "version": f.model_version,
                    "sha256": f.model_sha256,
                    "uid": f.model_uid,
                    "manufacturer": f.model_creator,
                },
            }
            for f in findings
        ],
        "notice": NOTICE,
    }


@dataclass
class Delivery:
    """What one attempt did: the job's new state, the HTTP status, the error, the next wait."""

    state: str
    status: int | None = None
    error: str = ""
    retry_in_s: float | None = None


class Notifier:
    """Queue webhook jobs for AI-decided P1 studies and deliver them.

    Parameters
    ----------
    db
        The store.
    webhooks
        The configured webhooks.
    owner
        The worker's lease owner (and the events' actor).
    """

    def __init__(self, db: Database, webhooks: Sequence[Webhook], *, owner: str) -> None:
        self.db, self.owner = db, owner
        self.webhooks = {w.name: w for w in webhooks}

    def enqueue_for(self, study_id: int, triage_job_id: int) -> list[int]:
        """Queue a notification to each webhook if the AI raised ``study_id`` to P1.

        Returns
        -------
        list of int
            The webhook job ids (empty when the study is not an AI-decided P1).
        """
        if not self.webhooks:
            return []
        with self.db.write() as session:
            return self.enqueue_in(session, study_id, triage_job_id)

    def enqueue_in(self, session: Session, study_id: int, triage_job_id: int) -> list[int]:
        """Queue the notifications of ``study_id`` in the caller's transaction.

        Parameters
        ----------
        session
            An open write session; the caller commits.
        study_id
            The study.
        triage_job_id
            The triage job whose result is announced (part of the event's id).

        Returns
        -------
        list of int
            The webhook job ids (empty when the study is not an AI-decided P1).
        """
        study = session.get(Study, study_id) if self.webhooks else None
        if study is None or not ai_raised_to_p1(study):
            return []
        findings = session.scalars(
            select(Finding)
            .where(
                Finding.study_id == study_id,
                Finding.crossed.is_(True),
                Finding.shadow.is_(False),
            )
            .order_by(Finding.id)
        ).all()
        body = event_body(study, findings, triage_job_id)
        return [
            enqueue_webhook(session, study_id, w.name, body, priority=1, max_attempts=w.attempts).id
            for w in self.webhooks.values()
            if "ai_p1" in w.events
        ]

    def _post(self, webhook: Webhook, event: dict[str, Any]) -> tuple[int | None, str]:
        """POST the signed body once; return the HTTP status (or None) and an error text."""
        body = json.dumps(event, sort_keys=True, separators=(",", ":")).encode("utf-8")
        try:
            secret = webhook.secret_bytes()
        except WebhookSecretError as exc:
            return None, str(exc)
        timestamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/json",
            EVENT_ID_HEADER: str(event.get("event_id", "")),
            TIMESTAMP_HEADER: timestamp,
            SIGNATURE_HEADER: sign(secret, timestamp, body),
        }
        try:
            with httpx.Client(timeout=webhook.timeout_s, follow_redirects=False) as client:
                response = client.post(webhook.url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            return None, f"not delivered: {type(exc).__name__}: {exc}"
        if 200 <= response.status_code < 300:
            return response.status_code, ""
        return response.status_code, f"HTTP {response.status_code} {response.reason_phrase}"

    def run(self, job: ClaimedJob) -> Delivery:
        """Carry out one attempt of a claimed webhook job and record it.

        Parameters
        ----------
        job
            The webhook job, held by this notifier's owner.

        Returns
        -------
        Delivery
            The job's new state (``done``, ``queued`` for a retry, ``failed`` when exhausted,
            ``""`` if the lease was lost), the HTTP status and the error.
        """
        name = str(job.payload.get("destination", ""))
        event = dict(job.payload.get("event") or {})
        webhook = self.webhooks.get(name)
        if webhook is None:
            error = f"no webhook named {name!r} is configured"
            outcome = Delivery(fail(self.db, job.id, self.owner, error, retry=False), error=error)
            self._record(job, name, event, outcome)
            return outcome
        status, error = self._post(webhook, event)
        outcome = Delivery(JobState.RUNNING, status=status, error=error)
        if error:
            outcome.retry_in_s = webhook.delay_after(job.attempts)
            outcome.state = fail(self.db, job.id, self.owner, error, delay_s=outcome.retry_in_s)
            if outcome.state != JobState.QUEUED:
                outcome.retry_in_s = None
        else:
            with self.db.write() as session:
                outcome.state = JobState.DONE if complete(session, job.id, self.owner) else ""
        self._record(job, name, event, outcome)
        return outcome

    def _record(self, job: ClaimedJob, name: str, event: dict[str, Any], outcome: Delivery) -> None:
        details: dict[str, Any] = {
            "job_id": job.id,
            "webhook": name,
            "event_id": event.get("event_id", ""),
            "attempt": job.attempts,
            "max_attempts": job.max_attempts,
            "state": outcome.state,
            "http_status": outcome.status,
            "error": outcome.error[:500],
            "retry_in_s": outcome.retry_in_s,
        }
        actions = ["webhook.attempt"]
        if outcome.state == JobState.FAILED:
            actions.append("webhook.exhausted")
            logger.error("webhook job %d to %s exhausted: %s", job.id, name, outcome.error)
        try:
            with self.db.write() as session:
                for action in actions:
                    record_event(
                        session,
                        EventCategory.SYSTEM,
                        action,
                        actor=self.owner[:64],
                        source=WEBHOOK_SOURCE,
                        study_instance_uid=str(event.get("study_instance_uid", "")),
                        outcome="success" if outcome.state == JobState.DONE else "failure",
                        details=details,
                    )
        except Exception:
            logger.exception("webhook job %d: attempt not recorded", job.id)
