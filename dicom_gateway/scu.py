"""The SCU side for radiographers: C-ECHO a peer, C-STORE files and folders to it.

:func:`send_files` reads each file's header only, proposes exactly the (SOP class, transfer
syntax) pairs the files need (in chunks of at most 128 presentation contexts per association)
and sends each file as it is on disk, without decoding or transcoding. A file that cannot be
read is reported, never fatal.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from pydicom import dcmread
from pydicom.uid import ImplicitVRLittleEndian
from pynetdicom import AE
from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]

from dicom_gateway.statuses import SUCCESS, status_name
from models.errors import TriageError

__all__ = [
    "ScuError",
    "SendResult",
    "collect_files",
    "echo",
    "send_files",
]

logger = logging.getLogger(__name__)

MAX_CONTEXTS = 128


class ScuError(TriageError):
    """The peer could not be reached, or refused the association."""


@dataclass(frozen=True)
class SendResult:
    """What happened to one file."""

    path: Path
    status: int | None
    """The C-STORE status, or ``None`` when nothing was sent (unreadable, no association)."""
    message: str

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


def echo(
    host: str,
    port: int,
    *,
    calling_aet: str = "TRIAGE_SCU",
    called_aet: str = "ANY-SCP",
    timeout_s: float = 10.0,
) -> int:
    """Send one C-ECHO and return its status.

    Raises
    ------
    ScuError
        If no association could be made.
    """
    ae = _make_ae(calling_aet, timeout_s)
    ae.add_requested_context(Verification)
    assoc = ae.associate(host, port, ae_title=called_aet)
    if not assoc.is_established:
        raise ScuError(
            f"no association with {called_aet} at {host}:{port} (rejected, aborted or unreachable)"
        )
    try:
        response = assoc.send_c_echo()
    finally:
        assoc.release()
    if not response or "Status" not in response:
        raise ScuError(f"no C-ECHO response from {host}:{port}")
    return int(response.Status)


def collect_files(paths: Iterable[Path]) -> list[Path]:
    """Expand folders recursively into their files (sorted); keep files as given."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found.extend(sorted(p for p in path.rglob("*") if p.is_file()))
        else:
            found.append(path)
    return found


@dataclass(frozen=True)
class _Item:
    path: Path
    sop_class: str
    transfer_syntax: str
    has_meta: bool


def _inspect(path: Path) -> _Item | str:
    try:
        ds = dcmread(path, stop_before_pixels=True, force=True)
    except Exception as exc:  # any unreadable file is reported, never fatal
        return f"unreadable: {type(exc).__name__}: {exc}"
    sop_class = str(ds.get("SOPClassUID", "") or "")
    if not sop_class:
        return "unreadable: not a DICOM instance (no SOP Class UID)"
    meta = getattr(ds, "file_meta", None)
    ts = str(meta.get("TransferSyntaxUID", "")) if meta is not None else ""
    return _Item(path, sop_class, ts or str(ImplicitVRLittleEndian), has_meta=bool(ts))


def send_files(
    files: list[Path],
    host: str,
    port: int,
    *,
    calling_aet: str = "TRIAGE_SCU",
    called_aet: str = "ANY-SCP",
    timeout_s: float = 30.0,
    on_result: Callable[[SendResult], None] | None = None,
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
        if isinstance(inspected, str):
            logger.warning("%s: %s", path, inspected)
            report(SendResult(path, None, inspected))
        else:
            items.append(inspected)
    pairs = sorted({(i.sop_class, i.transfer_syntax) for i in items})
    for start in range(0, len(pairs), MAX_CONTEXTS):
        chunk = set(pairs[start : start + MAX_CONTEXTS])
        batch = [i for i in items if (i.sop_class, i.transfer_syntax) in chunk]
        _send_batch(batch, sorted(chunk), host, port, calling_aet, called_aet, timeout_s, report)
    return [results[p] for p in files if p in results]


def _send_batch(
    batch: list[_Item],
    pairs: list[tuple[str, str]],
    host: str,
    port: int,
    calling_aet: str,
    called_aet: str,
    timeout_s: float,
    report: Callable[[SendResult], None],
) -> None:
    ae = _make_ae(calling_aet, timeout_s)
    for sop_class, ts in pairs:
        ae.add_requested_context(sop_class, ts)
    assoc = ae.associate(host, port, ae_title=called_aet)
    if not assoc.is_established:
        for item in batch:
            report(SendResult(item.path, None, f"no association: {host}:{port} refused"))
        return
    try:
        for item in batch:
            if not assoc.is_established:
                report(SendResult(item.path, None, "not sent: association ended"))
                continue
            try:
                source = item.path if item.has_meta else dcmread(item.path, force=True)
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
