"""The job queue in the store: enqueue, claim under a lease, heartbeat, finish.

Parts never call each other across processes; they write job rows and claim them (see
``../shared/DESIGN.md``). On PostgreSQL a claim is ``SELECT ... FOR UPDATE SKIP LOCKED``; on
SQLite the write transaction is ``BEGIN IMMEDIATE`` (see :mod:`worklist.db.engine`), which
serialises claimers, so a job is never handed to two workers at once.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, or_, select, update
from sqlalchemy.orm import Session

from worklist.db.engine import Database
from worklist.db.schema import Job
from worklist.db.types import utcnow
from worklist.domain import JobKind, JobState

__all__ = [
    "Claim",
    "ClaimedJob",
    "any_claimable",
    "claim",
    "complete",
    "enqueue",
    "fail",
    "heartbeat",
]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ClaimedJob:
    """A job held by one worker under a lease."""

    id: int
    kind: str
    study_id: int | None
    payload: dict[str, Any]
    attempts: int
    max_attempts: int


@dataclass(frozen=True)
class Claim:
    """What one claim returned.

    ``jobs`` are now held by the caller. ``exhausted`` are jobs whose lease expired on their last
    attempt (their worker died every time): they are marked failed, and the caller must still
    put their studies on the worklist (no study is ever dropped).
    """

    jobs: list[ClaimedJob] = field(default_factory=list)
    exhausted: list[ClaimedJob] = field(default_factory=list)


def _view(job: Job) -> ClaimedJob:
    return ClaimedJob(
        id=job.id,
        kind=job.kind,
        study_id=job.study_id,
        payload=dict(job.payload or {}),
        attempts=job.attempts,
        max_attempts=job.max_attempts,
    )


def enqueue(
    session: Session,
    kind: JobKind | str,
    *,
    study_id: int | None = None,
    payload: dict[str, Any] | None = None,
    priority: int = 3,
    max_attempts: int = 3,
) -> Job:
    """Add a job, unless the same kind of job for the same study is already waiting.

    Parameters
    ----------
    session
        An open write session; the caller commits.
    kind
        What the job asks for.
    study_id
        The study it concerns, if any.
    payload
        Extra arguments for the worker (JSON-serialisable).
    priority
        Lower runs first.
    max_attempts
        Attempts before the job is marked failed.

    Returns
    -------
    Job
        The new job, or the one already waiting.
    """
    if study_id is not None:
        waiting = session.scalars(
            select(Job).where(
                Job.kind == str(kind), Job.study_id == study_id, Job.state == JobState.QUEUED
            )
        ).first()
        if waiting is not None:
            waiting.priority = min(waiting.priority, priority)
            return waiting
    job = Job(
        kind=str(kind),
        study_id=study_id,
        payload=payload or {},
        priority=priority,
        max_attempts=max_attempts,
        state=JobState.QUEUED,
        available_at=utcnow(),
    )
    session.add(job)
    session.flush()
    return job


def _claimable(now: datetime) -> ColumnElement[bool]:
    return or_(
        and_(Job.state == JobState.QUEUED, Job.available_at <= now),
        and_(Job.state == JobState.RUNNING, Job.lease_expires_at < now),
    )


def any_claimable(db: Database, kinds: list[str]) -> bool:
    """Say whether a job of ``kinds`` could be claimed now, in a read transaction.

    A claim is a write transaction (on SQLite it takes the write lock that ingest needs); a
    worker that polls for a kind of job that is usually absent asks this first.

    Parameters
    ----------
    db
        The store.
    kinds
        The kinds of job.

    Returns
    -------
    bool
        True if at least one is queued and available, or running with an expired lease.
    """
    query = select(Job.id).where(_claimable(utcnow()), Job.kind.in_(kinds)).limit(1)
    with db.read() as session:
        return session.scalar(query) is not None


def claim(
    db: Database,
    owner: str,
    *,
    kinds: list[str] | None = None,
    limit: int = 1,
    lease_s: float = 60.0,
) -> Claim:
    """Claim up to ``limit`` jobs that are queued, or running with an expired lease.

    Parameters
    ----------
    db
        The store.
    owner
        The claiming worker's identity (host, pid, random suffix).
    kinds
        Only these kinds; ``None`` for any.
    limit
        At most this many jobs.
    lease_s
        How long the claim holds before another worker may take the job.

    Returns
    -------
    Claim
        The claimed jobs and the ones that ran out of attempts.
    """
    now = utcnow()
    query = select(Job).where(_claimable(now))
    if kinds:
        query = query.where(Job.kind.in_(kinds))
    query = query.order_by(Job.priority, Job.id).limit(limit).with_for_update(skip_locked=True)
    out = Claim()
    with db.write() as session:
        for job in session.scalars(query):
            if job.state == JobState.RUNNING:
                logger.warning(
                    "job %d: lease of %s expired (attempt %d of %d)",
                    job.id,
                    job.lease_owner,
                    job.attempts,
                    job.max_attempts,
                )
                if job.attempts >= job.max_attempts:
                    job.state = JobState.FAILED
                    job.last_error = (
                        f"lease expired on attempt {job.attempts} of {job.max_attempts} "
                        f"(worker {job.lease_owner} stopped)"
                    )
                    job.finished_at = now
                    job.lease_owner = None
                    out.exhausted.append(_view(job))
                    continue
            job.state = JobState.RUNNING
            job.attempts += 1
            job.lease_owner = owner
            job.lease_expires_at = now + timedelta(seconds=lease_s)
            job.started_at = now
            out.jobs.append(_view(job))
    return out


def heartbeat(db: Database, job_ids: list[int], owner: str, lease_s: float = 60.0) -> list[int]:
    """Extend the lease on jobs still held by ``owner``.

    Returns
    -------
    list of int
        The ids whose lease was extended; a missing id means the lease was lost.
    """
    if not job_ids:
        return []
    with db.write() as session:
        held = list(
            session.scalars(
                select(Job.id).where(
                    Job.id.in_(job_ids), Job.lease_owner == owner, Job.state == JobState.RUNNING
                )
            )
        )
        if held:
            session.execute(
                update(Job)
                .where(Job.id.in_(held))
                .values(lease_expires_at=utcnow() + timedelta(seconds=lease_s))
            )
    return held


def complete(session: Session, job_id: int, owner: str) -> bool:
    """Mark a held job done in the caller's transaction (so results and completion commit together).

    Returns
    -------
    bool
        False if ``owner`` no longer holds the job (the caller should roll back).
    """
    job = session.get(Job, job_id, with_for_update=True)
    if job is None or job.lease_owner != owner or job.state != JobState.RUNNING:
        return False
    job.state = JobState.DONE
    job.finished_at = utcnow()
    job.lease_owner = None
    job.lease_expires_at = None
    return True


def fail(
    db: Database,
    job_id: int,
    owner: str,
    error: str,
    *,
    retry: bool = True,
    backoff_s: float = 2.0,
    delay_s: float | None = None,
) -> str:
    """Record a failed attempt: requeue it with a backoff, or fail it for good.

    The job waits ``backoff_s`` times its attempts before the next one, or exactly ``delay_s``
    when given (the exports compute their own exponential schedule).

    Returns
    -------
    str
        The job's new state (``queued`` or ``failed``), or ``""`` if ``owner`` lost the lease.
    """
    with db.write() as session:
        job = session.get(Job, job_id)
        if job is None or job.lease_owner != owner:
            return ""
        job.last_error = error[:4000]
        job.lease_owner = None
        job.lease_expires_at = None
        if retry and job.attempts < job.max_attempts:
            job.state = JobState.QUEUED
            wait_s = backoff_s * job.attempts if delay_s is None else delay_s
            job.available_at = utcnow() + timedelta(seconds=wait_s)
        else:
            job.state = JobState.FAILED
            job.finished_at = utcnow()
        return job.state
