"""DICOMweb under ``/dicom-web``: WADO-RS frames, bulk data, rendered images and thumbnails."""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request
from fastapi.responses import Response

from worklist.dicomweb import frames as frame_ops
from worklist.dicomweb import wado
from worklist.dicomweb.dicomjson import parse_tag
from worklist.dicomweb.errors import NotAcceptableError
from worklist.dicomweb.multipart import new_boundary, stream_bytes
from worklist.reading.imagelimits import image_limits
from worklist.web.deps import AuditDep, DbDep, ReaderApi, WorklistSettingsDep
from worklist.web.errors import DICOMWEB_ERRORS
from worklist.web.routers.dicomweb import INSTANCE, audit_event, refusal

__all__ = ["router"]

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/dicom-web", tags=["dicomweb"], responses=DICOMWEB_ERRORS)


def _multipart(parts: list[bytes], content_type: str, part_type: str) -> Response:
    """Answer parts already in memory (frames, a bulk value) in one multipart body."""
    boundary = new_boundary()
    return Response(
        b"".join(stream_bytes(boundary, [(p, content_type) for p in parts])),
        media_type=f'multipart/related; type="{part_type}"; boundary={boundary}',
    )


@router.get(INSTANCE + "/frames/{frame_list}")
def retrieve_frames(
    study_instance_uid: str,
    series_instance_uid: str,
    sop_instance_uid: str,
    frame_list: str,
    request: Request,
    principal: ReaderApi,
    db: DbDep,
    settings: WorklistSettingsDep,
    audit: AuditDep,
) -> Response:
    """WADO-RS: frames of an instance in the transfer syntax the Accept header asks for."""
    numbers = frame_ops.frame_numbers(frame_list)
    with db.read() as session:
        (found,) = wado.locate(session, study_instance_uid, series_instance_uid, sop_instance_uid)
    accept = wado.parse_accept(request.headers.get("accept", ""), "application/octet-stream")
    try:
        result = frame_ops.frames(
            settings.effective_archive_dir / found.path, numbers, accept, image_limits(settings)
        )
    except NotAcceptableError as exc:
        return refusal(406, exc)
    audit_event(
        audit,
        principal,
        "dicomweb.retrieve",
        study_instance_uid,
        what="frames",
        series=series_instance_uid,
        instance=sop_instance_uid,
        frames=numbers[:100],
    )
    return _multipart(result.data, result.content_type, result.media)


@router.get(INSTANCE + "/bulk/{tag}")
def retrieve_bulk(
    study_instance_uid: str,
    series_instance_uid: str,
    sop_instance_uid: str,
    tag: str,
    principal: ReaderApi,
    db: DbDep,
    settings: WorklistSettingsDep,
    audit: AuditDep,
) -> Response:
    """WADO-RS: the value a BulkDataURI of the metadata points to."""
    number = parse_tag(tag)
    with db.read() as session:
        (found,) = wado.locate(session, study_instance_uid, series_instance_uid, sop_instance_uid)
    value = wado.bulk_value(settings.effective_archive_dir, found, number)
    audit_event(
        audit,
        principal,
        "dicomweb.retrieve",
        study_instance_uid,
        what="bulkdata",
        series=series_instance_uid,
        instance=sop_instance_uid,
        tag=f"{number:08X}",
    )
    octet = "application/octet-stream"
    return _multipart([value], octet, octet)


def _rendered(
    request: Request,
    settings: WorklistSettingsDep,
    db: DbDep,
    audit: AuditDep,
    principal: ReaderApi,
    uids: tuple[str, str, str],
    *,
    thumbnail: bool,
) -> Response:
    with db.read() as session:
        (found,) = wado.locate(session, *uids)
    accept = [
        item.split(";")[0].strip().lower() for item in request.headers.get("accept", "").split(",")
    ]
    data, media = frame_ops.render(
        settings.effective_archive_dir / found.path,
        accept,
        thumbnail=thumbnail,
        viewport=request.query_params.get("viewport", ""),
        limits=image_limits(settings),
    )
    audit_event(
        audit,
        principal,
        "dicomweb.retrieve",
        uids[0],
        what="thumbnail" if thumbnail else "rendered",
        series=uids[1],
        instance=uids[2],
    )
    return Response(data, media_type=media)


@router.get(INSTANCE + "/rendered")
def rendered_instance(
    study_instance_uid: str,
    series_instance_uid: str,
    sop_instance_uid: str,
    request: Request,
    principal: ReaderApi,
    db: DbDep,
    settings: WorklistSettingsDep,
    audit: AuditDep,
) -> Response:
    """WADO-RS: the instance's first frame, windowed as the key image, as JPEG or PNG."""
    uids = (study_instance_uid, series_instance_uid, sop_instance_uid)
    return _rendered(request, settings, db, audit, principal, uids, thumbnail=False)


@router.get(INSTANCE + "/thumbnail")
def thumbnail_instance(
    study_instance_uid: str,
    series_instance_uid: str,
    sop_instance_uid: str,
    request: Request,
    principal: ReaderApi,
    db: DbDep,
    settings: WorklistSettingsDep,
    audit: AuditDep,
) -> Response:
    """WADO-RS: a small rendering of the instance (128 px, or ``viewport=w,h``)."""
    uids = (study_instance_uid, series_instance_uid, sop_instance_uid)
    return _rendered(request, settings, db, audit, principal, uids, thumbnail=True)
