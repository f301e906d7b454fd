"""What a reader does to a study: claim, release, report, feedback, set the clinical priority.

Every action is written to the audit log in the same transaction as the change. A claim is a
conditional ``UPDATE ... WHERE read_status = 'unread' AND claimed_by IS NULL`` whose row count
decides who won, so two readers claiming at once (in any number of processes) never both win.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from models.errors import Conflict, Forbidden, Invalid, NotFound, TriageError
from worklist.accounts.users import UserView
from worklist.audit import EventCategory, record_event
from worklist.db.schema import Feedback, Finding, Study
from worklist.db.types import utcnow
from worklist.domain import JobKind, Priority, ReadStatus, Role
from worklist.jobs import enqueue
from worklist.reading.queries import study_by_uid

__all__ = [
    "ActionError",
    "Actor",
    "ConflictError",
    "InvalidActionError",
    "NotAllowedError",
    "StudyNotFoundError",
    "audit",
    "claim",
    "feedback",
    "release",
    "report",
    "set_clinical_priority",
]

logger = logging.getLogger(__name__)

FEEDBACK_KINDS = ("agree", "disagree", "missed")


class ActionError(TriageError):
    """A reading action could not be done (the base; it carries no meaning)."""


class StudyNotFoundError(ActionError, NotFound):
    """No study has this Study Instance UID."""


class ConflictError(ActionError, Conflict):
    """The study is not in a state that allows the action (someone else holds it)."""


class NotAllowedError(ActionError, Forbidden):
    """The user may not do this to this study."""


class InvalidActionError(ActionError, Invalid):
    """What the action was given is not valid (an unknown feedback kind or priority, say)."""


@dataclass(frozen=True)
class Actor:
    """Who acts, and from where (client IP)."""

    user: UserView
    source: str


def audit(
    session: Session,
    actor: Actor,
    action: str,
    *,
    study_instance_uid: str = "",
    outcome: str = "success",
    details: dict[str, object] | None = None,
) -> None:
    """Write one audit event (who, what, when, from where) in the caller's transaction."""
    record_event(
        session,
        EventCategory.AUDIT,
        action,
        actor=actor.user.username,
        source=actor.source,
        study_instance_uid=study_instance_uid,
        outcome=outcome,
        details=dict(details or {}),
    )


def _study(session: Session, uid: str) -> Study:
    study = study_by_uid(session, uid)
    if study is None:
        raise StudyNotFoundError(f"no study {uid}")
    return study


def claim(session: Session, actor: Actor, uid: str) -> Study:
    """Claim an unread study for ``actor``; exactly one of concurrent claimers wins.

    Raises
    ------
    StudyNotFoundError
        No such study.
    ConflictError
        Someone else holds it, or it is reported (claiming your own claim again succeeds).
    """
    study = _study(session, uid)
    now = utcnow()
    result = session.execute(
        update(Study)
        .where(
            Study.id == study.id,
            Study.read_status == str(ReadStatus.UNREAD),
            Study.claimed_by.is_(None),
        )
        .values(
            read_status=str(ReadStatus.CLAIMED),
            claimed_by=actor.user.username,
            claimed_at=now,
            version=Study.version + 1,
        )
        .execution_options(synchronize_session=False)
    )
    session.refresh(study)
    won = getattr(result, "rowcount", 0) == 1
    if not won and not (
        study.read_status == ReadStatus.CLAIMED and study.claimed_by == actor.user.username
    ):
        holder = study.claimed_by or study.reported_by or "someone"
        raise ConflictError(f"study is {study.read_status} by {holder}")
    audit(session, actor, "study.claim", study_instance_uid=uid)
    return study


