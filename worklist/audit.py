"""The event and audit log: who did what, when, from where."""

from __future__ import annotations

import logging
from enum import StrEnum
from typing import Any

from sqlalchemy.orm import Session

from worklist.db.schema import Event

__all__ = ["EventCategory", "record_event"]

logger = logging.getLogger(__name__)


class EventCategory(StrEnum):
    """Kinds of events."""

    AUDIT = "audit"  # a person viewed or changed patient data, logged in, failed to
    INGEST = "ingest"  # the gateway stored, refused or replaced an instance
    SYSTEM = "system"  # workers, models, jobs


def record_event(
    session: Session,
    category: EventCategory,
    action: str,
    *,
    actor: str = "",
    source: str = "",
    study_instance_uid: str = "",
    sop_instance_uid: str = "",
    outcome: str = "success",
    details: dict[str, Any] | None = None,
) -> Event:
    """Add one event in the caller's transaction.

    Parameters
    ----------
    session
        An open write session.
    category
        Audit, ingest or system.
    action
        What happened, e.g. ``"study.view"``, ``"login.failed"``, ``"instance.refused"``.
    actor
        Username or AE title.
    source
        IP address or DICOM peer.
    study_instance_uid, sop_instance_uid
        What it concerns.
    outcome
        ``success`` or ``failure``.
    details
        Extra JSON-serialisable facts (a reason, a duplicate's checksum).

    Returns
    -------
    Event
        The new row (flushed by the caller's commit).
    """
    event = Event(
        category=str(category),
        action=action,
        actor=actor[:64],
        source=source[:64],
        study_instance_uid=study_instance_uid,
        sop_instance_uid=sop_instance_uid,
        outcome=outcome,
        details=details or {},
    )
    session.add(event)
    return event
