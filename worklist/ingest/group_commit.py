"""Group commit: one archive sync and one store transaction for many concurrent instances.

Each receiving thread writes its file without fsync (temporary file, rename) and calls
:meth:`GroupCommitter.submit` with the file's archive path and a function that records it in a
session. The first submitter to find nobody flushing becomes the leader: it takes everything
submitted so far (its own instance included) as a batch and, in its own thread (no hand-off to
another thread and back)

1. makes every file of the batch durable at once (:meth:`~worklist.archive.Archive.make_durable`:
   one ``syncfs`` on Linux), and only then
2. runs every record function in ONE write transaction, each inside its own SAVEPOINT, so a
   failing instance is rolled back alone and the others are committed, and
3. wakes each waiter with its own result or exception, only after the commit has returned;
   a waiter whose instance was not in that batch becomes the next leader.

So when :meth:`submit` returns, the file is on disk and its row is committed, exactly as with a
per-instance fsync and transaction (patient-safety rule 1), while N waiters share two syncs. A
batch starts as soon as nobody is flushing: a lone sender waits for no timer, and senders that
arrive during a flush form the next batch. If the sync or the commit fails, every instance of
the batch gets that error (none of them is acknowledged).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from sqlalchemy.orm import Session

from worklist.archive import Archive
from worklist.db.engine import Database

__all__ = ["GroupCommitter"]

logger = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(eq=False)
class _Pending(Generic[T]):
    path: str
    record: Callable[[Session], T]
    key: str = ""
    done: threading.Event = field(default_factory=threading.Event)
    result: T | None = None
    error: BaseException | None = None


class GroupCommitter:
    """Shared durability barrier and batched commit for one process's receiving threads.

    Parameters
    ----------
    db
        The store the rows are recorded in.
    archive
        The archive the files were written to (with ``sync=False``).
    max_batch
        The most instances in one sync and transaction.
    """

    def __init__(self, db: Database, archive: Archive, *, max_batch: int = 64) -> None:
        self.db = db
        self.archive = archive
        self.max_batch = max_batch
        self._queue: list[_Pending[object]] = []
        self._cond = threading.Condition()
        self._leading = False
        self._closed = False
        self.batches = 0
        """How many batches were flushed (for tests and logs)."""

    def submit(self, path: str, record: Callable[[Session], T], *, key: str = "") -> T:
        """Wait until ``path`` is durable and ``record`` is committed; return its result.

        Parameters
        ----------
        path
            The archive path of a file written with ``sync=False``.
        record
            Writes the instance's rows in the given session (inside a SAVEPOINT); it must not
            commit. Its return value is returned here once committed.
        key
            The batch's records run in the order of their keys; pass what they lock
            (``STUDY_UID/SERIES_UID``) so that concurrent batches (several processes on
            PostgreSQL) take their row locks in the same order and cannot deadlock.

        Returns
        -------
        T
            What ``record`` returned.

        Raises
        ------
        Exception
            What ``record`` raised (only this instance is rolled back), or the sync or commit
            error of the whole batch.
        """
        item: _Pending[T] = _Pending(path, record, key)
        with self._cond:
            if self._closed:
                raise RuntimeError("the group committer is closed")
            self._queue.append(item)  # type: ignore[arg-type]
            while not item.done.is_set():
                if self._leading:  # another submitter is flushing: wait for it
                    self._cond.wait()
                    continue
                self._leading = True  # this thread flushes what is queued, its own included
                batch = self._queue[: self.max_batch]
                del self._queue[: self.max_batch]
                self._cond.release()
                try:
                    self._flush_batch(batch)
                finally:
                    self._cond.acquire()
                    self._leading = False
                    self._cond.notify_all()  # the answered, and the next leader
        if item.error is not None:
            raise item.error
        return item.result  # type: ignore[return-value]

    def close(self) -> None:
        """Refuse new instances; those already submitted are still flushed by their threads."""
        with self._cond:
            self._closed = True

    def _flush_batch(self, batch: list[_Pending[object]]) -> None:
        try:
            self._flush(batch)
        except BaseException as exc:  # never leave a waiter hanging
            for item in batch:
                if item.error is None:
                    item.error = exc
                    item.result = None
        finally:
            for item in batch:
                item.done.set()

    def _flush(self, batch: list[_Pending[object]]) -> None:
        self.archive.make_durable([item.path for item in batch])
        if len(batch) == 1:  # alone: its own transaction, no SAVEPOINT needed
            item = batch[0]
            try:
                with self.db.write() as session:
                    item.result = item.record(session)
            except Exception as exc:
                item.error = exc
            self.batches += 1
            return
        with self.db.write() as session:
            for item in sorted(batch, key=lambda pending: pending.key):
                try:
                    with session.begin_nested():
                        item.result = item.record(session)
                except Exception as exc:
                    logger.warning("recording %s failed: %s", item.path, exc)
                    item.error = exc
        self.batches += 1
        if len(batch) > 1:
            logger.debug("group commit of %d instances", len(batch))
