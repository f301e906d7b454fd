"""Parse the header of a received instance without decoding its pixel data.

:func:`parse_instance` reads a DICOM file held in memory (preamble, file meta and dataset, as
the listener or STOW-RS receives it), checks that it is complete (no element shorter than its
declared length, encapsulated pixel data present when the transfer syntax is a compressed one)
and returns the fields the store records. Pixel data is neither decoded nor copied: pydicom
skips elements longer than :data:`DEFER_BYTES` and only their length is checked.
"""

from __future__ import annotations

import io
import logging
import struct
import zlib
from dataclasses import asdict, dataclass
from typing import Any

from pydicom import dcmread
from pydicom.datadict import dictionary_VR
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.pixels.utils import get_expected_length
from pydicom.uid import UID, DeflatedExplicitVRLittleEndian

from models.errors import Invalid, Unavailable
from worklist.archive import InvalidUIDError, validate_uid
from worklist.domain import StoreError

__all__ = [
    "DEFER_BYTES",
    "MAX_INFLATED_BYTES",
    "MAX_NESTING_DEPTH",
    "InstanceHeader",
    "InstanceTooLargeError",
    "UndecodableInstanceError",
    "parse_instance",
    "referral_priority",
]

logger = logging.getLogger(__name__)

_PIXEL_TAGS = (0x7FE00010, 0x7FE00008, 0x7FE00009)
_UNDEFINED = 0xFFFFFFFF
_PRIORITY_TAG = 0x00401003  # Requested Procedure Priority

MAX_NESTING_DEPTH = 32
"""Default deepest sequence nesting accepted (a top-level sequence is depth 1).

One policy for defined and undefined lengths: deeper is refused as undecodable, whether pydicom
would have parsed it (defined lengths are parsed lazily) or run out of recursion (undefined
lengths are parsed while reading). Real objects (SR content trees, RT plans) nest far less.
"""


class UndecodableInstanceError(StoreError, Invalid):
    """The received bytes are not a complete, readable DICOM dataset."""


class InstanceTooLargeError(StoreError, Unavailable):
    """The instance, or its deflated dataset once inflated, is larger than the listener accepts."""


@dataclass(frozen=True)
class InstanceHeader:
    """What the store records about one instance (DICOM's own terms)."""

    study_uid: str
    series_uid: str
    sop_uid: str
    sop_class_uid: str
    transfer_syntax_uid: str
    patient_id: str = ""
    patient_name: str = ""
    patient_birth_date: str = ""
    patient_sex: str = ""
    accession_number: str = ""
    study_date: str = ""
    study_time: str = ""
    study_description: str = ""
    referral_priority: str = ""
    modality: str = ""
    body_part: str = ""
    series_number: str = ""
    series_description: str = ""
    instance_number: str = ""
    view_position: str = ""

    def study_fields(self) -> dict[str, str]:
        """Return the values of the study-level columns of ``studies``."""
        keys = (
            "patient_id",
            "patient_name",
            "patient_birth_date",
            "patient_sex",
            "accession_number",
            "study_date",
            "study_time",
            "study_description",
            "referral_priority",
        )
        values = asdict(self)
        return {k: values[k] for k in keys}


_LIMITS = {
    "patient_id": 64,
    "patient_name": 324,
    "patient_birth_date": 8,
    "patient_sex": 16,
    "accession_number": 16,
    "study_date": 8,
    "study_time": 16,
    "study_description": 64,
    "referral_priority": 16,
    "modality": 16,
    "body_part": 64,
    "series_number": 12,
    "series_description": 64,
    "instance_number": 12,
    "view_position": 16,
}


def _text(ds: Dataset, keyword: str, limit: int) -> str:
    """Return an element as text; lenient: a value that does not decode is recorded as ''."""
    try:
        value = ds.get(keyword)
    except Exception as exc:
        logger.info("tolerated: %s does not decode (%s)", keyword, exc)
        return ""
    if value is None:
        return ""
    if isinstance(value, list | tuple) or type(value).__name__ == "MultiValue":
        value = "\\".join(str(v) for v in value)
    return str(value).strip()[:limit]


def referral_priority(ds: Dataset) -> str:
    """Return Requested Procedure Priority (0040,1003) as received, or ``''``.

    Looked up first in Request Attributes Sequence items, then at the top level. Priority
    (0000,0700) is a DIMSE command field, not a dataset attribute, and is ignored.
    """
    try:
        for item in ds.get("RequestAttributesSequence") or []:
            value = _text(item, "RequestedProcedurePriority", 16)
            if value:
                return value
    except Exception as exc:
        logger.info("tolerated: Request Attributes Sequence does not decode (%s)", exc)
    return _text(ds, "RequestedProcedurePriority", 16)


