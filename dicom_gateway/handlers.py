"""The listener's event handlers: thin, with their dependencies bound as arguments.

``handle_store`` reads the encoded dataset as received (no pixel decoding), checks it, hands it
to the :class:`~worklist.ingest.recorder.Ingestor` (durable file + committed row) and then answers
Success. Every refusal gets a named status (one table, :data:`REFUSALS`, from the exception to
the status; anything else is a Processing Failure), a log line with the reason and an
``instance.refused`` event. The association handlers record when a delivering association ends
and assemble its studies at once (CR/DX are complete at release).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from io import BytesIO
from pathlib import Path
from typing import cast

from pydicom.uid import DeflatedExplicitVRLittleEndian
from pynetdicom.association import Association
from pynetdicom.dimse_primitives import C_STORE
from pynetdicom.events import Event

from dicom_gateway.assembler import Assembler
from dicom_gateway.memory import COST_FACTOR, MemoryBudget
from dicom_gateway.receiving import read_instance, received_path
from dicom_gateway.refusals import RefusalLog
from dicom_gateway.spooling import discard_spooled
from dicom_gateway.statuses import (
    CANNOT_UNDERSTAND,
    DATASET_MISMATCH,
    OUT_OF_RESOURCES,
    PROCESSING_FAILURE,
    SUCCESS,
    status_name,
)
from models.errors import Invalid
from worklist.archive import ArchiveFullError, InvalidUIDError, validate_uid
from worklist.audit import EventCategory, record_event
from worklist.db.engine import Database
from worklist.db.outage import outage_reason, store_down
from worklist.ingest.associations import close_association, open_association, record_refusal
from worklist.ingest.header import (
    MAX_INFLATED_BYTES,
    MAX_NESTING_DEPTH,
    InstanceHeader,
    InstanceTooLargeError,
    UndecodableInstanceError,
    parse_instance,
)
from worklist.ingest.recorder import Ingestor

__all__ = [
    "REFUSALS",
    "UNEXPECTED",
    "CommandMismatchError",
    "DatasetMismatchError",
    "HandlerContext",
    "UnencodableError",
    "handle_aborted",
    "handle_conn_close",
    "handle_rejected",
    "handle_released",
    "handle_store",
]

logger = logging.getLogger(__name__)


class UnencodableError(Invalid):
    """pynetdicom could not encode the received dataset with its file meta."""


class DatasetMismatchError(Invalid):
    """The dataset's SOP Class UID differs from the one the C-STORE negotiated."""


class CommandMismatchError(Invalid):
    """The dataset's SOP Instance UID differs from the C-STORE command's."""


REFUSALS: dict[type[Exception], int] = {
    UnencodableError: CANNOT_UNDERSTAND,
    UndecodableInstanceError: CANNOT_UNDERSTAND,
    InvalidUIDError: CANNOT_UNDERSTAND,
    CommandMismatchError: CANNOT_UNDERSTAND,
    DatasetMismatchError: DATASET_MISMATCH,
    ArchiveFullError: OUT_OF_RESOURCES,
    InstanceTooLargeError: OUT_OF_RESOURCES,
    # And whatever worklist.db.engine.store_down says means the store or the archive cannot be
    # reached now (PostgreSQL restarting, SQLite locked past its busy timeout, an I/O error):
    # 0xA700, which a modality retries later.
}
"""The C-STORE status of each refusal the handler expects (a subclass takes its base's status).

Any other exception is unexpected: answered with :data:`UNEXPECTED`, never raised to pynetdicom.
"""

UNEXPECTED: int = PROCESSING_FAILURE
"""The status of an exception not in :data:`REFUSALS` (logged with its traceback)."""


@dataclass
class HandlerContext:
    """What the handlers need, bound to them by the server (no globals)."""

    db: Database
    ingestor: Ingestor
    assembler: Assembler | None
    max_nesting_depth: int = MAX_NESTING_DEPTH
    max_inflated_bytes: int = MAX_INFLATED_BYTES
    max_instance_bytes: int = 0  # 0: no limit
    budget: MemoryBudget | None = None  # None: instances are not counted against a memory cap
    refusals: RefusalLog = field(default_factory=lambda: RefusalLog(20, 60.0))
    _associations: dict[int, str] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def association_id(self, assoc: Association) -> str:
        """Return the store id of ``assoc``, recording it on first use."""
        key = id(assoc)
        with self._lock:
            known = self._associations.get(key)
        if known is not None:
            return known
        new_id = str(uuid.uuid4())
        open_association(
            self.db,
            new_id,
            calling_aet=_calling(assoc),
            called_aet=str(assoc.acceptor.ae_title),
            peer=_peer(assoc),
        )
        with self._lock:
            self._associations[key] = new_id
        return new_id

    def forget(self, assoc: Association) -> str | None:
        """Drop ``assoc`` and return its store id, if it delivered anything."""
        with self._lock:
            return self._associations.pop(id(assoc), None)


