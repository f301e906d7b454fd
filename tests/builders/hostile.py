"""Hostile DICOM instances: sequences nested thousands deep, deflate bombs, huge headers.

Built by splicing raw bytes into an ordinary instance, because pydicom itself cannot write (or
read back) such objects without running out of recursion.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

from pydicom.dataset import Dataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_dataset, write_file_meta_info
from pydicom.uid import DeflatedExplicitVRLittleEndian, ExplicitVRLittleEndian, generate_uid

from tests.builders.dicom import encode, make_dataset
from worklist.db.engine import Database
from worklist.db.schema import Instance, Series, Study

_CONTENT_SEQUENCE = struct.pack("<HH", 0x0040, 0xA730) + b"SQ\0\0"
_UNDEFINED = 0xFFFFFFFF
_ITEM = struct.pack("<HH", 0xFFFE, 0xE000)
_ITEM_END = struct.pack("<HHI", 0xFFFE, 0xE00D, 0)
_SEQ_END = struct.pack("<HHI", 0xFFFE, 0xE0DD, 0)


def _nested(depth: int, defined_lengths: bool) -> bytes:
    """Return a Content Sequence nested ``depth`` deep (Explicit VR Little Endian)."""
    if defined_lengths:
        # Each level adds a sequence header (12 bytes) and an item header (8 bytes).
        parts = []
        for level in range(depth, 0, -1):
            inner = 20 * (level - 1)
            parts.append(_CONTENT_SEQUENCE + struct.pack("<I", 8 + inner))
            parts.append(_ITEM + struct.pack("<I", inner))
        return b"".join(parts)
    opening = (
        _CONTENT_SEQUENCE + struct.pack("<I", _UNDEFINED) + _ITEM + struct.pack("<I", _UNDEFINED)
    )
    return opening * depth + (_ITEM_END + _SEQ_END) * depth


def nested_instance(depth: int, *, defined_lengths: bool) -> tuple[Dataset, bytes]:
    """Return an instance whose Content Sequence is nested ``depth`` deep, and its file bytes.

    Parameters
    ----------
    depth : int
        Nesting depth (1: one sequence with one empty item).
    defined_lengths : bool
        Encode sequences and items with defined lengths (else undefined, with delimiters).

    Returns
    -------
    tuple of (pydicom.dataset.Dataset, bytes)
        The instance without the nesting (for its UIDs), and the file (Explicit VR Little
        Endian, preamble and file meta) with it.
    """
    ds = make_dataset(study_uid=generate_uid(), size=8)
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.ContentSequence = [Dataset()]
    data = encode(ds)
    start = data.index(_CONTENT_SEQUENCE)
    (length,) = struct.unpack("<I", data[start + 8 : start + 12])
    # pydicom writes an undefined-length sequence and item: header, item, item end, sequence end.
    end = start + 12 + (8 + 8 + 8 if length == _UNDEFINED else length)
    del ds.ContentSequence
    return ds, data[:start] + _nested(depth, defined_lengths) + data[end:]


def dataset_part(data: bytes) -> bytes:
    """Return the dataset of a DICOM file's bytes, without preamble and file meta (as in P-DATA).

    Parameters
    ----------
    data : bytes
        Preamble, ``DICM``, file meta (starting with its group length) and dataset.

    Returns
    -------
    bytes
        The dataset.
    """
    (group_length,) = struct.unpack("<I", data[140:144])
    return data[144 + group_length :]


def deflate_bomb(inflated: int) -> tuple[Dataset, bytes]:
    """Return an instance in Deflated Explicit VR Little Endian that inflates to ``inflated`` bytes.

    An ordinary small instance followed by Data Set Trailing Padding (FFFC,FFFC) of zeros
    (about a thousand to one). The zeros are deflated once per MiB, each MiB ending with a full
    flush (byte-aligned, no reference to what came before), so that one compressed MiB repeated
    is a valid stream: a 4 GiB bomb takes a fraction of a second and never the inflated size.

    Parameters
    ----------
    inflated : int
        Bytes of the inflated dataset (at least a few hundred; at most about 4 GiB).

    Returns
    -------
    tuple of (pydicom.dataset.Dataset, bytes)
        The instance without the padding (for its UIDs), and the file: preamble, file meta and
        the deflated dataset.
    """
    ds = make_dataset(study_uid=generate_uid(), size=8)
    plain = DicomBytesIO()
    plain.is_little_endian, plain.is_implicit_VR = True, False
    write_dataset(plain, ds)
    head = plain.getvalue()
    padding = max(0, inflated - len(head) - 12)
    head += struct.pack("<HH", 0xFFFC, 0xFFFC) + b"OB\0\0" + struct.pack("<I", padding)
    deflater = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    parts = [deflater.compress(head), deflater.flush(zlib.Z_FULL_FLUSH)]
    mebibyte = 1024 * 1024
    block = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    one = block.compress(bytes(mebibyte)) + block.flush(zlib.Z_FULL_FLUSH)
    parts.append(one * (padding // mebibyte))
    tail = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    parts.append(tail.compress(bytes(padding % mebibyte)) + tail.flush())
    meta = DicomBytesIO()
    file_meta = ds.file_meta
    file_meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian
    write_file_meta_info(meta, file_meta, enforce_standard=True)
    return ds, b"\0" * 128 + b"DICM" + meta.getvalue() + b"".join(parts)


def huge_header(rows: int, columns: int) -> bytes:
    """Return a file whose header announces ``rows`` x ``columns`` 16-bit pixels (few are there).

    Parameters
    ----------
    rows, columns : int
        The announced size (up to 65535 each: Rows and Columns are US).

    Returns
    -------
    bytes
        The file (Explicit VR Little Endian); its Pixel Data holds 8 x 8 pixels.
    """
    ds = make_dataset(study_uid=generate_uid(), size=8)
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.Rows, ds.Columns = rows, columns
    return encode(ds)


def overwrite_instance(db: Database, archive: Path, study_uid: str, data: bytes) -> list[str]:
    """Replace the file of a study's first instance with ``data`` (a hostile file, say).

    Parameters
    ----------
    db : worklist.db.engine.Database
        The store.
    archive : pathlib.Path
        The archive the instance's path is relative to.
    study_uid : str
        The study (one from :func:`seed_study`).
    data : bytes
        The new file's bytes.

    Returns
    -------
    list of str
        Its Study, Series and SOP Instance UIDs (for DICOMweb URLs).
    """
    with db.read() as session:
        row = session.query(Study).filter_by(study_instance_uid=study_uid).one()
        instance = session.query(Instance).filter_by(study_id=row.id).first()
        assert instance is not None, "the study has no instance"
        series = session.get(Series, instance.series_id)
        assert series is not None
        (archive / instance.path).write_bytes(data)
        return [study_uid, series.series_instance_uid, instance.sop_instance_uid]
