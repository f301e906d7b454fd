"""Turn store rows into the JSON documents of the API (and the values the pages show)."""

from __future__ import annotations

import json
import logging
from datetime import datetime
from typing import Any

from worklist.db.schema import Finding, Instance, Study
from worklist.db.types import utcnow
from worklist.web.rowview import dicom_datetime_text, row_findings

__all__ = [
    "DISCLAIMER",
    "explanation_lines",
    "finding_doc",
    "human_duration",
    "study_detail_doc",
    "study_doc",
]

logger = logging.getLogger(__name__)

DISCLAIMER = (
    "AI findings are decision support for a qualified reader, not a diagnosis. "
    "The priority shown may have been raised by AI; it is never lowered below the clinical "
    "priority."
)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def human_duration(seconds: float) -> str:
    """Return ``1d 3h``, ``2h 05m`` or ``7m``-style text for a waiting time."""
    seconds = max(0, int(seconds))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes:02d}m"
    return f"{minutes}m"


def explanation_lines(study: Study) -> list[str]:
    """Return the priority explanation as readable lines, whatever shape the worker wrote."""
    lines: list[str] = []
    for entry in study.priority_explanation or []:
        if isinstance(entry, str):
            lines.append(entry)
        elif isinstance(entry, dict):
            text = entry.get("text") or entry.get("reason") or entry.get("message")
            lines.append(str(text) if text else json.dumps(entry, sort_keys=True))
        else:
            lines.append(json.dumps(entry))
    return lines


def finding_doc(finding: Finding) -> dict[str, Any]:
    """Return a finding with its model's identity (name, version, sha256)."""
    return {
        "id": finding.id,
        "label": finding.label,
        "concept": {
            "scheme": finding.concept_scheme,
            "code": finding.concept_code,
            "meaning": finding.concept_meaning,
        },
        "probability": finding.probability,
        "threshold": finding.threshold,
        "crossed": finding.crossed,
        "category": finding.category,
        "shadow": finding.shadow,
        "sop_instance_uid": finding.sop_instance_uid,
        "has_heatmap": bool(finding.heatmap_path),
        "model": {
            "name": finding.model_name,
            "version": finding.model_version,
            "sha256": finding.model_sha256,
            "uid": finding.model_uid,
            "creator": finding.model_creator,
        },
    }


def study_doc(
    study: Study, findings: list[Finding], *, now: datetime | None = None
) -> dict[str, Any]:
    """Return one worklist item."""
    now = now or utcnow()
    waiting = (now - study.first_received_at).total_seconds()
    finding_docs = [finding_doc(f) for f in findings]
    row = row_findings(finding_docs)
    return {
        "study_instance_uid": study.study_instance_uid,
        "accession_number": study.accession_number,
        "patient_id": study.patient_id,
        "patient_name": study.patient_name,
        "study_date": study.study_date,
        "study_time": study.study_time,
        "study_datetime_text": dicom_datetime_text(study.study_date, study.study_time),
        "study_description": study.study_description,
        "modalities": [m for m in study.modalities.split("\\") if m],
        "site": study.site,
        "priority": study.priority,
        "clinical_priority": study.clinical_priority,
        "clinical_priority_source": study.clinical_priority_source,
        "ai_status": study.ai_status,
        "ai_reason": study.ai_reason,
        "findings": finding_docs,
        "finding_models": row["models"],
        "folded_text": row["folded_text"],
        "explanation": explanation_lines(study),
        "status": study.read_status,
        "state": study.state,
        "claimed_by": study.claimed_by,
        "reported_by": study.reported_by,
        "instance_count": study.instance_count,
        "first_received_at": _iso(study.first_received_at),
        "waiting_s": round(waiting, 1),
        "waiting": human_duration(waiting),
        "due_at": _iso(study.due_at),
        "due_in_s": round((study.due_at - now).total_seconds(), 1) if study.due_at else None,
        "version": study.version,
    }


def study_detail_doc(
    study: Study, findings: list[Finding], instances: list[Instance]
) -> dict[str, Any]:
    """Return a study with its metadata, findings and instances."""
    doc = study_doc(study, findings)
    doc.update(
        {
            "patient_birth_date": study.patient_birth_date,
            "patient_sex": study.patient_sex,
            "referral_priority": study.referral_priority,
            "claimed_at": _iso(study.claimed_at),
            "reported_at": _iso(study.reported_at),
            "completed_at": _iso(study.completed_at),
            "triaged_at": _iso(study.triaged_at),
            "last_received_at": _iso(study.last_received_at),
            "instances": [
                {
                    "sop_instance_uid": i.sop_instance_uid,
                    "sop_class_uid": i.sop_class_uid,
                    "view_position": i.view_position,
                    "received_at": _iso(i.received_at),
                }
                for i in instances
            ],
            "disclaimer": DISCLAIMER,
        }
    )
    return doc
