"""The SCU side for radiographers: C-ECHO a peer, C-STORE files and folders to it.

:func:`send_files` reads each file's header only, proposes exactly the (SOP class, transfer
syntax) pairs the files need (in chunks of at most 128 presentation contexts per association)
and sends each file as it is on disk, without decoding or transcoding. A file that cannot be
read is reported, never fatal. :func:`collect_files` walks folders; what it found there that is not
DICOM (a ``labels.csv``, a README, a ``.DS_Store``) or is the DICOMDIR of a CD/DVD export is
skipped rather than failed, while a file the user named that is not DICOM is a failure.
"""

from __future__ import annotations

import logging
import socket
import warnings
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path

from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.misc import is_dicom
from pydicom.uid import (
    UID,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    MediaStorageDirectoryStorage,
)
from pynetdicom import AE
from pynetdicom.association import Association

from dicom_gateway.conformance import verification_sop_class
from dicom_gateway.files import Collected, collect_files
from dicom_gateway.statuses import SUCCESS, status_name
from dicom_gateway.tls import TlsClient
from models.errors import Unavailable

__all__ = [
    "SKIPPED_DICOMDIR",
    "SKIPPED_HIDDEN",
    "SKIPPED_NOT_DICOM",
    "Collected",
    "ScuError",
    "SendResult",
    "collect_files",
    "echo",
    "probe",
    "send_files",
    "why_no_association",
]

logger = logging.getLogger(__name__)

MAX_CONTEXTS = 128
_PROBE_S = 3.0
"""Longest wait of the TCP probe that tells a refused or silent peer from an aborting one."""
SKIPPED_NOT_DICOM = "skipped (not DICOM)"
"""Label of a file found in a folder that is not DICOM."""
SKIPPED_DICOMDIR = "skipped (DICOMDIR)"
"""Label of a DICOMDIR (the index of a CD/DVD export, not an instance) found in a folder."""
SKIPPED_HIDDEN = "skipped (hidden file)"
"""Label of a hidden file (a name starting with ``.``) found in a folder."""


class ScuError(Unavailable):
    """The peer could not be reached, or refused the association."""


@dataclass(frozen=True)
class SendResult:
    """What happened to one file."""

    path: Path
    status: int | None
    """The C-STORE status, or ``None`` when nothing was sent (unreadable, no association)."""
    message: str
    skipped: bool = False
    """True for a file found in a folder and left alone (not DICOM, hidden): not a failure."""

    @property
    def ok(self) -> bool:
        """True when the peer answered Success."""
        return self.status == SUCCESS

    @property
    def label(self) -> str:
        """A short status label for summaries, e.g. ``0xC000 Cannot Understand``."""
        if self.status is None:
            return self.message.split(":", 1)[0]
        return f"0x{self.status:04X} {status_name(self.status)}"


def _make_ae(calling_aet: str, timeout_s: float) -> AE:
    ae = AE(ae_title=calling_aet)
    ae.acse_timeout = timeout_s
    ae.dimse_timeout = timeout_s
    ae.network_timeout = timeout_s
    ae.connection_timeout = timeout_s
    return ae


def why_no_association(
    assoc: Association, host: str, port: int, called_aet: str, timeout_s: float
) -> str:
    """Say why ``assoc`` was not established, in words a radiographer can act on.

    Parameters
    ----------
    assoc
        The :class:`pynetdicom.association.Association` that failed.
    host, port, called_aet
        Where it was requested.
    timeout_s
        The association's timeout (the TCP probe made when the peer did not associate waits
        at most 3 s of it).

    Returns
    -------
    str
        For example ``"rejected by ICS_TRIAGE at 10.0.0.5:11112: Rejected Permanent, Service
        User, Calling AE title not recognised"`` or ``"cannot connect to 10.0.0.5:11112:
        connection refused (nothing listens there)"``.
    """
    where = f"{called_aet} at {host}:{port}"
    if assoc.is_rejected:
        primitive = assoc.acceptor.primitive  # the A-ASSOCIATE-RJ the peer answered with
        parts = (
            [primitive.result_str, primitive.source_str, primitive.reason_str]
            if primitive is not None
            else []
        )
        detail = ", ".join(p for p in parts if p)
        return f"rejected by {where}" + (f": {detail}" if detail else "")
    try:  # pynetdicom reports a failed connection as an abort: find out which it was
        # (briefly: the association attempt has already waited for the full timeout)
        with socket.create_connection((host, port), timeout=min(timeout_s, _PROBE_S)):
            pass
    except ConnectionRefusedError:
        return f"cannot connect to {host}:{port}: connection refused (nothing listens there)"
    except TimeoutError:
        return f"cannot connect to {host}:{port}: no answer within {timeout_s:g} s"
    except OSError as exc:
        return f"cannot connect to {host}:{port}: {exc.strerror or exc}"
    if assoc.is_aborted:
        return (
            f"aborted by {where} while associating (check the called AE title and that the "
            "peer accepts these SOP classes)"
        )
    return f"no association with {where}: the peer accepted the connection but did not answer"


