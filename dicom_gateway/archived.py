"""Instances sent from the archive as they are stored, read in chunks, never decoded.

pynetdicom's C-GET and C-MOVE service classes take each sub-operation's instance as a
:class:`~pydicom.dataset.Dataset`, while :meth:`pynetdicom.association.Association.send_c_store`
streams a file byte for byte only when it is given the file's path (with
``_config.STORE_SEND_CHUNKED_DATASET``). :class:`ArchivedInstance` is a Dataset that carries
only the UIDs pynetdicom reads and the file's path; :func:`install` wraps ``send_c_store`` once
so that such an instance is sent from its path. Every other dataset is sent as before.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import UID
from pynetdicom import _config
from pynetdicom.association import Association

__all__ = ["ArchivedInstance", "install"]

logger = logging.getLogger(__name__)

_lock = threading.Lock()
_original_send: Any = None


class ArchivedInstance(Dataset):
    """An archived instance to send: its SOP Class and Instance UIDs, transfer syntax and path.

    Parameters
    ----------
    sop_class_uid, sop_instance_uid, transfer_syntax_uid
        As recorded by the ingest.
    path
        The archive file (DICOM file format, as received).
    """

    def __init__(
        self, sop_class_uid: str, sop_instance_uid: str, transfer_syntax_uid: str, path: Path
    ) -> None:
        super().__init__()
        self.SOPClassUID = UID(sop_class_uid)
        self.SOPInstanceUID = UID(sop_instance_uid)
        self.file_meta = FileMetaDataset()
        self.file_meta.TransferSyntaxUID = UID(transfer_syntax_uid)
        self.archive_path = path


def _send_c_store(self: Association, dataset: Any, *args: Any, **kwargs: Any) -> Dataset:
    if isinstance(dataset, ArchivedInstance):
        if not dataset.archive_path.is_file():
            logger.warning(
                "instance %s not sent: its archive file %s is missing",
                dataset.SOPInstanceUID,
                dataset.archive_path,
            )
        dataset = dataset.archive_path
    result: Dataset = _original_send(self, dataset, *args, **kwargs)
    return result


def install() -> None:
    """Send :class:`ArchivedInstance` objects from their files, in chunks (idempotent).

    Also sets pynetdicom's ``STORE_SEND_CHUNKED_DATASET``: a C-STORE of a file path sends the
    file's encoded dataset as it is, without decoding it.
    """
    global _original_send
    with _lock:
        if _original_send is None:
            _original_send = Association.send_c_store
            Association.send_c_store = _send_c_store  # type: ignore[method-assign]
        _config.STORE_SEND_CHUNKED_DATASET = True
