"""FHIR R4 read API of the AI's results: ``/fhir`` (resources built in :mod:`worklist.reading`).

Every answer is ``application/fhir+json``; every error, including 401 and 403 from the
authentication dependencies, is an ``OperationOutcome`` (the route class catches them before
the app's HTML error handler would). A domain error gets the status of
:func:`worklist.web.errors.status_for`, except that a refused search (``Invalid``) answers 400 as
FHIR's search rules have it. Reads and searches of patient data are audited (``fhir.read``,
``fhir.search``), one event per study they return, as the pages are.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine, Mapping
from typing import Any

from fastapi import APIRouter, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from fhir.resources.R4B.operationoutcome import OperationOutcome
from fhir.resources.R4B.resource import Resource
from sqlalchemy.orm import Session
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from models.errors import TriageError
from worklist.db.types import utcnow
from worklist.reading import fhir_search
from worklist.reading.fhir_search import Found, SearchCriteria
from worklist.web.auditsink import AuditSink
from worklist.web.deps import AuditDep, DbDep, Principal, ReaderApi
from worklist.web.errors import FHIR_ERRORS, status_for

__all__ = ["FHIR_JSON", "FhirRoute", "router"]

logger = logging.getLogger(__name__)

FHIR_JSON = "application/fhir+json"

_ISSUE_CODES = {
    400: "invalid",
    401: "login",
    403: "forbidden",
    404: "not-found",
    409: "conflict",
    422: "invalid",
    503: "transient",
}


def fhir_response(resource: Resource, status_code: int = 200, **headers: str) -> Response:
    """Return a resource as ``application/fhir+json``."""
    body = resource.model_dump_json(by_alias=True, exclude_none=True)
    return Response(body, status_code=status_code, media_type=FHIR_JSON, headers=headers or None)


def outcome_response(
    status_code: int, detail: str, headers: Mapping[str, str] | None = None
) -> Response:
    """Return an ``OperationOutcome`` with one error issue, at this status."""
    outcome = OperationOutcome.model_validate(
        {
            "resourceType": "OperationOutcome",
            "issue": [
                {
                    "severity": "error",
                    "code": _ISSUE_CODES.get(status_code, "processing"),
                    "diagnostics": detail,
                }
            ],
        }
    )
    return fhir_response(outcome, status_code, **(headers or {}))


class FhirRoute(APIRoute):
    """A route whose errors (HTTP, validation, domain) are answered as ``OperationOutcome``."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        """Wrap FastAPI's handler so that every error becomes an ``OperationOutcome``."""
        handler = super().get_route_handler()

        async def fhir_handler(request: Request) -> Response:
            try:
                return await handler(request)
            except StarletteHTTPException as exc:
                return outcome_response(exc.status_code, str(exc.detail), exc.headers)
            except RequestValidationError as exc:
                return outcome_response(status.HTTP_400_BAD_REQUEST, str(exc.errors()))
            except TriageError as exc:
                code = status_for(exc)
                if code == status.HTTP_422_UNPROCESSABLE_CONTENT:
                    code = status.HTTP_400_BAD_REQUEST
                logger.debug("%s %s: %d %s", request.method, request.url.path, code, exc)
                return outcome_response(code, str(exc))

        return fhir_handler


router = APIRouter(prefix="/fhir", tags=["fhir"], route_class=FhirRoute, responses=FHIR_ERRORS)


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/") + "/fhir"


def _audit(
    audit: AuditSink, principal: Principal, action: str, found: Found, details: dict[str, Any]
) -> None:
    fields = {"actor": principal.user.username, "source": principal.source}
    details = {**details, "via": principal.via, "count": len(found.resources)}
    for uid in found.study_uids or [""]:
        audit.record(action, study_instance_uid=uid, details=details, **fields)


def _search(
    request: Request,
    resource_type: str,
    finder: Callable[[Session, SearchCriteria], Found],
    principal: Principal,
    db: DbDep,
    audit: AuditSink,
) -> Response:
    params = dict(request.query_params)
    criteria = fhir_search.criteria_from(resource_type, params)
    with db.read() as session:
        found = finder(session, criteria)
    bundle = fhir_search.searchset(
        _base(request), str(request.url), found.resources, found.included
    )
    _audit(audit, principal, "fhir.search", found, {"type": resource_type, "query": params})
    return fhir_response(bundle)


def _read(
    resource_type: str,
    resource_id: str,
    reader: Callable[[Session, str], Found],
    principal: Principal,
    db: DbDep,
    audit: AuditSink,
) -> Response:
    with db.read() as session:
        found = reader(session, resource_id)
    _audit(audit, principal, "fhir.read", found, {"type": resource_type, "id": resource_id})
    return fhir_response(found.resources[0])


@router.get("/metadata")
def metadata(request: Request) -> Response:
    """Return the server's CapabilityStatement (no login needed, as FHIR clients expect)."""
    version = request.app.version
    statement = fhir_search.capability_statement(_base(request), version, utcnow().isoformat())
    return fhir_response(statement)


@router.get("/DiagnosticReport")
def search_reports(request: Request, principal: ReaderApi, db: DbDep, audit: AuditDep) -> Response:
    """Search the AI's reports (one per study and model) by patient identifier or study."""
    return _search(request, "DiagnosticReport", fhir_search.find_reports, principal, db, audit)


@router.get("/DiagnosticReport/{id}")
def read_report(id: str, principal: ReaderApi, db: DbDep, audit: AuditDep) -> Response:
    """Read one AI report."""
    return _read("DiagnosticReport", id, fhir_search.read_report, principal, db, audit)


@router.get("/Observation")
def search_observations(
    request: Request, principal: ReaderApi, db: DbDep, audit: AuditDep
) -> Response:
    """Search the findings (one Observation each) by patient identifier or study."""
    return _search(request, "Observation", fhir_search.find_observations, principal, db, audit)


@router.get("/Observation/{id}")
def read_observation(id: str, principal: ReaderApi, db: DbDep, audit: AuditDep) -> Response:
    """Read one finding."""
    return _read("Observation", id, fhir_search.read_observation, principal, db, audit)


@router.get("/ImagingStudy")
def search_imaging_studies(
    request: Request, principal: ReaderApi, db: DbDep, audit: AuditDep
) -> Response:
    """Search studies by identifier (``urn:dicom:uid|urn:oid:<uid>``) or patient identifier."""
    return _search(request, "ImagingStudy", fhir_search.find_imaging_studies, principal, db, audit)


@router.get("/ImagingStudy/{id}")
def read_imaging_study(id: str, principal: ReaderApi, db: DbDep, audit: AuditDep) -> Response:
    """Read one study (its id is the Study Instance UID)."""
    return _read("ImagingStudy", id, fhir_search.read_imaging_study, principal, db, audit)


@router.get("/Device/{id}")
def read_device(id: str, principal: ReaderApi, db: DbDep) -> Response:
    """Read one model (its id is the sha256 of its ONNX file); no patient data, not audited."""
    with db.read() as session:
        found = fhir_search.find_device(session, id)
    return fhir_response(found.resources[0])


@router.get("/{resource_type}")
@router.get("/{resource_type}/{id}")
def unsupported(resource_type: str) -> Response:
    """Answer any other resource type with 404, as an ``OperationOutcome`` (no login needed)."""
    return outcome_response(
        status.HTTP_404_NOT_FOUND,
        f"resource type {resource_type!r} is not supported here; see /fhir/metadata",
    )
