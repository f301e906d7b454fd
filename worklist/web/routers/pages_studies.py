"""The worklist page, the study page, its key image and the reading actions (forms)."""

from __future__ import annotations

import logging
from typing import Annotated
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Form, HTTPException, Query, Request, status
from fastapi.responses import RedirectResponse
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from models.errors import NotFound, TriageError
from worklist.domain import Priority, ReadStatus, Role, StudyState
from worklist.reading import actions, queries
from worklist.reading.imagelimits import image_limits
from worklist.reading.keyimage import choose_key_image, render_png
from worklist.web.deps import (
    AuditDep,
    DbDep,
    ListCacheDep,
    ReaderPage,
    ReporterPage,
    WorklistSettingsDep,
)
from worklist.web.listcache import ListCache
from worklist.web.routers.common import make_filter
from worklist.web.serialize import explanation_lines, study_detail_doc, study_doc
from worklist.web.templating import render

__all__ = ["router"]

logger = logging.getLogger(__name__)

router = APIRouter(tags=["pages"], include_in_schema=False)


@router.get("/")
def worklist(
    request: Request,
    principal: ReaderPage,
    db: DbDep,
    settings: WorklistSettingsDep,
    audit: AuditDep,
    site: str = "",
    modality: str = "",
    priority: Annotated[list[Priority] | None, Query()] = None,
    status_: Annotated[list[ReadStatus] | None, Query(alias="status")] = None,
    state: StudyState | None = None,
    page: Annotated[int, Query(ge=1, le=10000)] = 1,
) -> Response:
    """Show the shared worklist, most urgent first (the rows refresh by polling the API)."""
    flt = make_filter(site, modality, priority, status_, state)
    with db.read() as session:
        result = queries.worklist_page(session, flt, page=page, page_size=settings.web_page_size)
        items = [study_doc(s, result.findings[s.id]) for s in result.studies]
    audit.record(
        "worklist.view",
        actor=principal.user.username,
        source=principal.source,
        details={"page": page, "count": len(items), "via": "page"},
    )
    params: list[tuple[str, str]] = [("site", site), ("modality", modality)]
    params += [("priority", str(p)) for p in priority or ()]
    params += [("status", str(s)) for s in status_ or ()]
    if state is not None:
        params.append(("state", str(state)))
    params.append(("page", str(page)))
    query = urlencode([(k, v) for k, v in params if v])
    return render(
        request,
        "worklist.html",
        principal,
        {
            "items": items,
            "page": page,
            "has_next": result.has_next,
            "filters": {
                "site": site,
                "modality": modality,
                "priority": [str(p) for p in priority or ()],
                "status": [str(s) for s in status_ or ()],
                "state": str(state) if state else "",
            },
            "api_query": query,
            "poll_ms": int(settings.web_poll_s * 1000),
            "priorities": [str(p) for p in Priority],
            "statuses": [str(s) for s in ReadStatus],
            "states": [str(s) for s in StudyState],
        },
    )


@router.get("/studies/{study_instance_uid}")
def study_page(
    request: Request,
    study_instance_uid: str,
    principal: ReaderPage,
    db: DbDep,
    audit: AuditDep,
    error: str = "",
) -> Response:
    """Show one study: metadata, findings with model identity, key image, actions."""
    with db.read() as session:
        study = queries.study_by_uid(session, study_instance_uid)
        if study is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, "no such study")
        findings = queries.findings_for(session, [study.id])[study.id]
        doc = study_detail_doc(study, findings, queries.instances_of(session, study.id))
        explanation = explanation_lines(study)
    audit.record(
        "study.view",
        actor=principal.user.username,
        source=principal.source,
        study_instance_uid=study_instance_uid,
        details={"via": "page"},
    )
    can_report = principal.user.role in (Role.RADIOLOGIST, Role.ADMIN)
    return render(
        request,
        "study.html",
        principal,
        {
            "study": doc,
            "explanation": explanation,
            "error": error,
            "can_report": can_report,
            "mine": doc["claimed_by"] == principal.user.username,
            "is_admin": principal.user.role == Role.ADMIN,
            "uid_q": quote(study_instance_uid, safe=""),
        },
    )


