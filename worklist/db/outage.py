"""Telling a store that cannot be reached now from a bug, and logging an outage once.

While PostgreSQL restarts (or SQLite stays locked past its busy timeout) every store operation
fails the same way; services answer and retry, and log the outage as one line when it starts
and one when it ends (:class:`OutageLog`) instead of a traceback per attempt.
"""

from __future__ import annotations

import logging
import sqlite3
import sys

from sqlalchemy.exc import InterfaceError, OperationalError

from worklist.domain import StoreUnavailableError

__all__ = ["OutageLog", "outage_reason", "store_down"]


_UNAVAILABLE: tuple[type[BaseException], ...] = (
    StoreUnavailableError,
    OperationalError,
    InterfaceError,
    # Statements executed on the driver's own cursor (the ingest path's prepared statements)
    # raise the driver's PEP 249 classes unwrapped.
    sqlite3.OperationalError,
    sqlite3.InterfaceError,
)


def store_down(exc: BaseException) -> bool:
    """Say whether ``exc`` means the store cannot be reached now, rather than a bug.

    Services log such a failure as one line (it repeats while the outage lasts) and a bug with
    its traceback.

    Parameters
    ----------
    exc
        What a store operation raised.

    Returns
    -------
    bool
        True for :class:`~worklist.domain.StoreUnavailableError` and the operational and
        interface errors of SQLAlchemy and of the drivers themselves (connection refused or
        cut, server restarting, database locked).
    """
    if isinstance(exc, _UNAVAILABLE):
        return True
    psycopg = sys.modules.get("psycopg")  # only a process that imported it can see its errors
    return psycopg is not None and isinstance(
        exc, psycopg.OperationalError | psycopg.InterfaceError
    )


def outage_reason(exc: BaseException) -> str:
    """Return one short line saying why the store is unavailable (no SQL, no parameters).

    Parameters
    ----------
    exc
        An exception for which :func:`store_down` is true.

    Returns
    -------
    str
        The driver's first line of the error, at most 200 characters.
    """
    cause = getattr(exc, "orig", None) or exc
    lines = str(cause).strip().splitlines()
    return f"{type(cause).__name__}: {lines[0] if lines else ''}"[:200]


class OutageLog:
    """Log a retried operation's store outage once, and its end once; log bugs every time.

    Parameters
    ----------
    logger
        The caller's logger.
    what
        What retries (in the lines: "store unavailable (...); {what} retries").
    """

    def __init__(self, logger: logging.Logger, what: str) -> None:
        self.logger, self.what = logger, what
        self.down = False

    def failed(self, exc: BaseException) -> None:
        """Log one failed attempt: a traceback for a bug, one line when an outage starts."""
        if not store_down(exc):
            self.logger.exception("%s failed; retrying", self.what, exc_info=exc)
        elif not self.down:
            self.logger.warning("store unavailable (%s); %s retries", outage_reason(exc), self.what)
        self.down = store_down(exc)

    def succeeded(self) -> None:
        """Log the end of an outage, if there was one."""
        if self.down:
            self.logger.info("store available again; %s goes on", self.what)
        self.down = False
