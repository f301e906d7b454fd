"""The periodic sweep: re-apply the policy so waiting studies escalate.

Only unreported, triaged studies that have waited at least the shortest escalation delay of the
policy are candidates, except P1 studies already raised into P1 (their ``order_at`` is earlier
than their ``due_at``), which waiting cannot change further. A cheap check on their columns
alone finds those whose escalation by waiting (the class, or ``order_at``: the moment waiting
raised it) differs from what is stored; the policy is re-evaluated in full for those, and the
rows whose priority, due time or order changed are written (with a ``system`` event). A large
worklist of studies already at their cap costs one narrow query per sweep.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import or_, select

from triage.policy import Policy, decide, escalate, escalated_at, ordering_deadline
from triage.worker.store import UNREPORTED, apply_decision, facts_of, stored_findings
from worklist.audit import EventCategory, record_event
from worklist.db.engine import Database
from worklist.db.schema import Study
from worklist.domain import AIStatus, Priority, StudyState

__all__ = ["min_escalation_delay", "sweep"]

logger = logging.getLogger(__name__)


def min_escalation_delay(policy: Policy) -> timedelta | None:
    """Return the shortest wait after which any class escalates, ``None`` if none does."""
    delays = [policy.target(p) * rule.after for p, rule in policy.escalation.items()]
    return min(delays) if delays else None


def _base_by_target(policy: Policy) -> dict[timedelta, Priority]:
    targets = [policy.target(p) for p in Priority]
    return {policy.target(p): p for p in Priority if targets.count(policy.target(p)) == 1}


def _may_change(
    policy: Policy,
    bases: dict[timedelta, Priority],
    row: tuple[str, datetime, datetime | None, datetime | None],
    now: datetime,
) -> bool:
    """Say, from columns alone, whether waiting could change this study's priority or order now.

    ``row`` is ``(priority, first_received_at, due_at, order_at)``. ``due_at -
    first_received_at`` is the target of the study's class before waiting, which gives that
    class; if waiting from it yields the stored priority and ``order_at``, nothing changes (a
    store migrated from before ``order_at`` existed holds ``order_at = due_at`` on rows already
    raised: they are re-evaluated once). Anything unexpected (no due time, a target the policy
    no longer has) is re-evaluated in full.
    """
    priority, arrived, due, order = row
    base = bases.get(due - arrived) if due is not None else None
    if base is None or due is None:
        return True
    escalated, _, _ = escalate(policy, base, arrived, now)
    expected = ordering_deadline(due, escalated_at(policy, base, arrived, now))
    return str(escalated) != priority or order != expected


def sweep(db: Database, policy: Policy, now: datetime, *, chunk: int = 500, actor: str = "") -> int:
    """Re-apply the policy to waiting studies; return how many changed priority or due time.

    Parameters
    ----------
    db
        The store.
    policy
        The priority policy.
    now
        The time of evaluation.
    chunk
        Studies per write transaction (keeps SQLite's write lock short).
    actor
        Named in the events.

    Returns
    -------
    int
        Studies whose priority or due time changed.
    """
    delay = min_escalation_delay(policy)
    if delay is None:
        return 0
    with db.read() as session:
        rows = session.execute(
            select(Study.id, Study.priority, Study.first_received_at, Study.due_at, Study.order_at)
            .where(
                Study.state == StudyState.TRIAGED,
                Study.read_status.in_([str(s) for s in UNREPORTED]),
                Study.first_received_at <= now - delay,
                # A P1 study already raised into P1 (order_at before due_at) cannot change.
                or_(
                    Study.priority != str(Priority.P1),
                    Study.order_at.is_(None),
                    Study.order_at == Study.due_at,
                ),
            )
            .order_by(Study.id)
        ).all()
    bases = _base_by_target(policy)
    ids = [
        sid
        for sid, prio, arrived, due, order in rows
        if _may_change(policy, bases, (prio, arrived, due, order), now)
    ]
    changed = 0
    for start in range(0, len(ids), chunk):
        part = ids[start : start + chunk]
        with db.write() as session:
            findings = stored_findings(session, part)
            studies = session.scalars(select(Study).where(Study.id.in_(part))).all()
            for study in studies:
                if study.state != StudyState.TRIAGED or study.read_status not in UNREPORTED:
                    continue
                facts = facts_of(
                    study,
                    findings[study.id],
                    ai_available=study.ai_status == AIStatus.DONE,
                    ai_reason=study.ai_reason,
                )
                old = study.priority
                if apply_decision(study, decide(policy, facts, now)):
                    changed += 1
                    record_event(
                        session,
                        EventCategory.SYSTEM,
                        "study.escalated",
                        actor=actor[:64],
                        study_instance_uid=study.study_instance_uid,
                        details={"from": old, "to": study.priority},
                    )
    if changed:
        logger.info("sweep: %d of %d waiting studies changed priority", changed, len(ids))
    return changed
