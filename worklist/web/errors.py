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
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from types import MappingProxyType
from urllib.parse import urlencode

from fastapi import FastAPI, Request, status
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import RedirectResponse
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

__all__ = ["OTHER_STATUS", "STATUS_BY_MEANING", "register_error_handlers", "status_for"]

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
