"""Faulty DIMSE commands get a failure status, not an abort or silence.

pynetdicom validates the UIDs of a received command before any handler runs: an Affected SOP
Instance UID longer than 64 characters made it abort the association, and an empty one made the
request "invalid", silently ignored (the sender waited for its own timeout). Two documented hooks
of pynetdicom put the decision back with the listener:

* :func:`install_lenient_uid_validation` sets ``pynetdicom._config.VALIDATORS["UI"]`` to a
  validator that accepts any text, so every command reaches :func:`~dicom_gateway.handlers.
  handle_store`, which validates the UIDs itself and refuses a bad one with 0xC000
  (Cannot Understand) and the reason;
* :func:`handle_dimse_recv` (``EVT_DIMSE_RECV``) answers a C-STORE request whose Affected SOP
  Instance UID is empty, which pynetdicom would otherwise drop, with 0xC000 and an Error Comment.
"""

from __future__ import annotations

import logging

from pydicom.uid import UID
from pynetdicom import _config
from pynetdicom.dimse_primitives import C_STORE
from pynetdicom.events import Event

from dicom_gateway.handlers import HandlerContext
from dicom_gateway.spooling import discard_spooled
from dicom_gateway.statuses import CANNOT_UNDERSTAND, status_name
from worklist.ingest.associations import record_refusal

__all__ = ["handle_dimse_recv", "install_lenient_uid_validation", "lenient_uid"]

logger = logging.getLogger(__name__)

_C_STORE_RQ = 0x0001


def lenient_uid(value: UID) -> tuple[bool, str]:
    """Accept any text as a UID in received PDUs and commands (the handlers validate them).

    Parameters
    ----------
    value
        The UID as received.

    Returns
    -------
    tuple of (bool, str)
        ``(True, "")`` for any string, pynetdicom's validator signature.
    """
    if not isinstance(value, str):
        return False, "must be pydicom.uid.UID"
    return True, ""


def install_lenient_uid_validation() -> None:
    """Let commands with non-conformant UIDs reach the handlers (process-wide, idempotent)."""
    _config.VALIDATORS["UI"] = lenient_uid


def handle_dimse_recv(event: Event, ctx: HandlerContext) -> None:
    """Answer a C-STORE request with an empty Affected SOP Instance UID with 0xC000.

    pynetdicom turns an empty UID into "absent" and ignores the request as invalid; the answer
    is sent here, on the request's presentation context, and the refusal logged and recorded.

    Parameters
    ----------
    event
        pynetdicom's ``EVT_DIMSE_RECV`` event (a complete message: command and dataset).
    ctx
        The bound dependencies.
    """
    message = event.message
    command = message.command_set
    if command.get("CommandField") != _C_STORE_RQ:
        return
    uid = str(command.get("AffectedSOPInstanceUID") or "").rstrip("\x00 ")
    if uid:
        return
    discard_spooled(message)  # pynetdicom ignores the request: nobody else removes its file
    reason = "Affected SOP Instance UID of the C-STORE command is empty"
    rsp = C_STORE()
    rsp.MessageIDBeingRespondedTo = int(command.get("MessageID") or 0)
    rsp.AffectedSOPClassUID = command.get("AffectedSOPClassUID")
    rsp.Status = CANNOT_UNDERSTAND
    rsp.ErrorComment = reason[:64]  # type: ignore[assignment]  # typed None in pynetdicom
    calling = str(event.assoc.requestor.ae_title).strip()
    peer = f"{event.assoc.requestor.address}:{event.assoc.requestor.port}"
    full = ctx.refusals.allow(str(event.assoc.requestor.address))
    (logger.warning if full else logger.debug)(
        "refused C-STORE from %r (%s): %s -> 0x%04X %s",
        calling,
        peer,
        reason,
        CANNOT_UNDERSTAND,
        status_name(CANNOT_UNDERSTAND),
    )
    try:
        event.assoc.dimse.send_msg(rsp, int(message.context_id or 0))
    except Exception:
        logger.exception("could not answer the C-STORE with an empty Affected SOP Instance UID")
        return
    if not full:
        return
    try:
        record_refusal(
            ctx.db,
            reason=reason,
            status=CANNOT_UNDERSTAND,
            calling_aet=calling,
            source=peer,
            study_uid="",
            sop_uid="",
        )
    except Exception:
        logger.exception("could not record the refusal event")
