"""Webhook jobs in the store: queue one notification per event and webhook, never twice.

The sending (HTTP, signature, retry schedule) is :mod:`triage.webhooks`; this module only
writes rows, like :mod:`worklist.exports`. An exhausted webhook job is listed and re-queued
with the exhausted exports (its ``payload["destination"]`` is the webhook's name).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from worklist.db.schema import Job
from worklist.db.types import utcnow
from worklist.domain import JobKind, JobState

__all__ = ["WEBHOOK_SOURCE", "enqueue_webhook"]

WEBHOOK_SOURCE = "webhooks"
"""The ``source`` of the webhook events."""


def enqueue_webhook(
    session: Session,
    study_id: int,
    webhook: str,
    event: dict[str, Any],
    *,
    priority: int,
    max_attempts: int,
) -> Job:
    """Queue the delivery of one event to one webhook, unless it was queued already.

    Parameters
    ----------
    session
        An open write session; the caller commits.
    study_id
        The study the event is about.
    webhook
        The webhook's name (``payload["destination"]``).
    event
        The JSON body; its ``event_id`` makes the job unique per webhook (in any state).
    priority
        Lower is claimed first: the study's priority rank.
    max_attempts
        Attempts before the delivery is exhausted.

    Returns
    -------
    Job
        The new job, or the one that already carries this event to this webhook.
    """
    rows = session.scalars(
        select(Job).where(Job.kind == JobKind.WEBHOOK, Job.study_id == study_id)
    ).all()
    for job in rows:
        payload = job.payload or {}
        same = payload.get("event", {}).get("event_id") == event.get("event_id")
        if payload.get("destination") == webhook and same:
            return job
    job = Job(
        kind=str(JobKind.WEBHOOK),
        study_id=study_id,
        payload={"destination": webhook, "event": event},
        priority=priority,
        max_attempts=max_attempts,
        state=JobState.QUEUED,
        available_at=utcnow(),
    )
    session.add(job)
    session.flush()
    return job