def release(session: Session, actor: Actor, uid: str) -> Study:
    """Give a claimed study back to the worklist (the claimer, or an admin).

    Raises
    ------
    StudyNotFoundError, ConflictError, NotAllowedError
        No such study; it is not claimed; someone else holds it and ``actor`` is no admin.
    """
    study = _study(session, uid)
    if study.read_status != ReadStatus.CLAIMED:
        raise ConflictError(f"study is {study.read_status}, not claimed")
    if study.claimed_by != actor.user.username and actor.user.role != Role.ADMIN:
        raise NotAllowedError(f"study is claimed by {study.claimed_by}")
    result = session.execute(
        update(Study)
        .where(Study.id == study.id, Study.read_status == str(ReadStatus.CLAIMED))
        .values(
            read_status=str(ReadStatus.UNREAD),
            claimed_by=None,
            claimed_at=None,
            version=Study.version + 1,
        )
        .execution_options(synchronize_session=False)
    )
    if getattr(result, "rowcount", 0) != 1:
        raise ConflictError("study changed meanwhile")
    session.refresh(study)
    audit(session, actor, "study.release", study_instance_uid=uid)
    return study


def report(session: Session, actor: Actor, uid: str) -> Study:
    """Mark a study reported; only its claimer may.

    Raises
    ------
    StudyNotFoundError, ConflictError, NotAllowedError
        No such study; it is not claimed; someone else holds it.
    """
    study = _study(session, uid)
    if study.read_status != ReadStatus.CLAIMED:
        raise ConflictError(f"study is {study.read_status}; claim it first")
    if study.claimed_by != actor.user.username:
        raise NotAllowedError(f"study is claimed by {study.claimed_by}")
    result = session.execute(
        update(Study)
        .where(
            Study.id == study.id,
            Study.read_status == str(ReadStatus.CLAIMED),
            Study.claimed_by == actor.user.username,
        )
        .values(
            read_status=str(ReadStatus.REPORTED),
            reported_by=actor.user.username,
            reported_at=utcnow(),
            version=Study.version + 1,
        )
        .execution_options(synchronize_session=False)
    )
    if getattr(result, "rowcount", 0) != 1:
        raise ConflictError("study changed meanwhile")
    session.refresh(study)
    audit(session, actor, "study.report", study_instance_uid=uid)
    return study


def feedback(
    session: Session,
    actor: Actor,
    uid: str,
    kind: str,
    *,
    finding_id: int | None = None,
    label: str = "",
    comment: str = "",
) -> int:
    """Store a reader's word on the AI: ``agree``, ``disagree`` or a ``missed`` finding.

    Returns
    -------
    int
        The feedback row's id.

    Raises
    ------
    StudyNotFoundError, InvalidActionError
        No such study; unknown kind, a finding of another study, or ``missed`` without a label.
    """
    study = _study(session, uid)
    if kind not in FEEDBACK_KINDS:
        raise InvalidActionError(f"feedback is one of {', '.join(FEEDBACK_KINDS)}, not {kind!r}")
    if kind == "missed" and not label.strip():
        raise InvalidActionError("a missed finding needs a label")
    if finding_id is not None:
        owner = session.scalar(select(Finding.study_id).where(Finding.id == finding_id))
        if owner != study.id:
            raise InvalidActionError(f"finding {finding_id} is not a finding of this study")
    row = Feedback(
        study_id=study.id,
        finding_id=finding_id,
        username=actor.user.username,
        kind=kind,
        label=label.strip()[:64],
        comment=comment[:4000],
    )
    session.add(row)
    session.flush()
    audit(
        session,
        actor,
        "study.feedback",
        study_instance_uid=uid,
        details={"kind": kind, "label": row.label, "finding_id": finding_id},
    )
    return row.id


def set_clinical_priority(
    session: Session, actor: Actor, uid: str, priority: Priority | str
) -> Study:
    """Set the clinical priority (source ``api``) and ask a worker to recompute the priority.

    The web app never computes the AI priority itself: it enqueues a ``reprioritise`` job.

    Raises
    ------
    StudyNotFoundError, InvalidActionError
        No such study; not a priority class.
    """
    try:
        klass = Priority(priority)
    except ValueError as exc:
        raise InvalidActionError(f"priority is P1, P2 or P3, not {priority!r}") from exc
    study = _study(session, uid)
    before = study.clinical_priority
    study.clinical_priority = str(klass)
    study.clinical_priority_source = "api"
    study.version += 1
    enqueue(session, JobKind.REPRIORITISE, study_id=study.id, priority=klass.rank)
    audit(
        session,
        actor,
        "study.clinical_priority",
        study_instance_uid=uid,
        details={"from": before, "to": str(klass)},
    )
    return study
