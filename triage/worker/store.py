"""The worker's reads and writes of the store.

Results are written in the same transaction as ``worklist.jobs.complete``: if the worker no
longer holds the job's lease, nothing is written, so a study is triaged exactly once however
often its job is retried. The same transaction queues the study's ``publish`` job (its SR and key
images, then its exports and notifications: :mod:`triage.worker.publish`), so that a worker
killed just after the commit cannot leave a triaged study unpublished.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from triage.policy import AIFinding, Decision, Policy, StudyFacts, decide
from triage.routing import ImageRef
from triage.worker.inference import FindingRecord, StudyWork
from worklist.audit import EventCategory, record_event
from worklist.db.engine import Database
from worklist.db.schema import Finding, Instance, Series, Study
from worklist.domain import AIStatus, JobKind, Priority, ReadStatus, StudyState
from worklist.jobs import complete, enqueue

__all__ = [
    "LeaseLostError",
    "apply_decision",
    "commit_triage",
    "enqueue_publish",
    "facts_of",
    "leave_on_worklist",
    "load_work",
    "reprioritise",
]

logger = logging.getLogger(__name__)


class LeaseLostError(Exception):
    """The worker no longer holds the job: roll back (another worker has it)."""


def load_work(session: Session, study_id: int) -> StudyWork | None:
    """Read a study's images (attributes and archive paths), or ``None`` if it is gone."""
    study = session.get(Study, study_id)
    if study is None:
        return None
    rows = session.execute(
        select(Instance, Series.modality, Series.body_part)
        .join(Series, Instance.series_id == Series.id)
        .where(Instance.study_id == study_id)
        .order_by(Instance.id)
    ).all()
    images = [
        ImageRef(
            sop_instance_uid=inst.sop_instance_uid,
            sop_class_uid=inst.sop_class_uid,
            modality=modality or "",
            body_part=body_part or "",
            view_position=inst.view_position or "",
            path=inst.path,
            instance_number=inst.instance_number or "",
        )
        for inst, modality, body_part in rows
    ]
    return StudyWork(study_id=study.id, study_uid=study.study_instance_uid, images=images)


def _api_priority(study: Study) -> Priority | None:
    if study.clinical_priority_source == "api":
        try:
            return Priority(study.clinical_priority)
        except ValueError:
            logger.warning("study %s: invalid API priority %r", study.id, study.clinical_priority)
    return None


def facts_of(
    study: Study,
    findings: Sequence[AIFinding],
    *,
    ai_available: bool,
    ai_reason: str = "",
) -> StudyFacts:
    """Build the policy's view of a stored study."""
    return StudyFacts(
        arrived_at=study.first_received_at,
        referral_priority=study.referral_priority or "",
        site=study.site or "",
        api_priority=_api_priority(study),
        findings=tuple(findings),
        ai_available=ai_available,
        ai_reason=ai_reason,
    )


def _ai_finding(f: FindingRecord | Finding) -> AIFinding:
    try:
        category = Priority(f.category)
    except ValueError:
        category = Priority.P3
    return AIFinding(
        label=f.label,
        probability=f.probability,
        threshold=f.threshold,
        crossed=f.crossed,
        category=category,
        model_name=f.model_name,
        model_version=f.model_version,
        shadow=f.shadow,
        sop_instance_uid=f.sop_instance_uid,
    )


def apply_decision(study: Study, decision: Decision) -> bool:
    """Write a decision onto a study row; return whether its class, due time or order changed."""
    before = (study.priority, study.due_at, study.order_at, study.priority_explanation)
    study.priority = str(decision.priority)
    study.priority_explanation = list(decision.explanation)
    study.due_at = decision.due_at
    study.order_at = decision.order_at
    if decision.clinical.source != "api":
        study.clinical_priority = str(decision.clinical.priority)
        study.clinical_priority_source = decision.clinical.source
    changed = before[:3] != (study.priority, study.due_at, study.order_at)
    if changed or before[3] != study.priority_explanation:
        study.version = (study.version or 0) + 1
    return changed


def _ai_outcome(work: StudyWork) -> tuple[bool, str]:
    if not work.applicable:
        return False, "no applicable model: no enabled model applies to the images of this study"
    if work.failures:
        return False, "; ".join(work.failures[r] for r in sorted(work.failures))
    return True, ""


def _finding_row(record: FindingRecord, study_id: int, job_id: int, now: datetime) -> Finding:
    values: dict[str, Any] = dict(record.__dict__)
    return Finding(study_id=study_id, job_id=job_id, created_at=now, **values)


def enqueue_publish(session: Session, study: Study, triage_job_id: int | None) -> None:
    """Queue the publishing of a study just triaged, in the caller's transaction.

    Parameters
    ----------
    session
        The write session that commits the triage.
    study
        The study (its priority orders the publish jobs: P1 first).
    triage_job_id
        The triage job whose results are published (``None``: the study was left on the
        worklist without AI).
    """
    rank = Priority.rank_of(study.priority)
    enqueue(
        session,
        JobKind.PUBLISH,
        study_id=study.id,
        payload={"triage_job": triage_job_id},
        priority=rank,
        max_attempts=5,
    )


