"""The listener's event handlers: thin, with their dependencies bound as arguments.

``handle_store`` reads the encoded dataset as received (no pixel decoding), checks it, hands it
to the :class:`~worklist.ingest.recorder.Ingestor` (durable file + committed row) and then answers
Success. Every refusal gets a named status, a log line with the reason and an
``instance.refused`` event. The association handlers record when a delivering association ends
and assemble its studies at once (CR/DX are complete at release).
"""

from __future__ import annotations

import logging
import threading
import uuid
from dataclasses import dataclass, field
from typing import Any

from dicom_gateway.assembler import Assembler
from dicom_gateway.statuses import (
    CANNOT_UNDERSTAND,
    DATASET_MISMATCH,
    OUT_OF_RESOURCES,
    PROCESSING_FAILURE,
    SUCCESS,
    status_name,
)
from worklist.archive import ArchiveFullError, InvalidUIDError
from worklist.audit import EventCategory, record_event
from worklist.db.engine import Database
from worklist.ingest.associations import close_association, open_association, record_refusal
from worklist.ingest.header import UndecodableInstanceError, parse_instance
from worklist.ingest.recorder import Ingestor

__all__ = [
    "HandlerContext",
    "handle_aborted",
    "handle_conn_close",
    "handle_rejected",
    "handle_released",
    "handle_store",
]

logger = logging.getLogger(__name__)


@dataclass
class HandlerContext:
    """What the handlers need, bound to them by the server (no globals)."""

    db: Database
    ingestor: Ingestor
    assembler: Assembler | None
    _associations: dict[int, str] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def association_id(self, assoc: Any) -> str:
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

    def forget(self, assoc: Any) -> str | None:
        """Drop ``assoc`` and return its store id, if it delivered anything."""
        with self._lock:
            return self._associations.pop(id(assoc), None)


def _calling(assoc: Any) -> str:
    return str(assoc.requestor.ae_title).strip()


def _peer(assoc: Any) -> str:
    return f"{assoc.requestor.address}:{assoc.requestor.port}"


def _refuse(
    ctx: HandlerContext,
    event: Any,
    status: int,
    reason: str,
    *,
    study_uid: str = "",
    sop_uid: str = "",
) -> int:
    calling = _calling(event.assoc)
    logger.warning(
        "refused C-STORE of %r from %r (%s): %s -> 0x%04X %s",
        sop_uid or "?",
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
            study_uid=study_uid,
            sop_uid=sop_uid,
        )
    except Exception:
        logger.exception("could not record the refusal event")
    return status


def handle_store(event: Any, ctx: HandlerContext) -> int:
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
        The C-STORE status.
    """
    request = event.request
    command_sop = str(request.AffectedSOPInstanceUID or "")
    try:
        data = event.encoded_dataset(include_meta=True)
    except Exception as exc:
        return _refuse(ctx, event, CANNOT_UNDERSTAND, f"cannot encode file meta: {exc}")
    try:
        header, _ds = parse_instance(data)
    except (UndecodableInstanceError, InvalidUIDError) as exc:
        return _refuse(ctx, event, CANNOT_UNDERSTAND, str(exc), sop_uid=command_sop)
    if header.sop_class_uid != str(request.AffectedSOPClassUID):
        reason = (
            f"SOP Class UID {header.sop_class_uid} of the dataset differs from the negotiated "
            f"{request.AffectedSOPClassUID}"
        )
        return _refuse(
            ctx, event, DATASET_MISMATCH, reason, study_uid=header.study_uid, sop_uid=header.sop_uid
        )
    if header.sop_uid != command_sop:
        reason = f"SOP Instance UID {header.sop_uid} differs from the command's {command_sop}"
        return _refuse(ctx, event, CANNOT_UNDERSTAND, reason, study_uid=header.study_uid)
    calling = _calling(event.assoc)
    try:
        association_id = ctx.association_id(event.assoc)
        ctx.ingestor.store(
            data,
            header,
            association_id=association_id,
            calling_aet=calling,
            source=_peer(event.assoc),
        )
    except ArchiveFullError as exc:
        return _refuse(
            ctx,
            event,
            OUT_OF_RESOURCES,
            str(exc),
            study_uid=header.study_uid,
            sop_uid=header.sop_uid,
        )
    except InvalidUIDError as exc:
        return _refuse(
            ctx,
            event,
            CANNOT_UNDERSTAND,
            str(exc),
            study_uid=header.study_uid,
            sop_uid=header.sop_uid,
        )
    except Exception as exc:
        logger.exception("storing %s failed", header.sop_uid)
        return _refuse(
            ctx,
            event,
            PROCESSING_FAILURE,
            f"{type(exc).__name__}: {exc}",
            study_uid=header.study_uid,
            sop_uid=header.sop_uid,
        )
    return SUCCESS


def _ended(event: Any, ctx: HandlerContext, outcome: str) -> None:
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
    except Exception:
        logger.exception("recording the end of association %s failed", association_id)


def handle_released(event: Any, ctx: HandlerContext) -> None:
    """Record a released association and assemble its studies now."""
    _ended(event, ctx, "released")


def handle_aborted(event: Any, ctx: HandlerContext) -> None:
    """Record an aborted association and assemble its studies now."""
    _ended(event, ctx, "aborted")


def handle_conn_close(event: Any, ctx: HandlerContext) -> None:
    """Record a connection closed without release or abort."""
    _ended(event, ctx, "aborted")


def handle_rejected(event: Any, ctx: HandlerContext) -> None:
    """Log and record an association rejected (calling AE not allowed, too many)."""
    calling = _calling(event.assoc)
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
                details={"reason": "calling AE title not allowed or too many associations"},
            )
    except Exception:
        logger.exception("could not record the rejection event")
