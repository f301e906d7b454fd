"""Read queries of the worklist shared by the JSON API and the HTML pages.

The worklist order is: priority class (P1 first), then the study's ordering deadline
(``order_at``, earliest first: its due time, or, for a study that escalation by waiting raised,
the moment it was raised if that came first, so it goes before the studies of its new class
that are not yet overdue; studies without one after those with one, by arrival), then arrival
(``first_received_at``), then id. The query walks the ``ix_studies_worklist`` index
(``read_status, priority, order_at``) one (status, class) range at a time with a ``LIMIT``, and
merges the few rows in Python, so the first page costs a handful of index range scans whatever
the size of the store, and the NULL ordering is the same on SQLite and PostgreSQL.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Select, select
from sqlalchemy.orm import Session

from worklist.audit import EventCategory
from worklist.db.schema import Event, Finding, Instance, Study
from worklist.domain import Priority, ReadStatus, StudyState

__all__ = [
    "OPEN_STATUSES",
    "WorklistFilter",
    "WorklistPage",
    "audit_page",
    "findings_for",
    "instances_of",
    "refused_instances",
    "site_studies",
    "study_by_uid",
    "worklist_page",
]

logger = logging.getLogger(__name__)

OPEN_STATUSES: tuple[ReadStatus, ...] = (ReadStatus.UNREAD, ReadStatus.CLAIMED)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class WorklistFilter:
    """Which studies the worklist shows.

    Attributes
    ----------
    site
        Only studies sent from this site (AE title); ``None`` for all.
    modality
        Only studies containing this modality (``CR``, ``DX``, ``CT``...).
    priorities
        Only these classes; empty for all.
    read_statuses
        Only these reading states; default: unread and claimed (the open worklist).
    state
        Only studies in this processing state; ``None`` for all.
    """

    site: str | None = None
    modality: str | None = None
    priorities: tuple[Priority, ...] = ()
    read_statuses: tuple[ReadStatus, ...] = OPEN_STATUSES
    state: StudyState | None = None


@dataclass
class WorklistPage:
    """One page of the worklist with the findings of its studies."""

    studies: list[Study]
    findings: dict[int, list[Finding]] = field(default_factory=dict)
    page: int = 1
    page_size: int = 50
    has_next: bool = False


def _filtered(query: _Q, flt: WorklistFilter) -> _Q:
    if flt.site:
        query = query.where(Study.site == flt.site)
    if flt.modality:
        query = query.where(Study.modalities.contains(flt.modality.upper(), autoescape=True))
    if flt.state is not None:
        query = query.where(Study.state == str(flt.state))
    return query


_Key = tuple[datetime, datetime, int]
_Q = TypeVar("_Q", bound=Select[*tuple[Any, ...]])


def worklist_page(
    session: Session, flt: WorklistFilter, *, page: int = 1, page_size: int = 50
) -> WorklistPage:
    """Return one page of the worklist in worklist order, with each study's findings.

    Parameters
    ----------
    session
        A read session.
    flt
        The filters.
    page
        1-based page number.
    page_size
        Rows per page.

    Returns
    -------
    WorklistPage
        The page's studies, their findings (one query for the page) and whether a next page
        exists.
    """
    page = max(1, page)
    offset = (page - 1) * page_size
    need = offset + page_size + 1
    classes = sorted(flt.priorities or tuple(Priority), key=lambda p: p.rank)
    statuses = flt.read_statuses or tuple(ReadStatus)
    # Phase 1: only the sort keys, one index range at a time, merged here.
    keys: list[_Key] = []
    for klass in classes:
        for with_target in (True, False):
            remaining = need - len(keys)
            if remaining <= 0:
                break
            batch: list[_Key] = []
            for status in statuses:
                cond: list[ColumnElement[bool]] = [
                    Study.read_status == str(status),
                    Study.priority == str(klass),
                ]
                order: list[Any] = [Study.first_received_at, Study.id]
                if with_target:
                    cond.append(Study.order_at.is_not(None))
                    order.insert(0, Study.order_at)
                else:
                    cond.append(Study.order_at.is_(None))
                query = select(Study.order_at, Study.first_received_at, Study.id).where(*cond)
                query = _filtered(query, flt).order_by(*order).limit(remaining)
                for row in session.execute(query):
                    batch.append((row[0] or _EPOCH, row[1], row[2]))
            batch.sort()
            keys.extend(batch[:remaining])
    # Phase 2: the page's rows and their findings, one query each.
    page_ids = [sid for _, _, sid in keys[offset : offset + page_size]]
    by_id = {s.id: s for s in session.scalars(select(Study).where(Study.id.in_(page_ids)))}
    studies = [by_id[i] for i in page_ids if i in by_id]
    return WorklistPage(
        studies=studies,
        findings=findings_for(session, page_ids),
        page=page,
        page_size=page_size,
        has_next=len(keys) > offset + page_size,
    )


def findings_for(
    session: Session, study_ids: Iterable[int], *, include_shadow: bool = False
) -> dict[int, list[Finding]]:
    """Return the findings of these studies (one query), most probable first.

    Findings of models in shadow mode are left out unless ``include_shadow``.
    """
    ids = list(study_ids)
    out: dict[int, list[Finding]] = {i: [] for i in ids}
    if not ids:
        return out
    query = select(Finding).where(Finding.study_id.in_(ids))
    if not include_shadow:
        query = query.where(Finding.shadow.is_(False))
    for finding in session.scalars(query.order_by(Finding.probability.desc(), Finding.id)):
        out[finding.study_id].append(finding)
    return out


def study_by_uid(session: Session, study_instance_uid: str) -> Study | None:
    """Return the study with this Study Instance UID, or ``None``."""
    return session.scalars(
        select(Study).where(Study.study_instance_uid == study_instance_uid)
    ).first()


def instances_of(session: Session, study_id: int) -> list[Instance]:
    """Return a study's instances in arrival order."""
    return list(
        session.scalars(select(Instance).where(Instance.study_id == study_id).order_by(Instance.id))
    )


def site_studies(session: Session, site: str | None, *, limit: int = 200) -> list[Study]:
    """Return the studies most recently received from a site (all sites when ``site`` is None)."""
    query = select(Study)
    if site is not None:
        query = query.where(Study.site == site)
    return list(session.scalars(query.order_by(Study.last_received_at.desc()).limit(limit)))


def refused_instances(session: Session, site: str | None, *, limit: int = 100) -> list[Event]:
    """Return the latest ``instance.refused`` events, of one site (the calling AE title) or all.

    The gateway records the calling AE title as the event's actor.
    """
    query = select(Event).where(Event.action == "instance.refused")
    if site is not None:
        query = query.where(Event.actor == site)
    return list(session.scalars(query.order_by(Event.id.desc()).limit(limit)))


def audit_page(
    session: Session, *, page: int = 1, page_size: int = 100, actions: Sequence[str] = ()
) -> tuple[list[Event], bool]:
    """Return one page of the audit log, newest first, and whether a next page exists."""
    page = max(1, page)
    query = select(Event).where(Event.category == str(EventCategory.AUDIT))
    if actions:
        query = query.where(Event.action.in_(list(actions)))
    query = query.order_by(Event.id.desc()).offset((page - 1) * page_size).limit(page_size + 1)
    rows = list(session.scalars(query))
    return rows[:page_size], len(rows) > page_size
