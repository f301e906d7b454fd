"""WADO-RS: find the instances of a resource, choose their representation, build metadata.

Instances are retrieved as stored (byte for byte) when the Accept header allows their transfer
syntax (no ``transfer-syntax`` parameter, ``*``, or the stored one); the body is streamed by the
web layer. Metadata is each instance's header in the DICOM JSON model, with pixel data (and any
other binary value over 64 KiB) replaced by a BulkDataURI that :func:`bulk_value` answers.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pydicom
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.uid import UID
from sqlalchemy import select
from sqlalchemy.orm import Session

from worklist.db.schema import Instance, Series, Study
from worklist.dicomweb.dicomjson import DicomJson, tag_key
from worklist.dicomweb.errors import NotAcceptableError, ResourceNotFoundError
from worklist.dicomweb.multipart import media_type
from worklist.reading.imagelimits import ImageLimits, check_inflated

__all__ = [
    "BULK_THRESHOLD",
    "PIXEL_TAGS",
    "Located",
    "Wanted",
    "bulk_value",
    "check_dicom_acceptable",
    "instance_url",
    "locate",
    "metadata",
    "parse_accept",
    "read_dataset",
]

logger = logging.getLogger(__name__)

BULK_THRESHOLD = 64 * 1024
"""Binary values longer than this are sent as a BulkDataURI in metadata."""

PIXEL_TAGS = (0x7FE00010, 0x7FE00008, 0x7FE00009)


@dataclass(frozen=True)
class Located:
    """One stored instance of a resource."""

    study_uid: str
    series_uid: str
    sop_uid: str
    sop_class_uid: str
    transfer_syntax_uid: str
    path: str


@dataclass(frozen=True)
class Wanted:
    """One acceptable representation from an Accept header.

    ``media`` is the part's media type (``application/dicom``, ``application/octet-stream``,
    ``image/jls``, ``*/*``...); ``transfer_syntax`` is ``None`` when not given, ``"*"`` for any.
    """

    media: str
    transfer_syntax: str | None


def parse_accept(header: str, default: str) -> list[Wanted]:
    """Return the representations an Accept header allows, in its order.

    ``multipart/related; type="X"; transfer-syntax=Y`` gives ``(X, Y)``; a bare media type gives
    itself; an empty header gives ``default``.
    """
    wanted: list[Wanted] = []
    for item in header.split(","):
        main, params = media_type(item.strip())
        if not main:
            continue
        media = params.get("type", default).lower() if main == "multipart/related" else main
        wanted.append(Wanted(media, params.get("transfer-syntax")))
    return wanted or [Wanted(default, None)]


def instance_url(base: str, located: Located) -> str:
    """Return the WADO-RS URL of an instance."""
    return (
        f"{base}/studies/{located.study_uid}/series/{located.series_uid}"
        f"/instances/{located.sop_uid}"
    )


def locate(
    session: Session, study_uid: str, series_uid: str | None = None, sop_uid: str | None = None
) -> list[Located]:
    """Return the stored instances of a study, series or instance, in series order.

    Raises
    ------
    ResourceNotFoundError
        If nothing matches.
    """
    query = (
        select(
            Study.study_instance_uid,
            Series.series_instance_uid,
            Instance.sop_instance_uid,
            Instance.sop_class_uid,
            Instance.transfer_syntax_uid,
            Instance.path,
        )
        .join(Series, Instance.series_id == Series.id)
        .join(Study, Instance.study_id == Study.id)
        .where(Study.study_instance_uid == study_uid)
        .order_by(Series.id, Instance.id)
    )
    if series_uid is not None:
        query = query.where(Series.series_instance_uid == series_uid)
    if sop_uid is not None:
        query = query.where(Instance.sop_instance_uid == sop_uid)
    found = [Located(*row) for row in session.execute(query).all()]
    if not found:
        what = "/".join(u for u in (study_uid, series_uid, sop_uid) if u)
        raise ResourceNotFoundError(f"no stored instance under {what}")
    return found


def check_dicom_acceptable(accept: list[Wanted], instances: list[Located]) -> None:
    """Check that the instances may be sent as stored (``application/dicom``).

    Raises
    ------
    NotAcceptableError
        If every acceptable representation asks for another transfer syntax (this server does
        not transcode whole instances) or another media type.
    """
    stored = {i.transfer_syntax_uid for i in instances}
    for want in accept:
        if want.media not in ("application/dicom", "*/*", "application/*"):
            continue
        if want.transfer_syntax in (None, "*") or stored == {want.transfer_syntax}:
            return
    raise NotAcceptableError(
        "instances are sent as stored: accept application/dicom with transfer-syntax=* or "
        f"{' or '.join(sorted(stored))}"
    )


def read_dataset(path: Path, *, defer: bool = False) -> Dataset:
    """Read an archived file (large values left on disk until used when ``defer``).

    A deflated dataset is first inflated in bounded steps and refused past the default
    :class:`~worklist.reading.imagelimits.ImageLimits` (pydicom inflates it whole).

    Raises
    ------
    ResourceNotFoundError
        If the file is missing or unreadable.
    ImageTooLargeError
        If its deflated dataset inflates past the limit.
    """
    try:
        check_inflated(path, ImageLimits())
        return pydicom.dcmread(path, defer_size=1024 if defer else None)
    except (OSError, InvalidDicomError) as exc:
        raise ResourceNotFoundError(f"instance file cannot be read: {exc}") from exc


def _pixel_vr(ds: Dataset, tag: int) -> str:
    raw = ds.get_item(tag)
    vr = getattr(raw, "VR", None)
    if vr and vr != "UN":
        return str(vr)
    if tag != 0x7FE00010:
        return "OF" if tag == 0x7FE00008 else "OD"
    encapsulated = UID(str(ds.file_meta.get("TransferSyntaxUID", ""))).is_encapsulated
    return "OB" if encapsulated or int(ds.get("BitsAllocated", 16)) <= 8 else "OW"


def metadata(archive_root: Path, located: Located, base: str) -> DicomJson:
    """Return an instance's metadata in the DICOM JSON model (bulk data by reference).

    Parameters
    ----------
    archive_root
        The archive.
    located
        The instance.
    base
        The DICOMweb root URL (for BulkDataURIs).

    Returns
    -------
    dict
        The dataset, ``Dataset.from_json`` readable.
    """
    ds = read_dataset(archive_root / located.path, defer=True)
    url = instance_url(base, located)
    pixels = {tag: _pixel_vr(ds, tag) for tag in PIXEL_TAGS if tag in ds}
    for tag in pixels:
        del ds[tag]

    def bulk(elem: DataElement) -> str:
        return f"{url}/bulk/{tag_key(int(elem.tag))}"

    out = _to_json(ds, bulk)
    for tag, vr in pixels.items():
        out[tag_key(tag)] = {"vr": vr, "BulkDataURI": f"{url}/bulk/{tag_key(tag)}"}
    out[tag_key(0x00083002)] = {"vr": "UI", "Value": [located.transfer_syntax_uid]}
    return dict(sorted(out.items()))


def _to_json(ds: Dataset, bulk: Callable[[DataElement], str]) -> DicomJson:
    """Return ``ds`` in DICOM JSON, leaving out (and logging) an element that does not decode.

    pydicom's ``Dataset.to_json_dict`` raises on the first such element (an unknown VR, a value
    of the wrong length), which the lenient header check stores as received.
    """
    out: DicomJson = {}
    for tag in list(ds.keys()):  # iterating a Dataset would decode every element
        try:
            out[tag_key(int(tag))] = ds[tag].to_json_dict(bulk, BULK_THRESHOLD)
        except Exception as exc:  # pydicom raises many kinds on a misleading element
            logger.info(
                "tolerated: element %s left out of the metadata (%s: %s)",
                tag_key(int(tag)),
                type(exc).__name__,
                exc,
            )
    return out


def _elements(ds: Dataset) -> Iterator[DataElement]:
    """Yield every element depth first, as ``Dataset.iterall``, skipping one that does not decode.

    ``iterall`` stops at the first element pydicom cannot read (an unknown VR: fuzz-found).
    """
    for key in list(ds.keys()):  # iterating a Dataset would decode every element
        try:
            elem = ds[key]
        except Exception as exc:  # pydicom raises many kinds on a misleading element
            logger.info("tolerated: element %s does not decode (%s)", tag_key(int(key)), exc)
            continue
        yield elem
        if elem.VR == "SQ":
            for item in elem.value:
                yield from _elements(item)


def _find(ds: Dataset, tag: int) -> DataElement | None:
    if tag in ds:
        return ds[tag]
    for elem in _elements(ds):
        if elem.tag == tag:
            return elem
    return None


def bulk_value(archive_root: Path, located: Located, tag: int) -> bytes:
    """Return the raw value of a bulk data element (what a BulkDataURI points to).

    Raises
    ------
    ResourceNotFoundError
        If the instance has no such element.
    """
    ds = read_dataset(archive_root / located.path)
    elem = _find(ds, tag)
    if elem is None or not isinstance(elem.value, bytes):
        raise ResourceNotFoundError(f"instance {located.sop_uid} has no bulk data {tag:08X}")
    return elem.value