def _check_complete(ds: Dataset, transfer_syntax: UID, size: int | None) -> None:
    """Refuse elements shorter than their length (``size``: bytes read, for deferred ones)."""
    for tag, elem in ds._dict.items():
        if not isinstance(elem, RawDataElement) or elem.length == _UNDEFINED:
            continue
        if elem.value is None:  # deferred (not copied): its bytes must all be there
            available = elem.length if size is None else size - elem.value_tell
            if available < elem.length:
                raise UndecodableInstanceError(
                    f"truncated dataset: element {tag:08X} has {max(available, 0)} of "
                    f"{elem.length} bytes"
                )
        elif len(elem.value) != elem.length:
            raise UndecodableInstanceError(
                f"truncated dataset: element {tag:08X} has {len(elem.value)} of {elem.length} bytes"
            )
    if transfer_syntax.is_encapsulated and not any(t in ds._dict for t in _PIXEL_TAGS):
        raise UndecodableInstanceError(
            f"truncated dataset: transfer syntax {transfer_syntax.name} but no pixel data"
        )
    if not transfer_syntax.is_encapsulated and 0x7FE00010 in ds._dict:
        _check_native_pixel_length(ds)


def _check_native_pixel_length(ds: Dataset) -> None:
    """Refuse native Pixel Data shorter than Rows x Columns x samples x bits x frames."""
    elem = ds.get_item(0x7FE00010, keep_deferred=True)
    if isinstance(elem, RawDataElement) and elem.value is None:  # deferred, checked complete
        actual = elem.length
    else:
        actual = len(elem.value) if elem.value is not None else 0
    try:
        expected = get_expected_length(ds)
    except (AttributeError, KeyError, TypeError, ValueError) as exc:
        logger.info("tolerated: pixel description incomplete (%s)", exc)
        return
    if not isinstance(expected, int):  # e.g. Number of Frames '1A' (a bad IS) multiplies a str
        logger.info(
            "tolerated: pixel description is not numeric (Number of Frames %r); "
            "Pixel Data length not checked",
            ds.get("NumberOfFrames"),
        )
        return
    if actual < expected:
        raise UndecodableInstanceError(
            f"truncated dataset: Pixel Data has {actual} bytes, the image needs {expected}"
        )


MAX_INFLATED_BYTES = 512 * 1024 * 1024
"""Default largest inflated dataset of Deflated Explicit VR Little Endian (a deflate bomb's cap)."""

_INFLATE_CHUNK = 1024 * 1024
_DEFLATED = str(DeflatedExplicitVRLittleEndian).encode()

DEFER_BYTES = 64 * 1024
"""Elements longer than this (pixel data) are not copied out of the received bytes: pydicom
skips them (``defer_size``) and only their length is checked against the bytes received."""


def _meta_end(data: bytes) -> int:
    """Return where the dataset starts: after preamble, ``DICM`` and the file meta group."""
    if data[128:132] != b"DICM" or data[132:136] != b"\x02\x00\x00\x00":
        raise UndecodableInstanceError("dataset does not decode: no file meta group length")
    (group_length,) = struct.unpack("<I", data[140:144])
    return 144 + int(group_length)


def _check_inflated_size(data: bytes, limit: int) -> None:
    """Refuse a deflated dataset that inflates beyond ``limit``, inflating at most that much.

    The dataset is inflated in bounded steps and thrown away: memory stays at one step
    whatever the compression ratio (a 4 MiB deflate bomb can claim 4 GiB).
    """
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    pending, total = data[_meta_end(data) :], 0
    try:
        while pending and not inflater.eof:
            total += len(inflater.decompress(pending, _INFLATE_CHUNK))
            if total > limit:
                raise InstanceTooLargeError(
                    f"deflated dataset inflates to more than {limit} bytes "
                    f"({len(data)} bytes received)"
                )
            pending = inflater.unconsumed_tail
    except zlib.error as exc:
        raise UndecodableInstanceError(f"deflated dataset does not inflate: {exc}") from exc


def _is_deflated(data: bytes) -> bool:
    """Whether the file meta names Deflated Explicit VR Little Endian (read only if it may)."""
    try:
        end = _meta_end(data)
    except UndecodableInstanceError:
        return False  # dcmread will say what is wrong with the file
    if _DEFLATED not in data[144:end]:  # the usual case: no need to parse the meta group
        return False
    return _transfer_syntax(data) == DeflatedExplicitVRLittleEndian


def _transfer_syntax(data: bytes) -> str:
    """Return the Transfer Syntax UID of the file meta ('' if it cannot be read)."""
    try:
        meta = dcmread(io.BytesIO(data[: _meta_end(data)]), force=False)
        return str(meta.file_meta.get("TransferSyntaxUID", ""))
    except Exception:  # dcmread itself will say what is wrong with the file
        return ""


def _sequence_vr(ds: Dataset, tag: int) -> bool:
    raw = ds.get_item(tag, keep_deferred=True)
    vr = getattr(raw, "VR", None)
    if vr is None:  # implicit VR: the dictionary's (private and unknown tags are not sequences)
        try:
            vr = dictionary_VR(tag)
        except KeyError:
            return False
    return vr == "SQ"


