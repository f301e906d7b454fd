"""Audit events of views, written in batches by a background thread.

Every view of a study or of the worklist is audited (DESIGN rule 5). Writing one transaction per
view would serialise the readers on the store's write lock (SQLite has one writer), so views are
queued in memory and a thread writes them every ``interval_s`` in one transaction; the app
flushes the queue when it stops. Changes (claim, report...) are audited in their own transaction,
not here. The same batches stamp when each API token was last accepted (``last_used_at``, shown
by ``triage users tokens``), at most once a minute per token and process.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from datetime import datetime
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from worklist.accounts.tokens import record_token_uses
from worklist.audit import EventCategory, record_event
from worklist.db.engine import Database
from worklist.db.types import utcnow

__all__ = ["TOKEN_USE_RESOLUTION_S", "AuditSink"]

logger = logging.getLogger(__name__)

TOKEN_USE_RESOLUTION_S = 60.0
"""A token's ``last_used_at`` is stamped at most this often per process."""


class AuditSink:
    """Queue audit events and write them in batches.

    Parameters
    ----------
    db
        The store.
    interval_s
        How often the background thread writes what is queued.
    """

    def __init__(self, db: Database, interval_s: float = 0.1) -> None:
        self._db = db
        self._interval_s = interval_s
        self._queue: deque[dict[str, Any]] = deque()
        self._token_uses: dict[str, datetime] = {}
        self._token_stamped: dict[str, float] = {}
        self._write_lock = threading.Lock()
        self._start_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def record(self, action: str, **fields: Any) -> None:
        """Queue one audit event (``actor``, ``source``, ``study_instance_uid``, ``details``)."""
        self._queue.append({"action": action, **fields})
        if self._thread is None:
            self._start()

    def token_used(self, token_hash: str) -> None:
        """Note that the token with this sha256 was accepted (stamped with the next batch).

        Parameters
        ----------
        token_hash
            The token's stored hash (:func:`worklist.accounts.users.hash_token`).
        """
        now = time.monotonic()
        last = self._token_stamped.get(token_hash)
        if last is not None and now - last < TOKEN_USE_RESOLUTION_S:
            return
        self._token_stamped[token_hash] = now
        self._token_uses[token_hash] = utcnow()
        if self._thread is None:
            self._start()

    def _start(self) -> None:
        with self._start_lock:
            if self._thread is None and not self._stop.is_set():
                self._thread = threading.Thread(target=self._run, name="audit-sink", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self._interval_s):
            self.flush()

    def flush(self) -> int:
        """Write everything queued now; return how many events were written."""
        with self._write_lock:
            batch: list[dict[str, Any]] = []
            while self._queue:
                batch.append(self._queue.popleft())
            uses: dict[str, datetime] = {}
            while self._token_uses:
                token_hash, when = self._token_uses.popitem()
                uses[token_hash] = when
            if not batch and not uses:
                return 0
            try:
                with self._db.write() as session:
                    for item in batch:
                        fields = dict(item)
                        action = fields.pop("action")
                        record_event(session, EventCategory.AUDIT, action, **fields)
                    record_token_uses(session, uses)
            except SQLAlchemyError:
                logger.exception("could not write %d audit events; retrying", len(batch))
                self._queue.extendleft(reversed(batch))
                for token_hash, when in uses.items():
                    self._token_uses.setdefault(token_hash, when)
                return 0
            return len(batch)

    def close(self) -> None:
        """Stop the thread and write what is left."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.flush()
