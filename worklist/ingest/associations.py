"""Associations and refusals in the store: what the listener records besides instances.

An ``Association`` row is written when an association delivers its first instance and closed
when it ends (that drives study assembly). Refused instances become ``instance.refused``
events, which the radiographers' site-status page lists.
"""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import select, update

from worklist.archive import InvalidUIDError, validate_uid
from worklist.audit import EventCategory, record_event
from worklist.db.engine import Database
from worklist.db.schema import Association, Instance
from worklist.db.types import utcnow

__all__ = ["close_association", "open_association", "record_duplicate", "record_refusal"]

logger = logging.getLogger(__name__)


def open_association(
    db: Database, association_id: str, *, calling_aet: str, called_aet: str, peer: str
) -> None:
    """Record an accepted association (before its first instance is recorded).

    Parameters
    ----------
    db
        The store.
    association_id
        A new UUID4 text.
    calling_aet, called_aet
        The AE titles.
    peer
        ``host:port`` of the sender.
    """
    with db.write() as session:
        session.add(
            Association(
                id=association_id,
                calling_aet=calling_aet[:16],
                called_aet=called_aet[:16],
                peer=peer[:64],
                started_at=utcnow(),
                outcome="open",
            )
        )


def close_association(
    db: Database, association_id: str, outcome: str, at: datetime | None = None
) -> list[int]:
    """Mark an association ended (released or aborted) if it is still open.

    Parameters
    ----------
    db
        The store.
    association_id
        Its row id.
    outcome
        ``released`` or ``aborted``.
    at
        When; default now.

    Returns
    -------
    list of int
        The ids of the studies it delivered instances of (to assemble now).
    """
    with db.write() as session:
        session.execute(
            update(Association)
            .where(Association.id == association_id, Association.ended_at.is_(None))
            .values(ended_at=at or utcnow(), outcome=outcome)
        )
        ids = session.scalars(
            select(Instance.study_id).where(Instance.association_id == association_id).distinct()
        )
        return [int(i) for i in ids]


def record_refusal(
    db: Database,
    *,
    reason: str,
    status: int,
    calling_aet: str = "",
    source: str = "",
    study_uid: str = "",
    sop_uid: str = "",
) -> None:
    """Record an ``instance.refused`` ingest event (for the site-status page).

    Parameters
    ----------
    db
        The store.
    reason
        Why, in words.
    status
        The DIMSE status returned to the sender.
    calling_aet, source
        Who sent it, from where.
    study_uid, sop_uid
        What it was, when known (values that are not valid UIDs are dropped).
    """

    def _safe(uid: str) -> str:
        try:
            return validate_uid(uid)
        except InvalidUIDError:
            return ""

    with db.write() as session:
        record_event(
            session,
            EventCategory.INGEST,
            "instance.refused",
            actor=calling_aet,
            source=source,
            study_instance_uid=_safe(study_uid),
            sop_instance_uid=_safe(sop_uid),
            outcome="failure",
            details={"reason": reason, "status": status, "status_hex": f"0x{status:04X}"},
        )


def record_duplicate(
    db: Database,
    *,
    study_uid: str,
    sop_uid: str,
    policy_outcome: str,
    stored_sha256: str,
    received_sha256: str,
    calling_aet: str = "",
    source: str = "",
) -> None:
    """Log and record an ``instance.duplicate`` event (identical, or the first copy kept).

    Parameters
    ----------
    db
        The store.
    study_uid, sop_uid
        The instance (validated UIDs).
    policy_outcome
        ``identical`` (same bytes: info) or ``kept_first`` (different bytes: warning).
    stored_sha256, received_sha256
        The checksums of the kept copy and of the one received.
    calling_aet, source
        Who sent it, from where.
    """
    identical = policy_outcome == "identical"
    logger.log(
        logging.INFO if identical else logging.WARNING,
        "duplicate SOP instance %s from %s: %s (stored sha256 %s, received %s)",
        sop_uid,
        calling_aet,
        policy_outcome,
        stored_sha256[:12],
        received_sha256[:12],
    )
    with db.write() as session:
        record_event(
            session,
            EventCategory.INGEST,
            "instance.duplicate",
            actor=calling_aet,
            source=source,
            study_instance_uid=study_uid,
            sop_instance_uid=sop_uid,
            outcome="success" if identical else "warning",
            details={
                "policy_outcome": policy_outcome,
                "stored_sha256": stored_sha256,
                "received_sha256": received_sha256,
            },
        )