def _check_depth(ds: Dataset, max_depth: int) -> None:
    """Refuse sequences nested deeper than ``max_depth``, walking without recursion."""
    stack: list[tuple[Dataset, int]] = [(ds, 1)]
    while stack:
        current, depth = stack.pop()
        for tag in list(current.keys()):
            if not _sequence_vr(current, tag):
                continue
            if depth > max_depth:
                raise UndecodableInstanceError(_too_deep(max_depth))
            stack.extend((item, depth + 1) for item in current[tag].value)


def _too_deep(max_depth: int) -> str:
    return f"sequences nested deeper than {max_depth} levels"


def parse_instance(
    data: bytes, *, max_depth: int = MAX_NESTING_DEPTH, max_inflated: int = MAX_INFLATED_BYTES
) -> tuple[InstanceHeader, Dataset]:
    """Parse and check a received DICOM file held in memory.

    Parameters
    ----------
    data
        Preamble, file meta information and dataset.
    max_depth
        Deepest sequence nesting accepted (:data:`MAX_NESTING_DEPTH` by default).
    max_inflated
        Largest inflated dataset of a deflated transfer syntax (:data:`MAX_INFLATED_BYTES`).

    Returns
    -------
    tuple of InstanceHeader and Dataset
        The recorded fields, and the parsed dataset (pixel data left compressed; elements
        longer than :data:`DEFER_BYTES` are read from ``data`` only when accessed).

    Raises
    ------
    UndecodableInstanceError
        If the bytes do not parse, the dataset is truncated, or its sequences are nested deeper
        than ``max_depth``.
    InstanceTooLargeError
        If a deflated dataset inflates to more than ``max_inflated`` bytes.
    InvalidUIDError
        If the Study, Series or SOP Instance UID, or the SOP Class UID, is missing or invalid.
    """
    deflated = _is_deflated(data)
    if deflated:
        _check_inflated_size(data, max_inflated)
    try:  # a deflated dataset is read from its inflated copy: nothing deferred there
        ds = dcmread(io.BytesIO(data), force=False, defer_size=None if deflated else DEFER_BYTES)
    except RecursionError as exc:  # undefined-length sequences are parsed while reading
        raise UndecodableInstanceError(_too_deep(max_depth)) from exc
    except Exception as exc:
        reason = f"dataset does not decode: {type(exc).__name__}: {exc}"
        raise UndecodableInstanceError(reason) from exc
    transfer_syntax = UID(str(ds.file_meta.get("TransferSyntaxUID", "")))
    try:
        _check_depth(ds, max_depth)
        _check_complete(ds, transfer_syntax, None if deflated else len(data))
    except UndecodableInstanceError:
        raise
    except RecursionError as exc:
        raise UndecodableInstanceError(_too_deep(max_depth)) from exc
    except Exception as exc:  # a value that misleads, a sequence that does not decode
        reason = f"dataset cannot be checked: {type(exc).__name__}: {exc}"
        raise UndecodableInstanceError(reason) from exc
    try:
        sop_uid = validate_uid(ds.get("SOPInstanceUID"), "SOP Instance UID")
        sop_class = validate_uid(ds.get("SOPClassUID"), "SOP Class UID")
        study_uid = validate_uid(ds.get("StudyInstanceUID"), "Study Instance UID")
        series_uid = validate_uid(ds.get("SeriesInstanceUID"), "Series Instance UID")
    except InvalidUIDError:
        raise
    except Exception as exc:  # a UID element whose VR or length misleads pydicom (fuzz-found)
        reason = f"UIDs do not decode: {type(exc).__name__}: {exc}"
        raise UndecodableInstanceError(reason) from exc
    fields: dict[str, Any] = {
        "patient_id": _text(ds, "PatientID", _LIMITS["patient_id"]),
        "patient_name": _text(ds, "PatientName", _LIMITS["patient_name"]),
        "patient_birth_date": _text(ds, "PatientBirthDate", _LIMITS["patient_birth_date"]),
        "patient_sex": _text(ds, "PatientSex", _LIMITS["patient_sex"]),
        "accession_number": _text(ds, "AccessionNumber", _LIMITS["accession_number"]),
        "study_date": _text(ds, "StudyDate", _LIMITS["study_date"]),
        "study_time": _text(ds, "StudyTime", _LIMITS["study_time"]),
        "study_description": _text(ds, "StudyDescription", _LIMITS["study_description"]),
        "referral_priority": referral_priority(ds),
        "modality": _text(ds, "Modality", _LIMITS["modality"]),
        "body_part": _text(ds, "BodyPartExamined", _LIMITS["body_part"]),
        "series_number": _text(ds, "SeriesNumber", _LIMITS["series_number"]),
        "series_description": _text(ds, "SeriesDescription", _LIMITS["series_description"]),
        "instance_number": _text(ds, "InstanceNumber", _LIMITS["instance_number"]),
        "view_position": _text(ds, "ViewPosition", _LIMITS["view_position"]),
    }
    header = InstanceHeader(
        study_uid=study_uid,
        series_uid=series_uid,
        sop_uid=sop_uid,
        sop_class_uid=sop_class,
        transfer_syntax_uid=str(transfer_syntax),
        **fields,
    )
    return header, ds
