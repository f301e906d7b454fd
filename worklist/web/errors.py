"""The web app's exception handlers: the one place where a domain error gets its HTTP status.

Domain code raises :class:`models.errors.TriageError` subclasses whose meaning class says what
went wrong; routes let them propagate, and :func:`register_error_handlers` answers them:

* :class:`~models.errors.NotFound`: 404
* :class:`~models.errors.Conflict`: 409
* :class:`~models.errors.Forbidden`: 403
* :class:`~models.errors.Invalid`: 422
* :class:`~models.errors.Unavailable`: 503
* any other :class:`~models.errors.TriageError`: 400

A domain error without a meaning is still one the domain refused on the request's account, so it
answers 400 rather than 500 (an unexpected exception is a 500, from Starlette). The body is
what an :class:`~fastapi.HTTPException` of that status gives: under ``/api/`` (and
``/static/``, ``/dicom-web/``) JSON ``{"detail": "<the error's message>"}``, elsewhere the error
page. Routes raise ``HTTPException`` themselves only for what they decide (401, CSRF, a missing
study row they looked up), and a page may still catch a domain error to show it on its form
instead.

The OpenAPI documents these answers: :class:`ApiError` is the body (``detail`` a sentence, or
FastAPI's list of validation problems), :data:`API_ERRORS` and :data:`DICOMWEB_ERRORS` the
statuses the routers declare, :data:`FHIR_ERRORS` the ``OperationOutcome`` of ``/fhir``. A 405
names in ``Allow`` every method served at the path (:func:`allowed_methods`), not only those of
the first route Starlette matched.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Iterator, Mapping
from types import MappingProxyType
from typing import Any
from urllib.parse import urlencode

from fastapi import FastAPI, Request, status
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import RedirectResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from models.errors import (
    Conflict,
    Forbidden,
    Invalid,
    NotFound,
    TriageError,
    Unavailable,
    meaning_of,
)
from worklist.db.engine import Database
from worklist.web.deps import LoginRequired, authenticate
from worklist.web.templating import render

__all__ = [
    "API_ERRORS",
    "DICOMWEB_ERRORS",
    "FHIR_ERRORS",
    "OTHER_STATUS",
    "STATUS_BY_MEANING",
    "ApiError",
    "ValidationItem",
    "allowed_methods",
    "error_responses",
    "register_error_handlers",
    "status_for",
]

logger = logging.getLogger(__name__)

STATUS_BY_MEANING: Mapping[type[TriageError], int] = MappingProxyType(
    {
        NotFound: status.HTTP_404_NOT_FOUND,
        Conflict: status.HTTP_409_CONFLICT,
        Forbidden: status.HTTP_403_FORBIDDEN,
        Invalid: status.HTTP_422_UNPROCESSABLE_CONTENT,
        Unavailable: status.HTTP_503_SERVICE_UNAVAILABLE,
    }
)
"""The HTTP status of each meaning class of :mod:`models.errors`."""

OTHER_STATUS = status.HTTP_400_BAD_REQUEST
"""The status of a :class:`~models.errors.TriageError` that carries no meaning."""


class ValidationItem(BaseModel):
    """One problem of a request that failed validation (FastAPI's and the query limits' shape)."""

    type: str
    loc: list[str | int]
    msg: str
    input: Any = None
    ctx: dict[str, Any] | None = None


class ApiError(BaseModel):
    """The body of every error answer of ``/api/v1`` and ``/dicom-web``.

    ``detail`` is a sentence (a domain error, 401, 403, 404, 409, 503) or, for a request that
    failed validation (422 from FastAPI or the query limits), the list of its problems. A 422
    from a domain :class:`~models.errors.Invalid` error carries a sentence too: both shapes are
    documented for 422.
    """

    detail: str | list[ValidationItem]


_DESCRIPTIONS: Mapping[int, str] = MappingProxyType(
    {
        status.HTTP_400_BAD_REQUEST: "The domain refused the request (an error with no meaning)",
        status.HTTP_401_UNAUTHORIZED: "No valid session cookie or bearer token",
        status.HTTP_403_FORBIDDEN: "The user's role may not do this, or the CSRF token is wrong",
        status.HTTP_404_NOT_FOUND: "No such resource",
        status.HTTP_406_NOT_ACCEPTABLE: "No representation the Accept header allows",
        status.HTTP_409_CONFLICT: "The resource's state does not allow this",
        status.HTTP_413_CONTENT_TOO_LARGE: "The request body is larger than the server accepts",
        status.HTTP_415_UNSUPPORTED_MEDIA_TYPE: "The request body's media type is not served",
        status.HTTP_422_UNPROCESSABLE_CONTENT: "The request or the data it names is invalid",
        status.HTTP_503_SERVICE_UNAVAILABLE: "A resource the request needs cannot be used now",
    }
)


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """Return FastAPI ``responses=`` documenting these error statuses with :class:`ApiError`.

    Parameters
    ----------
    codes
        HTTP statuses, each one this module describes (400 to 503).

    Returns
    -------
    dict
        Status to ``{"model": ApiError, "description": ...}``.
    """
    return {code: {"model": ApiError, "description": _DESCRIPTIONS[code]} for code in codes}


API_ERRORS = error_responses(400, 401, 403, 404, 409, 422, 503)
"""Every error status of ``/api/v1`` documented with :class:`ApiError` (the routers' default).

The domain error handler can answer any meaning on any route that calls domain code, so each
``/api/v1`` router documents all of them rather than guessing which a route cannot reach.
"""


def _method_routes(routes: Iterable[Any]) -> Iterator[tuple[re.Pattern[str], set[str]]]:
    """Yield ``(path_regex, methods)`` of every endpoint among ``routes``, routers included."""
    for route in routes:
        regex, methods = getattr(route, "path_regex", None), getattr(route, "methods", None)
        if regex is not None and methods:
            yield regex, set(methods)
        contexts = getattr(route, "effective_route_contexts", None)  # FastAPI's included router
        if callable(contexts):
            yield from _method_routes(contexts())


DICOMWEB_ERRORS = error_responses(400, 401, 403, 404, 406, 409, 415, 422, 503)
"""The error statuses of ``/dicom-web`` (same body; 406 and 415 from content negotiation)."""

_OUTCOME = {
    "application/fhir+json": {
        "schema": {
            "type": "object",
            "required": ["resourceType", "issue"],
            "properties": {
                "resourceType": {"type": "string", "enum": ["OperationOutcome"]},
                "issue": {"type": "array", "items": {"type": "object"}},
            },
        }
    }
}
FHIR_ERRORS: dict[int | str, dict[str, Any]] = {
    "4XX": {"description": "The request was refused (OperationOutcome)", "content": _OUTCOME},
    "5XX": {"description": "A resource the request needs is unavailable", "content": _OUTCOME},
}
"""The errors of ``/fhir``: every one is a FHIR ``OperationOutcome`` (a validation error: 400)."""


def allowed_methods(request: Request) -> list[str]:
    """Return every method some route of the app serves at the request's path (for ``Allow``).

    Starlette answers 405 from the first route whose path matches, which names only that route's
    methods (``GET``) though another route serves the same path (``POST``); this looks at all.
    """
    path = request.scope.get("path", "")
    methods: set[str] = set()
    for regex, served in _method_routes(request.app.router.routes):
        if regex.match(path):
            methods |= served
    return sorted(methods)


def status_for(exc: TriageError) -> int:
    """Return the HTTP status that answers a domain error, chosen by its meaning class alone.

    Parameters
    ----------
    exc
        The error.

    Returns
    -------
    int
        :data:`STATUS_BY_MEANING` of its meaning, or :data:`OTHER_STATUS` without one.
    """
    meaning = meaning_of(exc)
    return OTHER_STATUS if meaning is None else STATUS_BY_MEANING[meaning]


def register_error_handlers(app: FastAPI, db: Database) -> None:
    """Register the app's exception handlers: domain errors, HTTP errors, the login redirect.

    Parameters
    ----------
    app
        The app being built.
    db
        The store, to show the signed-in user on a 403 page.
    """

    @app.exception_handler(LoginRequired)
    async def to_login(request: Request, exc: LoginRequired) -> Response:
        return RedirectResponse(
            "/login?" + urlencode({"next": exc.next_url}), status_code=status.HTTP_303_SEE_OTHER
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == status.HTTP_405_METHOD_NOT_ALLOWED:
            allow = ", ".join(allowed_methods(request))
            exc = StarletteHTTPException(exc.status_code, exc.detail, headers={"Allow": allow})
        if (
            request.url.path.startswith(("/api/", "/static/", "/dicom-web/"))
            or exc.status_code < 400
        ):
            return await http_exception_handler(request, exc)
        principal = authenticate(request, db) if exc.status_code == 403 else None
        response = render(
            request,
            "error.html",
            principal,
            {"status_code": exc.status_code, "detail": exc.detail},
            status_code=exc.status_code,
        )
        if exc.headers:
            response.headers.update(exc.headers)
        return response

    @app.exception_handler(TriageError)
    async def domain_error(request: Request, exc: TriageError) -> Response:
        code = status_for(exc)
        level = logging.WARNING if code >= 500 else logging.DEBUG
        logger.log(level, "%s %s: %d %s", request.method, request.url.path, code, exc)
        return await http_error(request, StarletteHTTPException(code, str(exc)))
