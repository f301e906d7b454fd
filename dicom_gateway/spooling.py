"""Spool files of C-STORE datasets that no handler will take, closed and removed at once.

Listener processes receive datasets to temporary files
(:func:`dicom_gateway.receiving.use_receive_dir`: pynetdicom's documented
``STORE_RECV_CHUNKED_DATASET`` option). pynetdicom removes such a file after the C-STORE
handler; :func:`discard_spooled` closes and removes the file of a dataset cut off by an abort
or a closed connection, or of a request pynetdicom ignores. It only reads pynetdicom's message
(nothing of pynetdicom is replaced).
"""

from __future__ import annotations

import contextlib
from pathlib import Path

__all__ = ["discard_spooled"]


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
