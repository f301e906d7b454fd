"""JSON API of the worklist: ``/api/v1/studies``."""

from __future__ import annotations

import logging
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, status
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

from worklist.domain import Priority, ReadStatus, StudyState
from worklist.reading import actions, queries
from worklist.web.deps import (
    AuditDep,
    DbDep,
    ListCacheDep,
    ReaderApi,
    ReporterApi,
    WorklistSettingsDep,
)
from worklist.web.errors import API_ERRORS
from worklist.web.listcache import ListCache
from worklist.web.routers.common import make_filter
from worklist.web.serialize import DISCLAIMER, study_detail_doc, study_doc

__all__ = ["router"]

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/api/v1/studies", tags=["studies"], responses=API_ERRORS)


class FeedbackIn(BaseModel):
    """A reader's word on the AI."""

    kind: str = Field(description="agree, disagree or missed")
    finding_id: int | None = Field(default=None, description="The finding it concerns, if any.")
    label: str = Field(default="", description="For missed: what the AI missed.")
    comment: str = ""


class ClinicalPriorityIn(BaseModel):
    """A new clinical priority (as from the referrer)."""

    clinical_priority: Priority


@router.get("")
def list_studies(
    principal: ReaderApi,
    db: DbDep,
    settings: WorklistSettingsDep,
    audit: AuditDep,
    cache: ListCacheDep,
    site: str | None = None,
    modality: str | None = None,
    priority: Annotated[list[Priority] | None, Query()] = None,
    status_: Annotated[list[ReadStatus] | None, Query(alias="status")] = None,
    read_status: Annotated[list[ReadStatus] | None, Query(description="Same as status.")] = None,
    state: StudyState | None = None,
    page: Annotated[int, Query(ge=1, le=10000)] = 1,
    page_size: Annotated[int | None, Query(ge=1, le=500)] = None,
) -> Response:
    """List studies in worklist order (priority class, closeness to target, arrival)."""
    statuses = [*(status_ or ()), *(read_status or ())] or None
    flt = make_filter(site, modality, priority, statuses, state)
    size = page_size or settings.web_page_size

    def compute() -> tuple[bytes, int]:
        with db.read() as session:
            result = queries.worklist_page(session, flt, page=page, page_size=size)
            items = [study_doc(s, result.findings[s.id]) for s in result.studies]
        body = {
            "items": items,
            "page": page,
            "page_size": size,
            "has_next": result.has_next,
            "disclaimer": DISCLAIMER,
        }
        return bytes(JSONResponse(body).body), len(items)

    content, count = cache.get((flt, page, size), compute)
    audit.record(
        "worklist.view",
        actor=principal.user.username,
        source=principal.source,
        details={"page": page, "count": count, "via": principal.via},
    )
    return Response(content, media_type="application/json")


@router.get("/{study_instance_uid}")
def get_study(
    study_instance_uid: str, principal: ReaderApi, db: DbDep, audit: AuditDep
) -> JSONResponse:
    """Return one study with its findings, explanation and instances."""
    with db.read() as session:
        study = queries.study_by_uid(session, study_instance_uid)
        if study is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, "no such study")
        findings = queries.findings_for(session, [study.id])[study.id]
        doc = study_detail_doc(study, findings, queries.instances_of(session, study.id))
    audit.record(
        "study.view",
        actor=principal.user.username,
        source=principal.source,
        study_instance_uid=study_instance_uid,
        details={"via": principal.via},
    )
    return JSONResponse(doc)


def _act(db: DbDep, cache: ListCache, fn: Any, *args: Any, **kwargs: Any) -> dict[str, Any]:
    """Do a reading action; a refused one is audited as a failure and propagates."""
    try:
        with db.write() as session:
            study = fn(session, *args, **kwargs)
            findings = queries.findings_for(session, [study.id])[study.id]
            doc = study_doc(study, findings)
    except actions.ActionError as exc:
        _audit_failure(db, fn.__name__, args, exc)
        raise
    cache.clear()
    return doc


def _audit_failure(db: DbDep, name: str, args: tuple[Any, ...], exc: Exception) -> None:
    actor, uid = args[0], args[1]
    with db.write() as session:
        actions.audit(
            session,
            actor,
            f"study.{name}",
            study_instance_uid=str(uid),
            outcome="failure",
            details={"error": str(exc)},
        )


@router.post("/{study_instance_uid}/claim")
def claim(
    study_instance_uid: str, principal: ReporterApi, db: DbDep, cache: ListCacheDep
) -> dict[str, Any]:
    """Claim the study for yourself (409 if someone else holds it)."""
    return _act(db, cache, actions.claim, principal.actor, study_instance_uid)


@router.post("/{study_instance_uid}/release")
def release(
    study_instance_uid: str, principal: ReporterApi, db: DbDep, cache: ListCacheDep
) -> dict[str, Any]:
    """Give your claim back (an admin may release anyone's)."""
    return _act(db, cache, actions.release, principal.actor, study_instance_uid)


@router.post("/{study_instance_uid}/report")
def report(
    study_instance_uid: str, principal: ReporterApi, db: DbDep, cache: ListCacheDep
) -> dict[str, Any]:
    """Mark the study you hold reported."""
    return _act(db, cache, actions.report, principal.actor, study_instance_uid)


@router.post("/{study_instance_uid}/feedback", status_code=status.HTTP_201_CREATED)
def feedback(
    study_instance_uid: str, body: FeedbackIn, principal: ReporterApi, db: DbDep
) -> dict[str, Any]:
    """Tell us what the AI got right or wrong (agree, disagree, missed with a label)."""
    with db.write() as session:
        fid = actions.feedback(
            session,
            principal.actor,
            study_instance_uid,
            body.kind,
            finding_id=body.finding_id,
            label=body.label,
            comment=body.comment,
        )
    return {"id": fid, "kind": body.kind}


@router.put("/{study_instance_uid}/clinical-priority")
def clinical_priority(
    study_instance_uid: str,
    body: ClinicalPriorityIn,
    principal: ReporterApi,
    db: DbDep,
    cache: ListCacheDep,
) -> dict[str, Any]:
    """Set the clinical priority; a worker then recomputes the study's priority."""
    return _act(
        db,
        cache,
        actions.set_clinical_priority,
        principal.actor,
        study_instance_uid,
        body.clinical_priority,
    )
