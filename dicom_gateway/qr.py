"""The Query/Retrieve SCP: Study Root C-FIND, C-MOVE and C-GET over the store and archive.

The handlers translate an identifier into keyword/value pairs (:func:`identifier_keys`) and
leave matching to :mod:`worklist.query`. The study's triage priority is the private attribute
(0041,xx01) CS of the private creator :data:`PRIVATE_CREATOR` in group (0041), values ``P1`` to
``P3``: no standard attribute means the priority a triage gave a study. Retrieves read each
instance from its archive file when its turn comes (:func:`archived_instance`) and hand
pynetdicom the dataset in the transfer syntax it was received in; values larger than
:data:`DEFER_SIZE` (Pixel Data) stay on disk until pynetdicom encodes the C-STORE. Every
refusal is logged with its reason and answered with a named status from
:mod:`dicom_gateway.statuses`. Every request is audited (category ``audit``): a ``dicom.find``
event per C-FIND, a ``dicom.move`` or ``dicom.get`` event per study retrieved, with the calling
AE title and peer; refusals as failures with their reason.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from pydicom import dcmread
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pynetdicom import build_context
from pynetdicom.events import Event
from pynetdicom.presentation import PresentationContext

from dicom_gateway.settings import GatewaySettings
from dicom_gateway.statuses import (
    CANCEL,
    IDENTIFIER_MISMATCH,
    MOVE_DESTINATION_UNKNOWN,
    PENDING,
    PENDING_WARNING,
    UNABLE_TO_PROCESS,
    status_name,
)
from worklist.archive import Archive
from worklist.audit import EventCategory, record_event
from worklist.db.engine import Database
from worklist.query.find import InstanceRef, find, parse_level, retrieve
from worklist.query.keys import KEYS, TRIAGE_PRIORITY, Level
from worklist.query.matching import InvalidKeyError

__all__ = [
    "DEFER_SIZE",
    "PRIORITY_ELEMENT",
    "PRIVATE_CREATOR",
    "PRIVATE_GROUP",
    "QRContext",
    "archived_instance",
    "handle_find",
    "handle_get",
    "handle_move",
    "identifier_keys",
]

logger = logging.getLogger(__name__)

PRIVATE_GROUP = 0x0041
"""The private group of the triage attributes."""
PRIVATE_CREATOR = "ICS TRIAGE"
"""The private creator of the triage attributes."""
PRIORITY_ELEMENT = 0x01
"""The element offset of the triage priority in the private block (0041,xx01), VR CS."""
DEFER_SIZE = "256 KB"
"""Values larger than this are read from the archive file only when the instance is encoded."""

_SKIPPED = frozenset({"QueryRetrieveLevel", "SpecificCharacterSet", "RetrieveAETitle"})
_MAX_CONTEXTS = 128

Result = tuple[int, Dataset | None]


@dataclass(frozen=True)
class QRContext:
    """What the Query/Retrieve handlers need, bound to them by the server."""

    db: Database
    archive: Archive
    settings: GatewaySettings


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bytes):  # an unknown private element in implicit VR (UN)
        return value.decode("ascii", "replace").strip("\x00 ")
    if isinstance(value, list | tuple) or type(value).__name__ == "MultiValue":
        return "\\".join(str(v) for v in value)
    return str(value).strip()


def _priority_element(identifier: Dataset) -> DataElement | None:
    try:
        return identifier.private_block(PRIVATE_GROUP, PRIVATE_CREATOR)[PRIORITY_ELEMENT]
    except KeyError:
        return None


def identifier_keys(identifier: Dataset) -> tuple[Level, dict[str, str], list[str]]:
    """Return an identifier's level, its known keys and the keys this SCP does not support.

    Parameters
    ----------
    identifier
        The decoded C-FIND, C-MOVE or C-GET identifier.

    Returns
    -------
    tuple of (Level, dict of str to str, list of str)
        The Query/Retrieve level; keyword (:data:`~worklist.query.keys.TRIAGE_PRIORITY` for the
        private priority) to value, several values joined with backslashes; the keywords (or
        tags) of the other elements.

    Raises
    ------
    InvalidKeyError
        If QueryRetrieveLevel is missing or names a level outside the Study Root model.
    """
    level = parse_level(_text(identifier.get("QueryRetrieveLevel", "")))
    keys: dict[str, str] = {}
    unsupported: list[str] = []
    priority = _priority_element(identifier)
    for element in identifier:
        keyword = element.keyword
        if keyword in _SKIPPED:
            continue
        if element.tag.is_private:
            if priority is not None and element.tag == priority.tag:
                keys[TRIAGE_PRIORITY] = _text(element.value)
            elif not element.tag.is_private_creator:
                unsupported.append(str(element.tag))
            continue
        if keyword in KEYS and keyword != TRIAGE_PRIORITY:
            keys[keyword] = _text(element.value)
        else:
            unsupported.append(keyword or str(element.tag))
    return level, keys, unsupported


def _response(level: Level, match: dict[str, str], ae_title: str) -> Dataset:
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.QueryRetrieveLevel = str(level)
    ds.RetrieveAETitle = ae_title
    for keyword, value in match.items():
        if keyword == TRIAGE_PRIORITY:
            block = ds.private_block(PRIVATE_GROUP, PRIVATE_CREATOR, create=True)
            block.add_new(PRIORITY_ELEMENT, "CS", value)
        else:
            setattr(ds, keyword, value)
    return ds


def _calling(event: Event) -> str:
    return str(event.assoc.requestor.ae_title).strip()


def _audit(event: Event, ctx: QRContext, service: str, outcome: str, **details: Any) -> None:
    """Record one audit event per study (``studies``), or one for the request."""
    studies: list[str] = details.pop("studies", None) or [""]
    peer = f"{event.assoc.requestor.address}:{event.assoc.requestor.port}"
    action = "dicom." + service.removeprefix("C-").lower()
    try:
        with ctx.db.write() as session:
            for study in studies:
                record_event(
                    session,
                    EventCategory.AUDIT,
                    action,
                    actor=_calling(event),
                    source=peer,
                    study_instance_uid=study,
                    outcome=outcome,
                    details=details,
                )
    except Exception:  # an audit failure is logged; the request is answered regardless
        logger.exception("%s audit event not recorded", service)


def _refuse(event: Event, ctx: QRContext, service: str, status: int, reason: str) -> int:
    _audit(event, ctx, service, "failure", status=f"0x{status:04X}", reason=reason)
    logger.warning(
        "%s from %s refused with 0x%04X (%s): %s",
        service,
        _calling(event),
        status,
        status_name(status, service),
        reason,
    )
    return status


def handle_find(event: Event, ctx: QRContext) -> Iterator[Result]:
    """Answer a Study Root C-FIND: one pending response per match, then pynetdicom's Success.

    Parameters
    ----------
    event
        pynetdicom's ``EVT_C_FIND``.
    ctx
        The store and settings.

    Yields
    ------
    tuple of (int, pydicom.dataset.Dataset or None)
        ``(PENDING, match)`` per match (``PENDING_WARNING`` when a key is unsupported), or a
        refusal: ``IDENTIFIER_MISMATCH``, ``UNABLE_TO_PROCESS``, ``CANCEL``.
    """
    try:
        level, keys, unsupported = identifier_keys(event.identifier)
        matches = find(ctx.db, level, keys)
    except InvalidKeyError as exc:
        yield _refuse(event, ctx, "C-FIND", IDENTIFIER_MISMATCH, str(exc)), None
        return
    except Exception as exc:
        logger.exception("C-FIND failed")
        yield _refuse(event, ctx, "C-FIND", UNABLE_TO_PROCESS, f"{type(exc).__name__}: {exc}"), None
        return
    _audit(event, ctx, "C-FIND", "success", level=str(level), matches=len(matches))
    if unsupported:
        logger.info("C-FIND from %s: keys not supported: %s", _calling(event), unsupported)
    logger.info("C-FIND from %s at %s level: %d match(es)", _calling(event), level, len(matches))
    status = PENDING_WARNING if unsupported else PENDING
    ae_title = str(event.assoc.acceptor.ae_title).strip()
    for match in matches:
        if event.is_cancelled:
            yield _refuse(event, ctx, "C-FIND", CANCEL, "cancelled by the peer"), None
            return
        yield status, _response(level, match, ae_title)


def _instances(event: Event, ctx: QRContext, service: str) -> list[InstanceRef] | int:
    """Return the instances to send, or the status of a refusal (already logged)."""
    try:
        level, keys, _ = identifier_keys(event.identifier)
        refs = retrieve(ctx.db, level, keys)
    except InvalidKeyError as exc:
        return _refuse(event, ctx, service, IDENTIFIER_MISMATCH, str(exc))
    except Exception as exc:
        logger.exception("%s failed", service)
        return _refuse(event, ctx, service, UNABLE_TO_PROCESS, f"{type(exc).__name__}: {exc}")
    logger.info("%s from %s: %d instance(s)", service, _calling(event), len(refs))
    studies: dict[str, int] = {}
    for ref in refs:
        studies[ref.study_instance_uid] = studies.get(ref.study_instance_uid, 0) + 1
    _audit(
        event,
        ctx,
        service,
        "success",
        studies=list(studies),
        level=str(level),
        instances=len(refs),
        destination=_text(event.move_destination) if service == "C-MOVE" else "",
    )
    return refs


def archived_instance(archive: Archive, ref: InstanceRef) -> Dataset:
    """Read one instance to send from its archive file, its large values left on disk.

    pynetdicom's C-GET and C-MOVE service classes send only a
    :class:`~pydicom.dataset.Dataset`, so the file is parsed, but values larger than
    :data:`DEFER_SIZE` (Pixel Data) are read only when pynetdicom encodes the C-STORE, and the
    file meta information keeps the transfer syntax it was received in, which selects the
    presentation context. Elements are re-encoded as they were read, with the exceptions
    pydicom makes (retired group lengths are dropped; the elements pynetdicom reads, SOP Class
    and SOP Instance UID and Specific Character Set, are written in their standard form).

    Parameters
    ----------
    archive
        The archive holding the file.
    ref
        The instance to send.

    Returns
    -------
    pydicom.dataset.Dataset
        The instance; if its file cannot be read (logged as a warning), a dataset holding only
        its SOP Instance UID, which pynetdicom refuses to send without a SOP Class UID: the
        sub-operation fails and the UID is listed in Failed SOP Instance UID List (0008,0058).
    """
    try:
        dataset: Dataset = dcmread(archive.absolute(ref.path), defer_size=DEFER_SIZE)
    except Exception as exc:  # one unreadable file fails its own sub-operation only
        logger.warning(
            "instance %s not sent: its archive file %s cannot be read (%s: %s)",
            ref.sop_instance_uid,
            ref.path,
            type(exc).__name__,
            exc,
        )
        unreadable = Dataset()
        unreadable.SOPInstanceUID = ref.sop_instance_uid
        return unreadable
    return dataset


def _sub_operations(
    event: Event, ctx: QRContext, service: str, refs: list[InstanceRef]
) -> Iterator[Result]:
    """Yield each instance when pynetdicom asks for the next: read one at a time."""
    for ref in refs:
        if event.is_cancelled:
            yield _refuse(event, ctx, service, CANCEL, "cancelled by the peer"), None
            return
        yield PENDING, archived_instance(ctx.archive, ref)


def handle_get(event: Event, ctx: QRContext) -> Iterator[int | Result]:
    """Answer a Study Root C-GET: a C-STORE on this association per matching instance.

    Parameters
    ----------
    event
        pynetdicom's ``EVT_C_GET``.
    ctx
        The store, archive and settings.

    Yields
    ------
    int, then tuple of (int, pydicom.dataset.Dataset or None)
        The number of sub-operations, then ``(PENDING, instance)`` per instance, or a refusal.
    """
    refs = _instances(event, ctx, "C-GET")
    if isinstance(refs, int):
        yield 1
        yield refs, None
        return
    yield len(refs)
    yield from _sub_operations(event, ctx, "C-GET", refs)


def _contexts(refs: list[InstanceRef]) -> list[PresentationContext]:
    pairs = sorted({(r.sop_class_uid, r.transfer_syntax_uid) for r in refs})
    if len(pairs) > _MAX_CONTEXTS:
        logger.warning(
            "C-MOVE needs %d presentation contexts; the first %d are proposed, instances of "
            "the others fail",
            len(pairs),
            _MAX_CONTEXTS,
        )
    return [build_context(sop, ts) for sop, ts in pairs[:_MAX_CONTEXTS]]


def handle_move(event: Event, ctx: QRContext) -> Iterator[Any]:
    """Answer a Study Root C-MOVE: send the matching instances to a configured destination.

    Parameters
    ----------
    event
        pynetdicom's ``EVT_C_MOVE``.
    ctx
        The store, archive and settings (``move_destinations``).

    Yields
    ------
    tuple, int, then tuple of (int, pydicom.dataset.Dataset or None)
        The destination ``(host, port, {"contexts": ...})`` (``(None, None)`` when unknown:
        pynetdicom answers Move Destination Unknown), the number of sub-operations, then
        ``(PENDING, instance)`` per instance, or a refusal.
    """
    name = _text(event.move_destination)
    destination = ctx.settings.move_destinations.get(name)
    if destination is None:
        # (None, None) makes pynetdicom answer MOVE_DESTINATION_UNKNOWN itself.
        _refuse(
            event,
            ctx,
            "C-MOVE",
            MOVE_DESTINATION_UNKNOWN,
            f"{name!r} is not in gateway.move_destinations",
        )
        yield None, None
        return
    refs = _instances(event, ctx, "C-MOVE")
    if isinstance(refs, int):
        yield destination.host, destination.port
        yield 1
        yield refs, None
        return
    yield destination.host, destination.port, {"contexts": _contexts(refs)}
    yield len(refs)
    yield from _sub_operations(event, ctx, "C-MOVE", refs)
