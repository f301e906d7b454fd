"""Received C-STORE datasets spooled to files, per listener, in-process as in listener processes.

pynetdicom writes a C-STORE dataset to a temporary file as its fragments arrive when
``pynetdicom._config.STORE_RECV_CHUNKED_DATASET`` is true (a documented option), instead of
growing a buffer in memory. That switch is process-wide, and the file goes to Python's temporary
directory (``tempfile.NamedTemporaryFile``, also process-wide); switched on as such it would
change every other pynetdicom SCP of the process (``triage serve`` runs the web app in the same
process; the tests run their own SCPs beside in-process gateways).

:func:`spool_to` makes both a question of the *association*: the switch becomes an object that
is true only on the network thread of an association of an AE given to :func:`spool_to`, and
pynetdicom's temporary file is created in that AE's folder (``archive_dir/.receiving``, the
archive's filesystem). Every other AE of the process keeps pynetdicom's default (in memory).
Both names are looked up by pynetdicom at the moment a C-STORE's dataset begins
(``DIMSEMessage.decode_msg``, on the association's network thread, ``DULServiceProvider``,
whose ``assoc`` is the association); :func:`spooling_available` says whether this pynetdicom
still has them, and the listener falls back to memory (bounded by the memory budget) if not.

pynetdicom then writes File Meta Information from the command's UIDs with pydicom's standard
check, which raises on the network thread (killing the association silently) when the command's
Affected SOP Instance UID is empty; the third name, ``write_file_meta_info``, is wrapped to write
such a meta as it is, so that the listener answers the command with 0xC000
(:func:`dicom_gateway.lenient.handle_dimse_recv`).
"""

from __future__ import annotations

import contextlib
import logging
import tempfile
import threading
import weakref
from pathlib import Path
from typing import IO, Any

from pydicom.dataset import FileMetaDataset
from pydicom.filewriter import write_file_meta_info
from pynetdicom import AE, _config, dimse_messages

__all__ = ["discard_spooled", "spool_directory", "spool_to", "spooling_available"]

logger = logging.getLogger(__name__)

_DIRECTORIES: weakref.WeakKeyDictionary[AE, Path] = weakref.WeakKeyDictionary()
_LOCK = threading.Lock()


def spool_directory() -> Path | None:
    """Return the spool folder of the association whose network thread is running, if any."""
    assoc = getattr(threading.current_thread(), "assoc", None)
    ae = getattr(assoc, "ae", None)
    if ae is None:
        return None
    return _DIRECTORIES.get(ae)


class _ForSpoolingAssociations:
    """True on the network thread of an association of a spooling AE (pynetdicom's switch)."""

    def __bool__(self) -> bool:
        return spool_directory() is not None

    def __repr__(self) -> str:
        return "<STORE_RECV_CHUNKED_DATASET for the listener's associations>"


def _spool_file(*args: Any, **kwargs: Any) -> IO[bytes]:
    """``NamedTemporaryFile`` in the association's spool folder (pynetdicom's only caller)."""
    directory = spool_directory()
    if directory is not None:
        kwargs["dir"] = directory
    return tempfile.NamedTemporaryFile(*args, **kwargs)  # pynetdicom closes it


def _spool_meta(fp: Any, file_meta: FileMetaDataset, enforce_standard: bool = True) -> None:
    """``write_file_meta_info``; for a spooled dataset, also a meta with empty command UIDs."""
    try:
        write_file_meta_info(fp, file_meta, enforce_standard=enforce_standard)
    except (AttributeError, ValueError):  # raised by the check, before anything is written
        if spool_directory() is None:
            raise
        write_file_meta_info(fp, file_meta, enforce_standard=False)


def discard_spooled(message: object) -> None:
    """Close and remove the file of a message's spooled dataset that no handler will take.

    pynetdicom removes it after the C-STORE handler; a dataset cut off by an abort or a closed
    connection, or a request pynetdicom ignores, would keep its file open until garbage
    collection and on disk until the sweeper's next pass.

    Parameters
    ----------
    message
        pynetdicom's ``DIMSEMessage`` being received (``assoc.dimse.message``), or ``None``.
    """
    spooled = getattr(message, "_data_set_file", None)
    if spooled is None:
        return
    with contextlib.suppress(OSError, ValueError):
        spooled.close()
        Path(spooled.name).unlink()


def spooling_available() -> bool:
    """Whether this pynetdicom has the three names :func:`spool_to` relies on."""
    return (
        hasattr(_config, "STORE_RECV_CHUNKED_DATASET")
        and hasattr(dimse_messages, "NamedTemporaryFile")
        and hasattr(dimse_messages, "write_file_meta_info")
    )


def spool_to(ae: AE, directory: Path) -> bool:
    """Spool the C-STORE datasets ``ae`` receives to files in ``directory``.

    Parameters
    ----------
    ae
        The listener's AE (not yet listening).
    directory
        The folder (created if missing), in the archive's filesystem.

    Returns
    -------
    bool
        ``False`` (logged) if this pynetdicom cannot spool: the AE then receives to memory.
    """
    if not spooling_available():
        logger.warning(
            "this pynetdicom cannot receive datasets to files; the listener receives to memory"
        )
        return False
    directory.mkdir(parents=True, exist_ok=True)
    with _LOCK:
        _DIRECTORIES[ae] = directory
        if not isinstance(_config.STORE_RECV_CHUNKED_DATASET, _ForSpoolingAssociations):
            setattr(_config, "STORE_RECV_CHUNKED_DATASET", _ForSpoolingAssociations())  # noqa: B010
        if getattr(dimse_messages, "NamedTemporaryFile", None) is not _spool_file:
            setattr(dimse_messages, "NamedTemporaryFile", _spool_file)  # noqa: B010
        if getattr(dimse_messages, "write_file_meta_info", None) is not _spool_meta:
            setattr(dimse_messages, "write_file_meta_info", _spool_meta)  # noqa: B010
    return True
