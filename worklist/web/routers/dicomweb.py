"""DICOMweb under ``/dicom-web``: QIDO-RS, WADO-RS and STOW-RS (HTTP only).

What is searched, read and stored is decided in :mod:`worklist.dicomweb`; this router parses
the request, checks who asks (a bearer token or the session; readers read, radiographers and
admins store), audits every answer that carries patient data, and writes the response:
``application/dicom+json`` for searches and metadata, ``multipart/related`` for instances,
frames and bulk data (instance files streamed from the archive, never read whole).
"""

from __future__ import annotations

import json
import logging
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response, StreamingResponse

from worklist.dicomweb import qido, wado
from worklist.dicomweb.attributes import Level
from worklist.dicomweb.errors import NotAcceptableError
from worklist.dicomweb.multipart import new_boundary, stream_files
from worklist.domain import Role
from worklist.web.auditsink import AuditSink
from worklist.web.deps import (
    AuditDep,
    DbDep,
    Principal,
    ReaderApi,
    WorklistSettingsDep,
    _api_user,
)
from worklist.web.errors import DICOMWEB_ERRORS

__all__ = ["STORERS", "StoreApi", "audit_event", "base_url", "dicom_json", "refusal", "router"]

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/dicom-web", tags=["dicomweb"], responses=DICOMWEB_ERRORS)

STORERS = (Role.RADIOGRAPHER, Role.ADMIN)
"""Roles that may store instances with STOW-RS."""
StoreApi = Annotated[Principal, Depends(_api_user(*STORERS))]

DICOM_JSON = "application/dicom+json"
STUDY = "/studies/{study_instance_uid}"
SERIES = STUDY + "/series/{series_instance_uid}"
INSTANCE = SERIES + "/instances/{sop_instance_uid}"


def base_url(request: Request) -> str:
    """Return the DICOMweb root URL as the client addressed this server."""
    return str(request.base_url).rstrip("/") + router.prefix


def dicom_json(content: Any, status_code: int = 200, warnings: list[str] | None = None) -> Response:
    """Return ``content`` as ``application/dicom+json`` (with ``Warning`` headers, if any)."""
    headers = {"Warning": ", ".join(f'299 triage "{w}"' for w in warnings)} if warnings else None
    return Response(
        json.dumps(content, separators=(",", ":")), status_code, headers, media_type=DICOM_JSON
    )


def refusal(status_code: int, exc: Exception) -> Response:
    """Return an error decided here (406, 415, 503) as JSON ``{"detail": ...}``."""
    return Response(json.dumps({"detail": str(exc)}), status_code, media_type="application/json")


def audit_event(
    audit: AuditSink, principal: Principal, action: str, study_uid: str, **details: Any
) -> None:
    """Queue one audit event of ``principal`` about a study (``details`` without ``None``)."""
    audit.record(
        action,
        actor=principal.user.username,
        source=principal.source,
        study_instance_uid=study_uid,
        details={k: v for k, v in details.items() if v is not None},
    )


# QIDO-RS -----------------------------------------------------------------------------------


def _search(
    request: Request,
    db: DbDep,
    settings: WorklistSettingsDep,
    audit: AuditSink,
    principal: Principal,
    level: Level,
    study_uid: str | None = None,
    series_uid: str | None = None,
) -> Response:
    params = request.query_params.multi_items()
    with db.read() as session:
        result = qido.search(
            session,
            level,
            params,
            base_url=base_url(request),
            archive_root=settings.effective_archive_dir,
            study_uid=study_uid,
            series_uid=series_uid,
        )
    studies = sorted({i["0020000D"]["Value"][0] for i in result.items if "0020000D" in i})
    audit_event(
        audit,
        principal,
        "dicomweb.search",
        study_uid or "",
        level=level.name.lower(),
        query=dict(params),
        results=len(result.items),
        studies=studies[:100],
    )
    return dicom_json(result.items, warnings=result.warnings)


@router.get("/studies")
def search_studies(
    request: Request,
    principal: ReaderApi,
    db: DbDep,
    settings: WorklistSettingsDep,
    audit: AuditDep,
) -> Response:
    """QIDO-RS: search for studies."""
    return _search(request, db, settings, audit, principal, Level.STUDY)


@router.get(STUDY + "/series")
def search_series(
    study_instance_uid: str,
    request: Request,
    principal: ReaderApi,
    db: DbDep,
    settings: WorklistSettingsDep,
    audit: AuditDep,
) -> Response:
    """QIDO-RS: search for the series of a study."""
    return _search(request, db, settings, audit, principal, Level.SERIES, study_instance_uid)


@router.get(STUDY + "/instances")
def search_study_instances(
    study_instance_uid: str,
    request: Request,
    principal: ReaderApi,
    db: DbDep,
    settings: WorklistSettingsDep,
    audit: AuditDep,
) -> Response:
    """QIDO-RS: search for the instances of a study."""
    return _search(request, db, settings, audit, principal, Level.INSTANCE, study_instance_uid)