def probe(host: str, port: int, timeout_s: float) -> str:
    """Open and close a TCP connection to ``host:port``; say why it failed, or ``""``.

    A caller that retries a peer on a schedule probes first: pynetdicom leaks the socket of a
    refused connection, which a long-running worker must not accumulate.

    Parameters
    ----------
    host, port
        The peer.
    timeout_s
        The longest wait (at most 3 s are spent).

    Returns
    -------
    str
        ``""`` when something listens there, else the reason in words.
    """
    try:
        with socket.create_connection((host, port), timeout=min(timeout_s, _PROBE_S)):
            return ""
    except ConnectionRefusedError:
        return f"cannot connect to {host}:{port}: connection refused (nothing listens there)"
    except TimeoutError:
        return f"cannot connect to {host}:{port}: no answer within {min(timeout_s, _PROBE_S):g} s"
    except OSError as exc:
        return f"cannot connect to {host}:{port}: {exc.strerror or exc}"


def echo(
    host: str,
    port: int,
    *,
    calling_aet: str = "TRIAGE_SCU",
    called_aet: str = "ANY-SCP",
    timeout_s: float = 10.0,
    tls: TlsClient | None = None,
) -> int:
    """Send one C-ECHO and return its status (over TLS with ``tls``).

    Raises
    ------
    ScuError
        If no association could be made.
    """
    ae = _make_ae(calling_aet, timeout_s)
    ae.add_requested_context(verification_sop_class())
    assoc = _associate(ae, host, port, called_aet, tls)
    if not assoc.is_established:
        raise ScuError(why_no_association(assoc, host, port, called_aet, timeout_s))
    try:
        response = assoc.send_c_echo()
    finally:
        assoc.release()
    if not response or "Status" not in response:
        raise ScuError(f"no C-ECHO response from {host}:{port}")
    return int(response.Status)


@dataclass(frozen=True)
class _Item:
    path: Path
    sop_class: str
    transfer_syntax: str
    has_meta: bool


@dataclass(frozen=True)
class _Unsendable:
    reason: str
    marked: bool
    """Whether the file has the ``DICM`` marker at offset 128 (it looked like DICOM)."""
    directory: bool = False
    """Whether the file is a DICOMDIR (Media Storage Directory): an index, not an instance."""


def _inspect(path: Path) -> _Item | _Unsendable:
    try:
        marked = is_dicom(path)
    except OSError as exc:
        return _Unsendable(f"unreadable: {type(exc).__name__}: {exc}", marked=False)
    kind = "unreadable" if marked else "not DICOM"
    try:
        with warnings.catch_warnings():
            if not marked:  # probing a file that may be anything: pydicom's guesses are noise
                warnings.simplefilter("ignore")
            ds = dcmread(path, stop_before_pixels=True, force=True)
    except Exception as exc:  # any unreadable file is reported, never fatal
        return _Unsendable(f"{kind}: {type(exc).__name__}: {exc}", marked)
    sop_class = str(ds.get("SOPClassUID", "") or "")
    meta = getattr(ds, "file_meta", None)
    if meta is not None and meta.get("MediaStorageSOPClassUID") == MediaStorageDirectoryStorage:
        reason = "a DICOMDIR (the index of a media export), not an instance to store"
        return _Unsendable(f"not an instance: {reason}", marked, directory=True)
    if not sop_class:
        if not marked:
            return _Unsendable("not DICOM: no DICM marker and no SOP Class UID", marked)
        return _Unsendable("unreadable: not a DICOM instance (no SOP Class UID)", marked)
    ts = str(meta.get("TransferSyntaxUID", "")) if meta is not None else ""
    return _Item(path, sop_class, ts or _encoding_of(ds), has_meta=bool(ts))


def _encoding_of(ds: Dataset) -> str:
    """Return the transfer syntax a dataset without file meta was read in (pynetdicom sends so)."""
    implicit, little = ds.original_encoding
    if implicit is not False:
        return str(ImplicitVRLittleEndian)
    return str(ExplicitVRLittleEndian if little is not False else ExplicitVRBigEndian)


def _without_meta(item: _Item) -> Dataset:
    """Read a file that has no file meta, and name its transfer syntax for pynetdicom."""
    ds = dcmread(item.path, force=True)
    ds.ensure_file_meta()
    ds.file_meta.TransferSyntaxUID = UID(item.transfer_syntax)
    return ds


