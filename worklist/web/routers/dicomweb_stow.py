"""DICOMweb under ``/dicom-web``: STOW-RS (``POST /studies`` and ``POST /studies/{study}``).

The body is checked before it is read (media type, Content-Encoding, announced length: 415 or
413), then streamed to a temporary file in the archive's filesystem with its size capped
(:mod:`worklist.dicomweb.spool`, 413 as soon as it passes ``web_stow_max_request_bytes``), and
its parts are stored from there.
"""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from worklist.archive import Archive
from worklist.dicomweb import spool, stow
from worklist.dicomweb.errors import RequestTooLargeError, UnsupportedMediaTypeError
from worklist.ingest.recorder import Ingestor
from worklist.web.deps import AuditDep, DbDep, WorklistSettingsDep
from worklist.web.errors import DICOMWEB_ERRORS, error_responses
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

STOW_ERRORS = error_responses(413)
"""What STOW-RS answers besides the other DICOMweb errors: a body past the size limit."""


async def _store(
    request: Request,
    principal: StoreApi,
    db: DbDep,
    settings: WorklistSettingsDep,
    audit: AuditDep,
    study_uid: str | None,
) -> Response:
    content_type = request.headers.get("content-type", "")
    encoding = request.headers.get("content-encoding", "")
    limit = settings.web_stow_max_request_bytes
    archive_dir = settings.effective_archive_dir
    try:
        stow.boundary_of(content_type)
        spool.check_announced(request.headers.get("content-length"), encoding, limit)
        body = await spool.spool_body(
            request.stream(),
            encoding=encoding,
            limit=limit,
            directory=archive_dir / spool.SPOOL_DIR,
        )
    except UnsupportedMediaTypeError as exc:
        return refusal(415, exc)
    except RequestTooLargeError as exc:
        logger.warning("STOW-RS request from %s refused (413): %s", principal.source, exc)
        response = refusal(413, exc)
        # Close the connection after the answer, rather than read and drop the rest of the body.
        response.headers["Connection"] = "close"
        return response
    archive = Archive(
        archive_dir, quota_bytes=settings.quota_bytes, min_free_bytes=settings.min_free_bytes
    )
    ingestor = Ingestor(db, archive, group_commit=True)
    limits = stow.StowLimits(
        max_instance_bytes=settings.web_stow_max_instance_bytes,
        max_inflated_bytes=settings.web_stow_max_inflated_bytes,
        max_parts=settings.web_stow_max_parts,
    )
    try:
        result = await run_in_threadpool(
            stow.store_request,
            ingestor,
            body,
            content_type,
            study_uid=study_uid,
            base_url=base_url(request),
            calling_aet=principal.user.site or stow.CALLED_AE,
            source=principal.source,
            limits=limits,
        )
    except RequestTooLargeError as exc:  # too many parts: none was stored
        logger.warning("STOW-RS request from %s refused (413): %s", principal.source, exc)
        return refusal(413, exc)
    finally:
        ingestor.close()
        body.close()
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


@router.post("/studies", responses=STOW_ERRORS)
async def store_instances(
    request: Request,
    principal: StoreApi,
    db: DbDep,
    settings: WorklistSettingsDep,
    audit: AuditDep,
) -> Response:
    """STOW-RS: store instances of any studies."""
    return await _store(request, principal, db, settings, audit, None)


@router.post(STUDY, responses=STOW_ERRORS)
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
