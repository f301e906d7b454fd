"""What the routers share: worklist filters from query strings.

(Domain errors need nothing here: routes let them propagate to the handler that
:mod:`worklist.web.errors` registers, which answers each by its meaning.)
"""

from __future__ import annotations

import logging

from worklist.domain import Priority, ReadStatus, StudyState
from worklist.reading.queries import OPEN_STATUSES, WorklistFilter

__all__ = ["MAX_PAGE", "make_filter"]

logger = logging.getLogger(__name__)

MAX_PAGE = 1_000_000
"""The largest page number a paged list accepts (beyond it: 422, never an integer overflow)."""


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