def _calling(assoc: Association) -> str:
    return str(assoc.requestor.ae_title).strip()


def _peer(assoc: Association) -> str:
    return f"{assoc.requestor.address}:{assoc.requestor.port}"


@dataclass
class _Known:
    """The UIDs known so far about the instance being received, for the refusal's record."""

    study_uid: str = ""
    sop_uid: str = ""


def _status_of(exc: Exception) -> int | None:
    """Return the status of a refusal ``exc`` stands for, or ``None`` if it is unexpected.

    That is the status :data:`REFUSALS` gives its nearest listed class, or 0xA700 when the store
    cannot be reached now (:func:`~worklist.db.engine.store_down`).
    """
    for cls in type(exc).__mro__:
        status = REFUSALS.get(cls)
        if status is not None:
            return status
    return OUT_OF_RESOURCES if store_down(exc) else None


def _refuse(ctx: HandlerContext, event: Event, exc: Exception, known: _Known) -> int:
    """Log and record the refusal that ``exc`` stands for; return its named status."""
    status = _status_of(exc)
    if status is None:
        logger.exception("storing %s failed", known.sop_uid or "?", exc_info=exc)
        status, reason = UNEXPECTED, f"{type(exc).__name__}: {exc}"
    else:  # a driver's error text carries the SQL and its parameters: keep its first line
        reason = f"store unavailable: {outage_reason(exc)}" if store_down(exc) else str(exc)
    calling = _calling(event.assoc)
    if not ctx.refusals.allow(str(event.assoc.requestor.address)):
        return status  # this peer's refusals are being counted, not logged (nor recorded)
    logger.warning(
        "refused C-STORE of %r from %r (%s): %s -> 0x%04X %s",
        known.sop_uid or "?",
        calling,
        _peer(event.assoc),
        reason,
        status,
        status_name(status),
    )
    try:
        record_refusal(
            ctx.db,
            reason=reason,
            status=status,
            calling_aet=calling,
            source=_peer(event.assoc),
            study_uid=known.study_uid,
            sop_uid=known.sop_uid,
        )
    except Exception as exc:
        _log_store_failure("could not record the refusal event", exc)
    return status


def _log_store_failure(what: str, exc: BaseException) -> None:
    """Log a failed store write: one line while the store is down, a traceback for a bug."""
    if store_down(exc):
        logger.warning("%s: the store is unavailable (%s)", what, outage_reason(exc))
    else:
        logger.exception(what, exc_info=exc)


def _encode(event: Event, max_bytes: int) -> tuple[bytes, Path | None]:
    """Return the received dataset encoded with its file meta, as it came (no decoding).

    Also the file it was received to, if any (a listener process receives to files).
    """
    received = received_path(event)
    if received is not None:
        return read_instance(received, max_bytes), received
    try:
        return event.encoded_dataset(include_meta=True), None
    except Exception as exc:  # pynetdicom raises what the encoder raises
        raise UnencodableError(f"cannot encode file meta: {exc}") from exc


def _received_size(event: Event) -> int:
    """Return the size of the received dataset, in its spool file or in memory, unread."""
    with contextlib.suppress(AttributeError):
        path = event.dataset_path  # raises AttributeError unless pynetdicom spooled it
        if path is not None:
            return Path(path).stat().st_size
    buffer = getattr(event.request, "DataSet", None)
    if isinstance(buffer, BytesIO):
        with buffer.getbuffer() as view:
            return view.nbytes
    return 0


def _largest(ctx: HandlerContext) -> tuple[int, str]:
    """Return the largest instance accepted now, and the setting that sets it (0: none)."""
    limits = []
    if ctx.max_instance_bytes:
        limits.append((ctx.max_instance_bytes, "max_instance_bytes"))
    if ctx.budget is not None:
        limits.append((ctx.budget.largest_instance(), "max_memory_bytes"))
    return min(limits) if limits else (0, "")