@router.get("/studies/{study_instance_uid}/key-image.png")
async def key_image(
    study_instance_uid: str,
    principal: ReaderPage,
    db: DbDep,
    settings: WorklistSettingsDep,
    audit: AuditDep,
) -> Response:
    """Return the key image as PNG, with the top crossed finding's heatmap overlaid."""

    def build() -> bytes:
        with db.read() as session:
            study = queries.study_by_uid(session, study_instance_uid)
            if study is None:
                raise HTTPException(status.HTTP_404_NOT_FOUND, "no such study")
            key = choose_key_image(session, study)
        if key is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, "the study has no instances")
        return render_png(settings.effective_archive_dir, key, image_limits(settings))

    png = await run_in_threadpool(build)
    audit.record(
        "study.key_image",
        actor=principal.user.username,
        source=principal.source,
        study_instance_uid=study_instance_uid,
    )
    return Response(png, media_type="image/png", headers={"Cache-Control": "private, no-store"})


def _back(uid: str, error: str = "") -> RedirectResponse:
    url = f"/studies/{quote(uid, safe='')}"
    if error:
        url += "?" + urlencode({"error": error})
    return RedirectResponse(url, status_code=status.HTTP_303_SEE_OTHER)


def _do(
    db: DbDep, cache: ListCache, name: str, principal: ReporterPage, uid: str
) -> RedirectResponse:
    fn = {"claim": actions.claim, "release": actions.release, "report": actions.report}[name]
    try:
        with db.write() as session:
            fn(session, principal.actor, uid)
    except NotFound:
        raise  # no study to go back to: the error page
    except TriageError as exc:
        with db.write() as session:
            actions.audit(
                session,
                principal.actor,
                f"study.{name}",
                study_instance_uid=uid,
                outcome="failure",
                details={"error": str(exc)},
            )
        return _back(uid, f"Could not {name}: {exc}")
    cache.clear()
    return _back(uid)


@router.post("/studies/{study_instance_uid}/claim")
def claim(
    study_instance_uid: str, principal: ReporterPage, db: DbDep, cache: ListCacheDep
) -> Response:
    """Claim the study (form)."""
    return _do(db, cache, "claim", principal, study_instance_uid)


@router.post("/studies/{study_instance_uid}/release")
def release(
    study_instance_uid: str, principal: ReporterPage, db: DbDep, cache: ListCacheDep
) -> Response:
    """Release the study (form)."""
    return _do(db, cache, "release", principal, study_instance_uid)


@router.post("/studies/{study_instance_uid}/report")
def report(
    study_instance_uid: str, principal: ReporterPage, db: DbDep, cache: ListCacheDep
) -> Response:
    """Mark the study reported (form)."""
    return _do(db, cache, "report", principal, study_instance_uid)


@router.post("/studies/{study_instance_uid}/feedback")
def feedback(
    study_instance_uid: str,
    principal: ReporterPage,
    db: DbDep,
    kind: Annotated[str, Form()],
    finding_id: Annotated[str, Form()] = "",
    label: Annotated[str, Form()] = "",
    comment: Annotated[str, Form()] = "",
) -> Response:
    """Store feedback on the AI (form)."""
    try:
        with db.write() as session:
            actions.feedback(
                session,
                principal.actor,
                study_instance_uid,
                kind,
                finding_id=int(finding_id) if finding_id.isdigit() else None,
                label=label,
                comment=comment,
            )
    except NotFound:
        raise  # no study to go back to: the error page
    except TriageError as exc:
        return _back(study_instance_uid, f"Feedback not saved: {exc}")
    return _back(study_instance_uid)
