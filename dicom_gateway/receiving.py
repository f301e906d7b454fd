"""Received datasets streamed to a temporary file in the archive's filesystem, not memory.

pynetdicom can write a C-STORE dataset to a temporary file as its P-DATA fragments arrive
(``pynetdicom._config.STORE_RECV_CHUNKED_DATASET``, a documented option) instead of growing a
buffer in memory. :func:`use_receive_dir` turns it on for a listener process and points Python's
temporary directory (which pynetdicom's ``NamedTemporaryFile`` uses) at ``.receiving`` in the
archive folder, so a large multi-frame instance, or a sender that announces 1 GiB and stops
half-way, costs disk in the archive's filesystem rather than the listener's memory.

Both are process-wide, so only listener *processes* use them (``triage serve`` and
``triage gateway`` always run their listener in child processes); the in-process listener of
the tests (``Gateway(..., in_process=True)``) keeps pynetdicom's in-memory buffers, bounded by
``max_instance_bytes`` and the memory budget.

The handler renames a new instance's file into the archive (no second copy of its bytes);
pynetdicom deletes any file left after the C-STORE handler; the file of an association that ends
mid-dataset is left behind, and :func:`sweep_stale` (run by a thread of the listener's process,
and at start) removes files no writer has touched for longer than any association may idle.
"""

from __future__ import annotations

import contextlib
import logging
import tempfile
import threading
import time
from pathlib import Path

from pynetdicom import _config
from pynetdicom.events import Event

from worklist.ingest.header import InstanceTooLargeError

__all__ = [
    "RECEIVE_DIR",
    "read_instance",
    "received_path",
    "start_sweeper",
    "sweep_stale",
    "use_receive_dir",
]

logger = logging.getLogger(__name__)

RECEIVE_DIR = ".receiving"
"""Folder of the archive root where listener processes receive datasets."""


def use_receive_dir(archive_root: Path) -> Path:
    """Receive C-STORE datasets to files in ``archive_root/.receiving`` (this whole process).

    Only for a listener *process*: both switches are process-wide.

    Parameters
    ----------
    archive_root
        The archive folder (the same filesystem as the stored instances).

    Returns
    -------
    pathlib.Path
        The receiving folder (absolute, resolved like the archive's root, so that received
        files can be renamed into the archive).
    """
    directory = archive_root / RECEIVE_DIR
    directory.mkdir(parents=True, exist_ok=True)
    directory = directory.resolve()  # as the archive's root: a received file is found inside it
    tempfile.tempdir = str(directory)
    _config.STORE_RECV_CHUNKED_DATASET = True
    return directory


def received_path(event: Event) -> Path | None:
    """Return the file pynetdicom received the dataset to, or ``None`` (received in memory).

    The file holds the preamble, the file meta and the dataset as received. pynetdicom removes
    it after the handler returns, ignoring a file that is gone: the handler may rename it into
    the archive (:meth:`worklist.archive.Archive.adopt`) instead of writing its bytes again.
    """
    try:
        received = event.dataset_path  # None unless pynetdicom received to a file
    except AttributeError:
        return None
    return None if received is None else Path(received)


def read_instance(path: Path, max_bytes: int) -> bytes:
    """Return a received file's bytes, refusing one larger than ``max_bytes`` unread.

    Parameters
    ----------
    path
        The file (from :func:`received_path`).
    max_bytes
        Largest instance read into memory (0: no limit).

    Raises
    ------
    InstanceTooLargeError
        If the file is larger than ``max_bytes`` (it is not read).
    """
    size = path.stat().st_size
    if max_bytes and size > max_bytes:
        raise InstanceTooLargeError(f"instance of {size} bytes is larger than {max_bytes}")
    return path.read_bytes()


def sweep_stale(directory: Path, older_than_s: float) -> int:
    """Remove received files untouched for ``older_than_s`` (their association has ended)."""
    removed = 0
    cutoff = time.time() - older_than_s
    for path in directory.glob("*.dcm"):
        with contextlib.suppress(OSError):
            if path.stat().st_mtime < cutoff:
                path.unlink()
                removed += 1
    if removed:
        logger.warning("removed %d partly received dataset file(s) from %s", removed, directory)
    return removed


def start_sweeper(
    directory: Path, older_than_s: float, stop: threading.Event, *, every_s: float = 30.0
) -> threading.Thread:
    """Run :func:`sweep_stale` now and every ``every_s`` seconds until ``stop`` is set."""

    def run() -> None:
        while True:
            try:
                sweep_stale(directory, older_than_s)
            except Exception:
                logger.exception("sweeping %s failed", directory)
            if stop.wait(every_s):
                return

    thread = threading.Thread(target=run, name="ReceiveSweeper", daemon=True)
    thread.start()
    return thread
