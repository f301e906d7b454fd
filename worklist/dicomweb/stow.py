"""STOW-RS: store the instances of a ``multipart/related`` request (PS3.18 10.5).

Every instance goes through the same door as a C-STORE (:class:`worklist.ingest.recorder.Ingestor`):
written durably to the archive and recorded in the store before the response is built. The request
is recorded as an association (called AE ``DICOMWEB``), so that the gateway's assembler does not
complete a study while the request is still delivering it; when the request ends, its studies
are completed and queued for triage (:func:`worklist.ingest.completion.complete_studies`).

The response (DICOM JSON) lists stored instances in Referenced SOP Sequence (0008,1199) and
refused ones in Failed SOP Sequence (0008,1198) with a Failure Reason (0008,1197): ``0xC000``
cannot be parsed, ``0xA900`` Study Instance UID differs from the one in the URL, ``0xA700`` out
of space, or larger than :class:`StowLimits` allow (the part itself, or its deflated dataset
once inflated), ``0x0110`` any other processing failure. An instance already stored with other bytes
(the first copy is kept) is referenced with Warning Reason (0008,1196) ``0xB000``. The status is
200 when all were stored without warning, 202 when some were stored (with failures or warnings),
409 when none was.

The body is read from a file (:mod:`worklist.dicomweb.spool` put it there): its parts are located
in bounded steps and each is read only when it is stored, the parts stored at once holding at
most ``max_instance_bytes`` of memory between them (a larger part is refused unread).
"""

from __future__ import annotations

import logging
import os
import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from sqlalchemy.exc import SQLAlchemyError

from models.errors import TriageError
from worklist.archive import ArchiveFullError
from worklist.db.engine import Database
from worklist.dicomweb.dicomjson import DicomJson, element, tag_key
from worklist.dicomweb.errors import WrongQueryError
from worklist.dicomweb.multipart import FilePart, locate_parts
from worklist.dicomweb.stow_request import boundary_of, check_part_count, file_format
from worklist.ingest.associations import close_association, open_association, record_refusal
from worklist.ingest.completion import complete_studies
from worklist.ingest.header import (
    MAX_INFLATED_BYTES,
    InstanceHeader,
    InstanceTooLargeError,
    parse_instance,
)
from worklist.ingest.recorder import Ingestor, IngestOutcome

__all__ = [
    "CANNOT_UNDERSTAND",
    "OUT_OF_RESOURCES",
    "PROCESSING_FAILURE",
    "STUDY_MISMATCH",
    "StowLimits",
    "StowResult",
    "boundary_of",
    "file_format",
    "store_request",
]

logger = logging.getLogger(__name__)

PROCESSING_FAILURE = 0x0110
OUT_OF_RESOURCES = 0xA700
STUDY_MISMATCH = 0xA900
CANNOT_UNDERSTAND = 0xC000
COERCED = 0xB000
CALLED_AE = "DICOMWEB"
PARALLEL_PARTS = 8
"""Parts of one request stored at once, so that a group-commit ingestor batches their syncs."""


@dataclass(frozen=True)
class StowLimits:
    """What one STOW-RS instance may take (the web app's ``web_stow_*`` settings)."""

    max_instance_bytes: int = 512 * 1024 * 1024
    """Largest body part; larger: ``0xA700``, not read. Also the memory parts share."""
    max_inflated_bytes: int = MAX_INFLATED_BYTES
    """Largest inflated dataset of Deflated Explicit VR Little Endian; larger: ``0xA700``."""
    max_parts: int = 10_000
    """Most body parts in one request; more: :class:`RequestTooLargeError`, none stored."""


