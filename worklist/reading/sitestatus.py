"""What a radiographer's site status shows: arrivals, processing state, refusals."""

from __future__ import annotations

import logging
from typing import Any

from worklist.db.engine import Database
from worklist.reading import queries

__all__ = ["site_status"]

logger = logging.getLogger(__name__)


def site_status(db: Database, site: str | None, *, limit: int = 200) -> dict[str, Any]:
    """Return the studies of a site (``None``: every site) and its refused instances.

    Only processing facts are shown (no findings, no patient name): what arrived, how many
    instances, and whether it is receiving, queued or triaged.
    """
    with db.read() as session:
        studies = [
            {
                "study_instance_uid": s.study_instance_uid,
                "accession_number": s.accession_number,
                "study_date": s.study_date,
                "study_description": s.study_description,
                "modalities": [m for m in s.modalities.split("\\") if m],
                "site": s.site,
                "instance_count": s.instance_count,
                "state": s.state,
                "ai_status": s.ai_status,
                "first_received_at": s.first_received_at.isoformat(),
                "last_received_at": s.last_received_at.isoformat(),
                "triaged_at": s.triaged_at.isoformat() if s.triaged_at else None,
            }
            for s in queries.site_studies(session, site, limit=limit)
        ]
        refused = [
            {
                "at": e.at.isoformat(),
                "site": e.actor,
                "source": e.source,
                "study_instance_uid": e.study_instance_uid,
                "sop_instance_uid": e.sop_instance_uid,
                "reason": str((e.details or {}).get("reason", "")),
            }
            for e in queries.refused_instances(session, site)
        ]
    return {"site": site, "studies": studies, "refused": refused}
