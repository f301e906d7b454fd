"""DICOMweb under ``/dicom-web``: STOW-RS (``POST /studies`` and ``POST /studies/{study}``)."""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from worklist.archive import Archive
from worklist.dicomweb import stow
from worklist.dicomweb.errors import UnsupportedMediaTypeError
from worklist.ingest.recorder import Ingestor
from worklist.web.deps import AuditDep, DbDep, WorklistSettingsDep
from worklist.web.errors import DICOMWEB_ERRORS
from worklist.web.routers.dicomweb import (
    STUDY,
    StoreApi,
    audit_event,
    base_url,
    dicom_json,
    refusal,
)

__all__ = ["router"]

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/dicom-web", tags=["dicomweb"], responses=DICOMWEB_ERRORS)


async def _store(
    request: Request,
    principal: StoreApi,
    db: DbDep,
    settings: WorklistSettingsDep,
    audit: AuditDep,
    study_uid: str | None,
) -> Response:
    body = await request.body()
    archive = Archive(
        settings.effective_archive_dir,
        quota_bytes=settings.quota_bytes,
        min_free_bytes=settings.min_free_bytes,
    )
    ingestor = Ingestor(db, archive, group_commit=True)
    try:
        result = await run_in_threadpool(
            stow.store_request,
            ingestor,
            body,
            request.headers.get("content-type", ""),
            study_uid=study_uid,
            base_url=base_url(request),
            calling_aet=principal.user.site or stow.CALLED_AE,
            source=principal.source,
        )
    except UnsupportedMediaTypeError as exc:
        return refusal(415, exc)
    finally:
        ingestor.close()
    audit_event(
        audit,
        principal,
        "dicomweb.store",
        study_uid or "",
        stored=len(result.stored),
        failed=result.failed,
        studies=sorted({s for s, _ in result.stored})[:100],
        status=result.status,
    )
    return dicom_json(result.body, result.status)


@router.post("/studies")
async def store_instances(
    request: Request,
    principal: StoreApi,
    db: DbDep,
    settings: WorklistSettingsDep,
    audit: AuditDep,
) -> Response:
    """STOW-RS: store instances of any studies."""
    return await _store(request, principal, db, settings, audit, None)


@router.post(STUDY)
async def store_study_instances(
    study_instance_uid: str,
    request: Request,
    principal: StoreApi,
    db: DbDep,
    settings: WorklistSettingsDep,
    audit: AuditDep,
) -> Response:
    """STOW-RS: store instances of one study (others are refused with 0xA900)."""
    return await _store(request, principal, db, settings, audit, study_instance_uid)
