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

In a listener *process* (datasets received to files, ``STORE_RECV_CHUNKED_DATASET``), pynetdicom
writes the file's meta from the command's UIDs as soon as the command is decoded, with pydicom's
standard check: an empty (or absent) Affected SOP Instance or Class UID raises there, on the
association's network thread, and the sender got no answer. :func:`handle_pdu_recv`
(``EVT_PDU_RECV``, fired for each received PDU before pynetdicom decodes its DIMSE content)
decodes the command fragments itself and, for such a C-STORE request, takes the request's
fragments out of the received PDU (they never reach pynetdicom's decoder, nor memory or disk),
answers 0xC000 with the reason, and drops the rest of that request's dataset as it arrives; a
command split over several PDUs (the start already passed on) makes it abort the association
instead, with the reason logged. Nothing of pynetdicom is replaced.
"""

from __future__ import annotations

import logging
import threading
import weakref
from dataclasses import dataclass, field
from io import BytesIO
from typing import Any

from pydicom.uid import UID
from pynetdicom import _config
from pynetdicom.association import Association
from pynetdicom.dimse_primitives import C_STORE
from pynetdicom.dsutils import decode
from pynetdicom.events import Event
from pynetdicom.pdu import P_DATA_TF

from dicom_gateway.handlers import HandlerContext
from dicom_gateway.spooling import discard_spooled
from dicom_gateway.statuses import CANNOT_UNDERSTAND, status_name
from worklist.ingest.associations import record_refusal

__all__ = [
    "CommandFragments",
    "handle_dimse_recv",
    "handle_pdu_recv",
    "install_lenient_uid_validation",
    "lenient_uid",
]

logger = logging.getLogger(__name__)

_C_STORE_RQ = 0x0001
_NO_DATASET = 0x0101


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
    _answer_cannot_understand(event, ctx, command, int(message.context_id or 0), reason)


def _answer_cannot_understand(
    event: Event, ctx: HandlerContext, command: Any, context_id: int, reason: str
) -> None:
    """Answer a C-STORE request with 0xC000 and ``reason``; log and record the refusal."""
    rsp = C_STORE()
    rsp.MessageIDBeingRespondedTo = int(command.get("MessageID") or 0)
    rsp.AffectedSOPClassUID = command.get("AffectedSOPClassUID")
    rsp.Status = CANNOT_UNDERSTAND
    rsp.ErrorComment = reason[:64]  # type: ignore[assignment]  # typed None in pynetdicom
    full = _log_refusal(
        event, ctx, reason, f"-> 0x{CANNOT_UNDERSTAND:04X} {status_name(CANNOT_UNDERSTAND)}"
    )
    try:
        event.assoc.dimse.send_msg(rsp, context_id)
    except Exception:
        logger.exception("could not answer the C-STORE refused: %s", reason)
        return
    if full:  # while this peer's refusals are counted, they are not recorded either
        _record(event, ctx, reason, CANNOT_UNDERSTAND)


def _log_refusal(event: Event, ctx: HandlerContext, reason: str, outcome: str) -> bool:
    """Log a refused C-STORE in full, or at debug level while this peer's are counted."""
    calling = str(event.assoc.requestor.ae_title).strip()
    peer = f"{event.assoc.requestor.address}:{event.assoc.requestor.port}"
    full = ctx.refusals.allow(str(event.assoc.requestor.address))
    (logger.warning if full else logger.debug)(
        "refused C-STORE from %r (%s): %s %s",
        calling,
        peer,
        reason,
        outcome,
    )
    return full


def _record(event: Event, ctx: HandlerContext, reason: str, status: int) -> None:
    """Record the refusal event in the store (logged if that fails)."""
    try:
        record_refusal(
            ctx.db,
            reason=reason,
            status=status,
            calling_aet=str(event.assoc.requestor.ae_title).strip(),
            source=f"{event.assoc.requestor.address}:{event.assoc.requestor.port}",
            study_uid="",
            sop_uid="",
        )
    except Exception:
        logger.exception("could not record the refusal event")


@dataclass
class _Receiving:
    """What :func:`handle_pdu_recv` knows of one association's message being received."""

    command: bytearray = field(default_factory=bytearray)
    command_passed_on: bool = False  # fragments of it already went to pynetdicom
    dropping: int | None = None  # presentation context whose dataset fragments are dropped

    def sift(self, items: list[Any]) -> tuple[list[Any], list[tuple[Any, int, str, bool]]]:
        """Return the PDV items to pass on, and the refused requests.

        Each refused request: its command, presentation context, reason, and whether the
        command's start was passed on in an earlier PDU.
        """
        kept: list[Any] = []
        refused: list[tuple[Any, int, str, bool]] = []
        start = 0  # where the current message's fragments of this PDU begin in ``kept``
        for item in items:
            data = item.presentation_data_value or b"\x00"
            if not data[0] & 1:  # a dataset fragment
                if self.dropping is None:
                    kept.append(item)
                elif data[0] & 2:  # the refused request's last fragment
                    self.dropping = None
                continue
            if not self.command:
                start = len(kept)
            self.command += data[1:]
            kept.append(item)
            if data[0] & 2:  # the command's last fragment
                command, reason = _unwritable(bytes(self.command))
                if reason:
                    del kept[start:]
                    context_id = int(item.presentation_context_id or 0)
                    refused.append((command, context_id, reason, self.command_passed_on))
                    self.dropping = context_id
                self.command.clear()
                self.command_passed_on = False
        self.command_passed_on = bool(self.command)
        return kept, refused


@dataclass
class CommandFragments:
    """Per association: the command fragments received so far (for :func:`handle_pdu_recv`)."""

    _states: weakref.WeakKeyDictionary[Association, _Receiving] = field(
        default_factory=weakref.WeakKeyDictionary
    )
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def of(self, assoc: Association) -> _Receiving:
        """Return the state of ``assoc`` (created empty)."""
        with self._lock:
            return self._states.setdefault(assoc, _Receiving())


def _unwritable(encoded: bytes) -> tuple[Any, str]:
    """Return the command and why pynetdicom cannot write its dataset's file ("" if it can)."""
    try:
        command = decode(BytesIO(encoded), True, True)
    except Exception:  # pynetdicom itself refuses an undecodable command (A-ABORT)
        return None, ""
    if command.get("CommandField") != _C_STORE_RQ:
        return command, ""
    if command.get("CommandDataSetType") == _NO_DATASET:
        return command, ""
    for keyword, name in (
        ("AffectedSOPInstanceUID", "Affected SOP Instance UID"),
        ("AffectedSOPClassUID", "Affected SOP Class UID"),
    ):
        if not str(command.get(keyword) or "").rstrip("\x00 "):
            return command, f"{name} of the C-STORE command is empty"
    return command, ""


def handle_pdu_recv(event: Event, ctx: HandlerContext, fragments: CommandFragments) -> None:
    """Refuse a C-STORE request whose dataset pynetdicom could not write to its file.

    Acts only while datasets are received to files (``STORE_RECV_CHUNKED_DATASET``, listener
    processes); in memory, :func:`handle_dimse_recv` answers such a request.

    Parameters
    ----------
    event
        pynetdicom's ``EVT_PDU_RECV`` event (the PDU, decoded but not yet passed on).
    ctx
        The bound dependencies.
    fragments
        The listener's per-association command fragments.
    """
    pdu = event.pdu
    if not isinstance(pdu, P_DATA_TF) or _config.STORE_RECV_CHUNKED_DATASET is not True:
        return
    kept, refused = fragments.of(event.assoc).sift(pdu.presentation_data_value_items)
    pdu.presentation_data_value_items = kept  # a refused request never reaches pynetdicom
    for command, context_id, reason, passed_on in refused:
        if passed_on:  # its start is in pynetdicom's decoder already: end the association
            if _log_refusal(event, ctx, reason, "-> A-ABORT (command split over PDUs)"):
                _record(event, ctx, reason, CANNOT_UNDERSTAND)
            event.assoc.abort()  # non-blocking in an event handler: sent by the network thread
            return
        _answer_cannot_understand(event, ctx, command, context_id, reason)