@router.get(SERIES + "/instances")
def search_series_instances(
    study_instance_uid: str,
    series_instance_uid: str,
    request: Request,
    principal: ReaderApi,
    db: DbDep,
    settings: WorklistSettingsDep,
    audit: AuditDep,
) -> Response:
    """QIDO-RS: search for the instances of a series."""
    return _search(
        request,
        db,
        settings,
        audit,
        principal,
        Level.INSTANCE,
        study_instance_uid,
        series_instance_uid,
    )


# WADO-RS: instances and metadata -------------------------------------------------------------


def _retrieve(
    request: Request,
    db: DbDep,
    settings: WorklistSettingsDep,
    audit: AuditSink,
    principal: Principal,
    study: str,
    series: str | None = None,
    sop: str | None = None,
) -> Response:
    with db.read() as session:
        found = wado.locate(session, study, series, sop)
    accept = wado.parse_accept(request.headers.get("accept", ""), "application/dicom")
    try:
        wado.check_dicom_acceptable(accept, found)
    except NotAcceptableError as exc:
        return refusal(406, exc)
    root = settings.effective_archive_dir
    base = base_url(request)
    files = [
        (
            root / f.path,
            f"application/dicom; transfer-syntax={f.transfer_syntax_uid}",
            wado.instance_url(base, f),
        )
        for f in found
    ]
    missing = [str(p) for p, _, _ in files if not p.is_file()]
    if missing:
        logger.error("archive files missing for %s: %s", study, missing[:5])
        return refusal(503, FileNotFoundError(f"{len(missing)} instance file(s) missing"))
    audit_event(
        audit,
        principal,
        "dicomweb.retrieve",
        study,
        what="instances",
        series=series,
        instance=sop,
        instances=len(found),
    )
    boundary = new_boundary()
    return StreamingResponse(
        stream_files(boundary, files),
        media_type=f'multipart/related; type="application/dicom"; boundary={boundary}',
    )


@router.get(STUDY)
def retrieve_study(
    study_instance_uid: str,
    request: Request,
    principal: ReaderApi,
    db: DbDep,
    settings: WorklistSettingsDep,
    audit: AuditDep,
) -> Response:
    """WADO-RS: every instance of a study, as stored."""
    return _retrieve(request, db, settings, audit, principal, study_instance_uid)


@router.get(SERIES)
def retrieve_series(
    study_instance_uid: str,
    series_instance_uid: str,
    request: Request,
    principal: ReaderApi,
    db: DbDep,
    settings: WorklistSettingsDep,
    audit: AuditDep,
) -> Response:
    """WADO-RS: every instance of a series, as stored."""
    return _retrieve(
        request, db, settings, audit, principal, study_instance_uid, series_instance_uid
    )


@router.get(INSTANCE)
def retrieve_instance(
    study_instance_uid: str,
    series_instance_uid: str,
    sop_instance_uid: str,
    request: Request,
    principal: ReaderApi,
    db: DbDep,
    settings: WorklistSettingsDep,
    audit: AuditDep,
) -> Response:
    """WADO-RS: one instance, as stored."""
    return _retrieve(
        request,
        db,
        settings,
        audit,
        principal,
        study_instance_uid,
        series_instance_uid,
        sop_instance_uid,
    )


def _metadata(
    request: Request,
    db: DbDep,
    settings: WorklistSettingsDep,
    audit: AuditSink,
    principal: Principal,
    study: str,
    series: str | None = None,
    sop: str | None = None,
) -> Response:
    with db.read() as session:
        found = wado.locate(session, study, series, sop)
    root, base = settings.effective_archive_dir, base_url(request)
    items = [wado.metadata(root, f, base) for f in found]
    audit_event(
        audit,
        principal,
        "dicomweb.retrieve",
        study,
        what="metadata",
        series=series,
        instance=sop,
        instances=len(found),
    )
    return dicom_json(items)


@router.get(STUDY + "/metadata")
def study_metadata(
    study_instance_uid: str,
    request: Request,
    principal: ReaderApi,
    db: DbDep,
    settings: WorklistSettingsDep,
    audit: AuditDep,
) -> Response:
    """WADO-RS: the metadata of every instance of a study."""
    return _metadata(request, db, settings, audit, principal, study_instance_uid)


@router.get(SERIES + "/metadata")
def series_metadata(
    study_instance_uid: str,
    series_instance_uid: str,
    request: Request,
    principal: ReaderApi,
    db: DbDep,
    settings: WorklistSettingsDep,
    audit: AuditDep,
) -> Response:
    """WADO-RS: the metadata of every instance of a series."""
    return _metadata(
        request, db, settings, audit, principal, study_instance_uid, series_instance_uid
    )


@router.get(INSTANCE + "/metadata")
def instance_metadata(
    study_instance_uid: str,
    series_instance_uid: str,
    sop_instance_uid: str,
    request: Request,
    principal: ReaderApi,
    db: DbDep,
    settings: WorklistSettingsDep,
    audit: AuditDep,
) -> Response:
    """WADO-RS: the metadata of one instance."""
    return _metadata(
        request,
        db,
        settings,
        audit,
        principal,
        study_instance_uid,
        series_instance_uid,
        sop_instance_uid,
    )