@contextlib.contextmanager
def _reserved(ctx: HandlerContext, event: Event, what: str) -> Iterator[int]:
    """Hold the memory storing the received instance will take; yield the inflation allowed."""
    size = _received_size(event)
    largest, setting = _largest(ctx)
    if setting and size > largest:
        raise InstanceTooLargeError(
            f"instance of {size} bytes is larger than {largest} ({setting})"
        )
    if ctx.budget is None:
        yield ctx.max_inflated_bytes
        return
    deflated = str(event.context.transfer_syntax) == DeflatedExplicitVRLittleEndian
    with ctx.budget.reserve(size * COST_FACTOR, what):
        extra = ctx.budget.extend(ctx.max_inflated_bytes * COST_FACTOR) if deflated else 0
        allowed = min(ctx.max_inflated_bytes, extra // COST_FACTOR)
        try:
            yield allowed
        except InstanceTooLargeError as exc:
            if allowed < ctx.max_inflated_bytes and "(max_" not in str(exc):
                raise InstanceTooLargeError(f"{exc} (max_memory_bytes)") from exc
            raise
        finally:
            ctx.budget.give_back(extra)


def _check(header: InstanceHeader, request: C_STORE, command_sop: str) -> None:
    """Check that the dataset is the instance the C-STORE command announced."""
    if header.sop_class_uid != str(request.AffectedSOPClassUID):
        raise DatasetMismatchError(
            f"SOP Class UID {header.sop_class_uid} of the dataset differs from the negotiated "
            f"{request.AffectedSOPClassUID}"
        )
    if header.sop_uid != command_sop:
        raise CommandMismatchError(
            f"SOP Instance UID {header.sop_uid} differs from the command's {command_sop}"
        )


def handle_store(event: Event, ctx: HandlerContext) -> int:
    """Store one instance durably and answer Success, or refuse it with a named status.

    Parameters
    ----------
    event
        pynetdicom's ``EVT_C_STORE`` event.
    ctx
        The bound dependencies.

    Returns
    -------
    int
        The C-STORE status: Success only once the instance is on disk and recorded; otherwise
        the status :data:`REFUSALS` gives the exception, or :data:`UNEXPECTED`.
    """
    request = cast(C_STORE, event.request)  # an EVT_C_STORE event carries a C-STORE request
    command_sop = str(request.AffectedSOPInstanceUID or "")
    known = _Known()
    try:
        known.sop_uid = validate_uid(command_sop, "Affected SOP Instance UID of the command")
        with _reserved(ctx, event, f"instance {known.sop_uid}") as max_inflated:
            data, received = _encode(event, ctx.max_instance_bytes)
            if ctx.max_instance_bytes and len(data) > ctx.max_instance_bytes:
                raise InstanceTooLargeError(
                    f"instance of {len(data)} bytes is larger than {ctx.max_instance_bytes} "
                    "(max_instance_bytes)"
                )
            header, _ds = parse_instance(
                data, max_depth=ctx.max_nesting_depth, max_inflated=max_inflated
            )
            del _ds
            known.study_uid, known.sop_uid = header.study_uid, header.sop_uid
            _check(header, request, command_sop)
            ctx.ingestor.store(
                data,
                header,
                association_id=ctx.association_id(event.assoc),
                calling_aet=_calling(event.assoc),
                source=_peer(event.assoc),
                received=received,
            )
    except Exception as exc:  # every failure is answered with a named status, never raised
        return _refuse(ctx, event, exc, known)
    return SUCCESS


def _ended(event: Event, ctx: HandlerContext, outcome: str) -> None:
    association_id = ctx.forget(event.assoc)
    if association_id is None:
        return
    try:
        study_ids = close_association(ctx.db, association_id, outcome)
        logger.info(
            "association %s from %s %s (%d study/studies)",
            association_id[:8],
            _calling(event.assoc),
            outcome,
            len(study_ids),
        )
        if ctx.assembler is not None:
            ctx.assembler.run_once(study_ids=study_ids)
    except Exception as exc:
        _log_store_failure(f"recording the end of association {association_id} failed", exc)


def handle_released(event: Event, ctx: HandlerContext) -> None:
    """Record a released association and assemble its studies now."""
    _ended(event, ctx, "released")


def handle_aborted(event: Event, ctx: HandlerContext) -> None:
    """Record an aborted association and assemble its studies now."""
    discard_spooled(getattr(event.assoc.dimse, "message", None))  # a dataset cut off
    _ended(event, ctx, "aborted")


def handle_conn_close(event: Event, ctx: HandlerContext) -> None:
    """Record a connection closed without release or abort."""
    discard_spooled(getattr(event.assoc.dimse, "message", None))  # a dataset cut off
    _ended(event, ctx, "aborted")


def handle_rejected(event: Event, ctx: HandlerContext) -> None:
    """Log and record an association rejected (calling AE not allowed, too many)."""
    calling = _calling(event.assoc)
    if not ctx.refusals.allow(str(event.assoc.requestor.address)):
        return  # counted: this peer's refusals are summarised, not logged (nor recorded)
    logger.warning("association from %s (%s) rejected", calling, _peer(event.assoc))
    try:
        with ctx.db.write() as session:
            record_event(
                session,
                EventCategory.INGEST,
                "association.rejected",
                actor=calling,
                source=_peer(event.assoc),
                outcome="failure",
                details={
                    "reason": "calling AE title not allowed (or not bound to the client "
                    "certificate) or too many associations"
                },
            )
    except Exception as exc:
        _log_store_failure("could not record the rejection event", exc)