class _Budget:
    """Bytes of parts held in memory at once: a part waits until it fits (or none is held)."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.used = 0
        self.changed = threading.Condition()

    @contextmanager
    def hold(self, size: int) -> Iterator[None]:
        with self.changed:
            self.changed.wait_for(lambda: self.used == 0 or self.used + size <= self.total)
            self.used += size
        try:
            yield
        finally:
            with self.changed:
                self.used -= size
                self.changed.notify_all()


def _read_at(fd: int, offset: int, length: int) -> bytes:
    """Read ``length`` bytes at ``offset`` (``pread``: no shared file position between threads)."""
    pieces: list[bytes] = []
    while length > 0:
        piece = os.pread(fd, min(length, 1 << 30), offset)
        if not piece:
            break
        pieces.append(piece)
        offset += len(piece)
        length -= len(piece)
    return b"".join(pieces)


@dataclass
class StowResult:
    """The HTTP status and DICOM JSON body of a STOW-RS response, and what was stored."""

    status: int
    body: DicomJson
    stored: list[tuple[str, str]] = field(default_factory=list)
    """``(study UID, SOP instance UID)`` of each instance stored (or already there)."""
    failed: int = 0
    completed_studies: list[int] = field(default_factory=list)


@dataclass
class _Tally:
    referenced: list[dict[str, Any]] = field(default_factory=list)
    failed: list[dict[str, Any]] = field(default_factory=list)
    stored: list[tuple[str, str]] = field(default_factory=list)
    study_ids: set[int] = field(default_factory=set)
    warned: bool = False


def _item(sop_class: str, sop_uid: str) -> dict[str, Any]:
    return {
        tag_key(0x00081150): element(0x00081150, sop_class),
        tag_key(0x00081155): element(0x00081155, sop_uid),
    }


@dataclass(frozen=True)
class _Sender:
    calling_aet: str
    source: str
    association_id: str


class _Store:
    """Stores the parts of one request, tallying the outcome of each."""

    def __init__(
        self,
        ingestor: Ingestor,
        study_uid: str | None,
        base_url: str,
        sender: _Sender,
        body: BinaryIO,
        limits: StowLimits,
    ) -> None:
        self.ingestor = ingestor
        self.study_uid = study_uid
        self.base_url = base_url
        self.sender = sender
        self.fd = body.fileno()
        self.limits = limits
        self.budget = _Budget(limits.max_instance_bytes)

    def fail(
        self, tally: _Tally, reason: int, why: str, header: InstanceHeader | None = None
    ) -> _Tally:
        sender = self.sender
        sop_class = header.sop_class_uid if header else ""
        sop_uid = header.sop_uid if header else ""
        item = _item(sop_class, sop_uid)
        item[tag_key(0x00081197)] = element(0x00081197, reason)
        tally.failed.append(item)
        logger.warning("STOW-RS instance %s refused (0x%04X): %s", sop_uid or "?", reason, why)
        record_refusal(
            self.ingestor.db,
            reason=why,
            status=reason,
            calling_aet=sender.calling_aet,
            source=sender.source,
            study_uid=header.study_uid if header else "",
            sop_uid=sop_uid,
        )
        return tally

    def part(self, part: FilePart) -> _Tally:
        """Store one part (safe to call from several threads); return its own tally."""
        tally = _Tally()
        if part.content_type not in ("", "application/dicom"):
            return self.fail(tally, CANNOT_UNDERSTAND, f"part of type {part.content_type!r}")
        limit = self.limits.max_instance_bytes
        if part.length > limit:
            why = f"instance of {part.length} bytes is larger than {limit} bytes (the limit)"
            return self.fail(tally, OUT_OF_RESOURCES, why)
        with self.budget.hold(part.length):
            return self._store(tally, file_format(_read_at(self.fd, part.offset, part.length)))

    def _store(self, tally: _Tally, data: bytes) -> _Tally:
        sender = self.sender
        try:
            header, _ = parse_instance(data, max_inflated=self.limits.max_inflated_bytes)
        except InstanceTooLargeError as exc:
            return self.fail(tally, OUT_OF_RESOURCES, str(exc))
        except TriageError as exc:
            return self.fail(tally, CANNOT_UNDERSTAND, str(exc))
        if self.study_uid is not None and header.study_uid != self.study_uid:
            why = f"Study Instance UID {header.study_uid} is not {self.study_uid} of the URL"
            return self.fail(tally, STUDY_MISMATCH, why, header)
        try:
            result = self.ingestor.store(
                data,
                header,
                association_id=sender.association_id,
                calling_aet=sender.calling_aet,
                source=sender.source,
            )
        except ArchiveFullError as exc:
            return self.fail(tally, OUT_OF_RESOURCES, str(exc), header)
        except (TriageError, SQLAlchemyError, OSError) as exc:
            return self.fail(tally, PROCESSING_FAILURE, f"{type(exc).__name__}: {exc}", header)
        item = _item(header.sop_class_uid, header.sop_uid)
        url = f"{self.base_url}/studies/{header.study_uid}/series/{header.series_uid}"
        item[tag_key(0x00081190)] = element(0x00081190, f"{url}/instances/{header.sop_uid}")
        if result.outcome == IngestOutcome.KEPT_FIRST:
            item[tag_key(0x00081196)] = element(0x00081196, COERCED)
            tally.warned = True
        tally.referenced.append(item)
        tally.stored.append((header.study_uid, header.sop_uid))
        tally.study_ids.add(result.study_id)
        return tally


def _merge(tallies: list[_Tally]) -> _Tally:
    """One tally of a request from those of its parts, in part order."""
    merged = _Tally()
    for tally in tallies:
        merged.referenced += tally.referenced
        merged.failed += tally.failed
        merged.stored += tally.stored
        merged.study_ids |= tally.study_ids
        merged.warned = merged.warned or tally.warned
    return merged


def _body(tally: _Tally, study_url: str) -> DicomJson:
    body: DicomJson = {}
    if study_url:
        body[tag_key(0x00081190)] = element(0x00081190, study_url)
    if tally.failed:
        body[tag_key(0x00081198)] = {"vr": "SQ", "Value": tally.failed}
    if tally.referenced:
        body[tag_key(0x00081199)] = {"vr": "SQ", "Value": tally.referenced}
    return body


def _store_all(store: _Store, first: FilePart, rest: Iterator[FilePart]) -> _Tally:
    """Store the parts, :data:`PARALLEL_PARTS` at a time, located only as they are needed."""
    slots = threading.BoundedSemaphore(2 * PARALLEL_PARTS)
    futures: list[Future[_Tally]] = []
    with ThreadPoolExecutor(PARALLEL_PARTS, "stow") as pool:
        part: FilePart | None = first
        while part is not None:
            slots.acquire()
            future = pool.submit(store.part, part)
            future.add_done_callback(lambda _f: slots.release())
            futures.append(future)
            part = next(rest, None)
    return _merge([f.result() for f in futures])


def store_request(
    ingestor: Ingestor,
    body: BinaryIO,
    content_type: str,
    *,
    study_uid: str | None,
    base_url: str,
    calling_aet: str,
    source: str,
    limits: StowLimits | None = None,
) -> StowResult:
    """Store every instance of a STOW-RS request; complete and queue its studies.

    Parameters
    ----------
    ingestor
        The ingest door (store and archive); with group commit, the parts stored at once
        (:data:`PARALLEL_PARTS`) share one archive sync and one transaction.
    body
        The request body, a seekable file with a descriptor (the spooled body).
    content_type
        The request's Content-Type.
    study_uid
        The study of the URL (``POST /studies/{study}``), if any.
    base_url
        The DICOMweb root, for Retrieve URLs.
    calling_aet
        Recorded as the sender (the site of a radiographer's account, else ``DICOMWEB``).
    source
        The client's address.
    limits
        Per-instance limits (default :class:`StowLimits`).

    Returns
    -------
    StowResult
        The status and response body.

    Raises
    ------
    UnsupportedMediaTypeError
        If the body is not ``multipart/related; type="application/dicom"``.
    WrongQueryError
        If it has no boundary or no part.
    RequestTooLargeError
        If it has more than ``limits.max_parts`` parts (nothing is stored).
    """
    limits = limits or StowLimits()
    boundary = boundary_of(content_type)
    check_part_count(body, boundary, limits.max_parts)  # before any is stored: all or none
    parts = locate_parts(body, boundary)
    first = next(parts, None)
    if first is None:
        raise WrongQueryError("the request has no body part")
    db: Database = ingestor.db
    sender = _Sender(calling_aet[:16], source, str(uuid.uuid4()))
    open_association(
        db, sender.association_id, calling_aet=sender.calling_aet, called_aet=CALLED_AE, peer=source
    )
    store = _Store(ingestor, study_uid, base_url, sender, body, limits)
    outcome = "aborted"
    try:
        tally = _store_all(store, first, parts)
        outcome = "released"
    finally:
        close_association(db, sender.association_id, outcome)
    completed = complete_studies(db, tally.study_ids, actor="stow-rs")
    studies = {s for s, _ in tally.stored}
    uid = study_uid or (next(iter(studies)) if len(studies) == 1 else "")
    status = 409 if not tally.referenced else 202 if tally.failed or tally.warned else 200
    return StowResult(
        status=status,
        body=_body(tally, f"{base_url}/studies/{uid}" if uid else ""),
        stored=tally.stored,
        failed=len(tally.failed),
        completed_studies=completed,
    )