def commit_triage(
    db: Database, owner: str, job_id: int, work: StudyWork, policy: Policy, now: datetime
) -> bool:
    """Write a study's findings and priority and complete its job, in one transaction.

    Parameters
    ----------
    db
        The store.
    owner
        This worker's lease owner name.
    job_id
        The triage job.
    work
        The study with its findings and failures.
    policy
        The priority policy.
    now
        The time of triage.

    Returns
    -------
    bool
        ``False`` if the lease was lost (nothing written).
    """
    available, reason = _ai_outcome(work)
    try:
        with db.write() as session:
            if not complete(session, job_id, owner):
                raise LeaseLostError
            study = session.get(Study, work.study_id, with_for_update=True)
            if study is None:
                return True
            old = session.scalars(select(Finding.id).where(Finding.study_id == study.id)).all()
            if old:
                session.execute(delete(Finding).where(Finding.id.in_(old)))
            replaced = len(old)
            for record in work.findings:
                session.add(_finding_row(record, study.id, job_id, now))
            facts = facts_of(
                study,
                [_ai_finding(r) for r in work.findings],
                ai_available=available,
                ai_reason=reason,
            )
            decision = decide(policy, facts, now)
            apply_decision(study, decision)
            # An instance that arrived meanwhile reopened the study: the assembler completes it
            # again and queues a new triage job, so leave it receiving.
            if study.state != StudyState.RECEIVING:
                study.state = StudyState.TRIAGED
            study.triaged_at = now
            study.ai_status = AIStatus.DONE if available else AIStatus.NOT_AVAILABLE
            study.ai_reason = reason
            details: dict[str, Any] = {
                "job_id": job_id,
                "priority": str(decision.priority),
                "ai_status": study.ai_status,
                "findings": len(work.findings),
            }
            if replaced:
                details["replaced_findings"] = replaced
            record_event(
                session,
                EventCategory.SYSTEM,
                "study.triaged",
                actor=owner[:64],
                study_instance_uid=study.study_instance_uid,
                details=details,
            )
            failures = {**work.failures, **work.shadow_failures}
            if failures or not available:
                record_event(
                    session,
                    EventCategory.SYSTEM,
                    "ai.not_available" if not available else "ai.shadow_failed",
                    actor=owner[:64],
                    study_instance_uid=study.study_instance_uid,
                    outcome="failure",
                    details={"job_id": job_id, "reason": reason, "models": failures},
                )
            enqueue_publish(session, study, job_id)
    except LeaseLostError:
        logger.warning("job %d: lease lost before commit; results discarded", job_id)
        return False
    return True


def leave_on_worklist(
    db: Database, study_id: int | None, reason: str, policy: Policy, now: datetime, actor: str
) -> None:
    """Put a study whose triage job gave up on the worklist at its clinical priority.

    The study is marked ``ai_status = not_available`` with ``reason``; a study that is already
    triaged is left as it is. A ``system`` event records the failure either way.
    """
    if study_id is None:
        return
    with db.write() as session:
        study = session.get(Study, study_id, with_for_update=True)
        if study is None:
            return
        if study.state != StudyState.TRIAGED:
            decision = decide(
                policy, facts_of(study, [], ai_available=False, ai_reason=reason), now
            )
            apply_decision(study, decision)
            study.state = StudyState.TRIAGED
            study.triaged_at = now
            study.ai_status = AIStatus.NOT_AVAILABLE
            study.ai_reason = reason
        record_event(
            session,
            EventCategory.SYSTEM,
            "triage.gave_up",
            actor=actor[:64],
            study_instance_uid=study.study_instance_uid,
            outcome="failure",
            details={"reason": reason},
        )
        enqueue_publish(session, study, None)  # exports of "AI not available" studies too


def stored_findings(session: Session, study_ids: Sequence[int]) -> dict[int, list[AIFinding]]:
    """Return the crossed, non-shadow findings of each study (what the policy counts)."""
    out: dict[int, list[AIFinding]] = {sid: [] for sid in study_ids}
    if not study_ids:
        return out
    rows = session.scalars(
        select(Finding).where(
            Finding.study_id.in_(study_ids),
            Finding.crossed.is_(True),
            Finding.shadow.is_(False),
        )
    )
    for row in rows:
        out[row.study_id].append(_ai_finding(row))
    return out


def reprioritise(
    db: Database, owner: str, job_id: int, study_id: int | None, policy: Policy, now: datetime
) -> bool:
    """Recompute a study's priority from its stored findings (clinical priority changed).

    A study not yet triaged is left for its triage job, which reads the clinical priority when
    it commits. Returns ``False`` if the lease was lost.
    """
    try:
        with db.write() as session:
            if not complete(session, job_id, owner):
                raise LeaseLostError
            study = session.get(Study, study_id, with_for_update=True) if study_id else None
            if study is None or study.state != StudyState.TRIAGED:
                return True
            findings = stored_findings(session, [study.id])[study.id]
            facts = facts_of(
                study,
                findings,
                ai_available=study.ai_status == AIStatus.DONE,
                ai_reason=study.ai_reason,
            )
            decision = decide(policy, facts, now)
            apply_decision(study, decision)
            record_event(
                session,
                EventCategory.SYSTEM,
                "study.reprioritised",
                actor=owner[:64],
                study_instance_uid=study.study_instance_uid,
                details={
                    "job_id": job_id,
                    "priority": str(decision.priority),
                    "clinical_priority": str(decision.clinical.priority),
                    "source": decision.clinical.source,
                },
            )
    except LeaseLostError:
        logger.warning("job %d: lease lost before commit; reprioritisation discarded", job_id)
        return False
    return True


UNREPORTED = (ReadStatus.UNREAD, ReadStatus.CLAIMED)