def send_files(
    files: list[Path],
    host: str,
    port: int,
    *,
    calling_aet: str = "TRIAGE_SCU",
    called_aet: str = "ANY-SCP",
    timeout_s: float = 30.0,
    on_result: Callable[[SendResult], None] | None = None,
    found: Collection[Path] = frozenset(),
    tls: TlsClient | None = None,
) -> list[SendResult]:
    """C-STORE every file to ``host:port``, one result per file, in order.

    Parameters
    ----------
    files
        DICOM files (see :func:`collect_files`).
    host, port
        The peer.
    calling_aet, called_aet
        AE titles.
    timeout_s
        ACSE, DIMSE, network and connection timeouts.
    on_result
        Called after each file (progress bars).
    found
        The files found by walking a folder rather than named by the user (see
        :attr:`Collected.found`): one that is not DICOM (no ``DICM`` marker at offset 128 and
        no dataset with a SOP Class UID), or is a DICOMDIR, is reported as skipped, not as a
        failure. A file named by the user that is not DICOM, or a DICOMDIR, is a failure.
    tls
        Associate over DICOM TLS (CA bundle, client certificate and key).

    Returns
    -------
    list of SendResult
        Same order as ``files``.
    """
    results: dict[Path, SendResult] = {}

    def report(result: SendResult) -> None:
        results[result.path] = result
        if on_result is not None:
            on_result(result)

    items: list[_Item] = []
    for path in files:
        inspected = _inspect(path)
        if isinstance(inspected, _Item):
            items.append(inspected)
        elif path in found and inspected.directory:
            logger.debug("%s: skipped, %s", path, inspected.reason)
            reason = inspected.reason.split(": ", 1)[-1]
            report(SendResult(path, None, f"{SKIPPED_DICOMDIR}: {reason}", skipped=True))
        elif path in found and not inspected.marked:
            reason = inspected.reason.split(": ", 1)[-1]
            logger.debug("%s: skipped, %s", path, inspected.reason)
            report(SendResult(path, None, f"{SKIPPED_NOT_DICOM}: {reason}", skipped=True))
        else:
            logger.warning("%s: %s", path, inspected.reason)
            report(SendResult(path, None, inspected.reason))
    pairs = sorted({(i.sop_class, i.transfer_syntax) for i in items})
    for start in range(0, len(pairs), MAX_CONTEXTS):
        chunk = set(pairs[start : start + MAX_CONTEXTS])
        batch = [i for i in items if (i.sop_class, i.transfer_syntax) in chunk]
        peer = _Peer(host, port, calling_aet, called_aet, timeout_s, tls)
        _send_batch(batch, sorted(chunk), peer, report)
    return [results[p] for p in files if p in results]


@dataclass(frozen=True)
class _Peer:
    host: str
    port: int
    calling_aet: str
    called_aet: str
    timeout_s: float
    tls: TlsClient | None


def _associate(ae: AE, host: str, port: int, called_aet: str, tls: TlsClient | None) -> Association:
    if tls is None:
        return ae.associate(host, port, ae_title=called_aet)
    return ae.associate(host, port, ae_title=called_aet, tls_args=tls.tls_args(host))


def _send_batch(
    batch: list[_Item],
    pairs: list[tuple[str, str]],
    peer: _Peer,
    report: Callable[[SendResult], None],
) -> None:
    ae = _make_ae(peer.calling_aet, peer.timeout_s)
    for sop_class, ts in pairs:
        ae.add_requested_context(sop_class, ts)
    assoc = _associate(ae, peer.host, peer.port, peer.called_aet, peer.tls)
    if not assoc.is_established:
        why = why_no_association(assoc, peer.host, peer.port, peer.called_aet, peer.timeout_s)
        for item in batch:
            report(SendResult(item.path, None, f"no association: {why}"))
        return
    try:
        for item in batch:
            if not assoc.is_established:
                report(SendResult(item.path, None, "not sent: association ended"))
                continue
            try:
                source = item.path if item.has_meta else _without_meta(item)
                response = assoc.send_c_store(source)
            except Exception as exc:  # a file pynetdicom cannot send is reported, not fatal
                report(SendResult(item.path, None, f"not sent: {type(exc).__name__}: {exc}"))
                continue
            if not response or "Status" not in response:
                report(SendResult(item.path, None, "no response: association aborted or timed out"))
                continue
            status = int(response.Status)
            comment = str(response.get("ErrorComment", "") or "")
            report(SendResult(item.path, status, comment or status_name(status)))
    finally:
        if assoc.is_established:
            assoc.release()
