"""What the routers share: turning domain errors into HTTP errors, filters from query strings."""

from __future__ import annotations

import logging

from fastapi import HTTPException, status

from models.errors import ModelNotFoundError, TriageError
from worklist.accounts.users import UserError
from worklist.domain import Priority, ReadStatus, StudyState
from worklist.reading.actions import ActionError, ConflictError, NotAllowedError, StudyNotFoundError
from worklist.reading.modelinfo import ModelsUnavailableError
from worklist.reading.queries import OPEN_STATUSES, WorklistFilter

__all__ = ["http_error", "make_filter"]

logger = logging.getLogger(__name__)


def http_error(exc: TriageError) -> HTTPException:
    """Return the HTTP error that answers a domain error."""
    code = status.HTTP_400_BAD_REQUEST
    if isinstance(exc, StudyNotFoundError | ModelNotFoundError):
        code = status.HTTP_404_NOT_FOUND
    elif isinstance(exc, ConflictError):
        code = status.HTTP_409_CONFLICT
    elif isinstance(exc, NotAllowedError):
        code = status.HTTP_403_FORBIDDEN
    elif isinstance(exc, ModelsUnavailableError):
        code = status.HTTP_503_SERVICE_UNAVAILABLE
    elif isinstance(exc, UserError) and str(exc).startswith("no "):
        code = status.HTTP_404_NOT_FOUND
    elif isinstance(exc, ActionError | UserError):
        code = status.HTTP_422_UNPROCESSABLE_CONTENT
    return HTTPException(code, str(exc))


def make_filter(
    site: str | None,
    modality: str | None,
    priority: list[Priority] | None,
    status_: list[ReadStatus] | None,
    state: StudyState | None,
) -> WorklistFilter:
    """Build a worklist filter from query parameters (empty strings mean no filter)."""
    return WorklistFilter(
        site=site or None,
        modality=modality or None,
        priorities=tuple(priority or ()),
        read_statuses=tuple(status_ or OPEN_STATUSES),
        state=state,
    )
