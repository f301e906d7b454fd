"""Raw DICOM upper-layer PDUs built with :mod:`struct`, for hostile and faulty peer tests.

pynetdicom's own SCU refuses to send most of what these tests need (an AE title with a newline,
a 65-character UID in a command, a half-sent PDU), so the bytes are put together here from
PS3.8 section 9.3 and sent over a plain socket.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
import time
from collections.abc import Sequence

from pydicom.dataset import Dataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_dataset

VERIFICATION = "1.2.840.10008.1.1"
"""Verification SOP Class UID."""

SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.7"
"""Secondary Capture Image Storage SOP Class UID."""

IMPLICIT_LE = "1.2.840.10008.1.2"
"""Implicit VR Little Endian."""

EXPLICIT_LE = "1.2.840.10008.1.2.1"
"""Explicit VR Little Endian."""

APPLICATION_CONTEXT = "1.2.840.10008.3.1.1.1"

A_ASSOCIATE_AC = 0x02
A_ASSOCIATE_RJ = 0x03
P_DATA_TF = 0x04
A_RELEASE_RP = 0x06
A_ABORT = 0x07


def _item(item_type: int, value: bytes) -> bytes:
    return struct.pack(">BBH", item_type, 0, len(value)) + value


def _uid(uid: str) -> bytes:
    raw = uid.encode("ascii")
    return raw + b"\0" if len(raw) % 2 else raw


def associate_rq(
    calling: bytes | str = b"SCU",
    called: bytes | str = b"ICS_TRIAGE",
    contexts: Sequence[tuple[int, str, Sequence[str]]] = ((1, VERIFICATION, (IMPLICIT_LE,)),),
    max_pdu: int = 16384,
) -> bytes:
    """Return an A-ASSOCIATE-RQ PDU.

    Parameters
    ----------
    calling, called : bytes or str
        AE titles, sent as given (padded with spaces to 16 bytes, never validated).
    contexts : sequence of (int, str, sequence of str)
        Presentation contexts: id, abstract syntax, transfer syntaxes.
    max_pdu : int
        Maximum length received, in the user information item.

    Returns
    -------
    bytes
        The PDU.
    """
    aets = [a.encode("latin-1") if isinstance(a, str) else a for a in (called, calling)]
    body = struct.pack(">HH", 1, 0) + b"".join(a[:16].ljust(16, b" ") for a in aets) + bytes(32)
    body += _item(0x10, APPLICATION_CONTEXT.encode())
    for ctx_id, abstract, syntaxes in contexts:
        sub = _item(0x30, _uid(abstract)) + b"".join(_item(0x40, _uid(ts)) for ts in syntaxes)
        body += _item(0x20, struct.pack(">BBBB", ctx_id, 0, 0, 0) + sub)
    user = _item(0x51, struct.pack(">I", max_pdu))
    user += _item(0x52, _uid("1.2.826.0.1.3680043.9.7433.1"))
    body += _item(0x50, user)
    return struct.pack(">BBI", 0x01, 0, len(body)) + body


def p_data_tf(ctx_id: int, data: bytes, *, command: bool, last: bool = True) -> bytes:
    """Return a P-DATA-TF PDU holding one presentation data value.

    Parameters
    ----------
    ctx_id : int
        The presentation context.
    data : bytes
        The fragment (a command or dataset, or part of one).
    command : bool
        Whether the fragment is part of a command (else a dataset).
    last : bool
        Whether it is the last fragment.

    Returns
    -------
    bytes
        The PDU.
    """
    header = (0x01 if command else 0x00) | (0x02 if last else 0x00)
    pdv = struct.pack(">IBB", len(data) + 2, ctx_id, header) + data
    return struct.pack(">BBI", P_DATA_TF, 0, len(pdv)) + pdv


def release_rq() -> bytes:
    """Return an A-RELEASE-RQ PDU."""
    return struct.pack(">BBI", 0x05, 0, 4) + bytes(4)


def element(group: int, elem: int, value: bytes) -> bytes:
    """Return one Implicit VR Little Endian element (value padded to even length)."""
    if len(value) % 2:
        value += b"\0"
    return struct.pack("<HHI", group, elem, len(value)) + value


def command_set(*elements: bytes) -> bytes:
    """Return a command set: its Command Group Length followed by ``elements``."""
    body = b"".join(elements)
    return element(0x0000, 0x0000, struct.pack("<I", len(body))) + body


def c_store_rq(sop_class: str, sop_instance: bytes, message_id: int = 1) -> bytes:
    """Return a C-STORE-RQ command set whose Affected SOP Instance UID is ``sop_instance`` as is.

    Parameters
    ----------
    sop_class : str
        Affected SOP Class UID.
    sop_instance : bytes
        Affected SOP Instance UID, sent unchecked (too long, empty, any bytes).
    message_id : int
        Message ID.

    Returns
    -------
    bytes
        The command set (Implicit VR Little Endian).
    """
    return command_set(
        element(0x0000, 0x0002, _uid(sop_class)),
        element(0x0000, 0x0100, struct.pack("<H", 0x0001)),
        element(0x0000, 0x0110, struct.pack("<H", message_id)),
        element(0x0000, 0x0700, struct.pack("<H", 0)),
        element(0x0000, 0x0800, struct.pack("<H", 0x0000)),
        element(0x0000, 0x1000, sop_instance),
    )


def recv_exact(sock: socket.socket, n: int) -> bytes:
    """Read exactly ``n`` bytes (``ConnectionError`` if the peer closes first)."""
    out = b""
    while len(out) < n:
        chunk = sock.recv(n - len(out))
        if not chunk:
            raise ConnectionError(f"peer closed after {len(out)} of {n} bytes")
        out += chunk
    return out


def read_pdu(sock: socket.socket) -> tuple[int, bytes]:
    """Read one PDU; return its type and body."""
    pdu_type, _, length = struct.unpack(">BBI", recv_exact(sock, 6))
    return pdu_type, recv_exact(sock, length)


def accepted_context(body: bytes, ctx_id: int) -> bool:
    """Return whether an A-ASSOCIATE-AC body accepts presentation context ``ctx_id``."""
    pos = 68  # protocol version, reserved, AE titles, 32 reserved bytes
    while pos + 4 <= len(body):
        item_type, _, length = struct.unpack(">BBH", body[pos : pos + 4])
        value = body[pos + 4 : pos + 4 + length]
        if item_type == 0x21 and value[0] == ctx_id:
            return value[2] == 0
        pos += 4 + length
    return False


def command_status(body: bytes) -> int | None:
    """Return the Status (0000,0900) of the command in a P-DATA-TF body, if it carries one."""
    data = body[6:]  # PDV length (4), context id, message control header
    pos = 0
    while pos + 8 <= len(data):
        group, elem, length = struct.unpack("<HHI", data[pos : pos + 8])
        if (group, elem) == (0x0000, 0x0900):
            return int(struct.unpack("<H", data[pos + 8 : pos + 10])[0])
        pos += 8 + length
    return None


def connect(port: int, timeout: float = 10.0) -> socket.socket:
    """Open a TCP connection to ``127.0.0.1:port`` with a receive timeout."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    sock.settimeout(timeout)
    return sock


def implicit_le(ds: Dataset) -> bytes:
    """Return ``ds`` encoded in Implicit VR Little Endian, without file meta (as sent in P-DATA)."""
    fp = DicomBytesIO()
    fp.is_little_endian = True
    fp.is_implicit_VR = True
    write_dataset(fp, ds)
    return fp.getvalue()


def store_exchange(
    port: int,
    sop_class: str,
    command_uid: bytes,
    dataset: bytes,
    timeout: float = 10.0,
    transfer_syntax: str = IMPLICIT_LE,
) -> tuple[int, int | None]:
    """Associate, send one C-STORE (command UID as given, dataset bytes as given), read the answer.

    Parameters
    ----------
    port : int
        The listener's port on 127.0.0.1.
    sop_class : str
        The SOP Class UID negotiated and named in the command.
    command_uid : bytes
        The command's Affected SOP Instance UID, unchecked.
    dataset : bytes
        The dataset, encoded in ``transfer_syntax``.
    timeout : float
        How long to wait for each answer.
    transfer_syntax : str
        The one transfer syntax proposed (Implicit VR Little Endian by default).

    Returns
    -------
    tuple of (int, int or None)
        The type of the PDU answering the C-STORE, and its Status when it is a P-DATA-TF.
    """
    with connect(port, timeout) as sock:
        sock.sendall(associate_rq(contexts=[(1, sop_class, [transfer_syntax])]))
        pdu_type, body = read_pdu(sock)
        assert pdu_type == A_ASSOCIATE_AC and accepted_context(body, 1), pdu_type
        sock.sendall(p_data_tf(1, c_store_rq(sop_class, command_uid), command=True))
        step = 64 * 1024  # fragments well below the listener's maximum PDU length
        for start in range(0, max(len(dataset), 1), step):
            last = start + step >= len(dataset)
            sock.sendall(p_data_tf(1, dataset[start : start + step], command=False, last=last))
        pdu_type, body = read_pdu(sock)
        status = command_status(body) if pdu_type == P_DATA_TF else None
        if pdu_type == P_DATA_TF:
            sock.sendall(release_rq())
            read_pdu(sock)
        return pdu_type, status


STALL_MODES = ("partial-rq", "trickle-rq", "huge-pdata", "trickle-pdata")
"""How a stalling peer misbehaves on each connection.

``partial-rq``: 12 bytes of an A-ASSOCIATE-RQ, then silence; ``trickle-rq``: an A-ASSOCIATE-RQ
one byte every half second; ``huge-pdata``: an association, then a P-DATA-TF header announcing
almost 4 GiB and 8 bytes; ``trickle-pdata``: an association, then a P-DATA-TF one byte every
half second.
"""


class StallingPeer:
    """Keep ``count`` misbehaving connections open from ``source``, reopening each one closed.

    Every connection's lifetime (from connect, or for ``*-pdata`` from the first byte of the
    stalled PDU, to the listener closing it) is kept per mode in :attr:`lifetimes`, so a test
    can check that each was closed within its deadline.

    Parameters
    ----------
    port : int
        The listener's port on 127.0.0.1.
    source : str
        Local address to connect from (any of 127.0.0.0/8 on Linux), i.e. the peer's address.
    count : int
        Connections kept open at once, the modes of :data:`STALL_MODES` in turn.
    """

    def __init__(self, port: int, source: str, count: int) -> None:
        self.port, self.source, self.count = port, source, count
        self.lifetimes: dict[str, list[float]] = {m: [] for m in STALL_MODES}
        self._open: dict[socket.socket, tuple[str, float]] = {}
        self._sent: dict[socket.socket, int] = {}
        self._stop = threading.Event()
        self._lock = threading.Lock()  # _open and _sent: the connector and the watcher share them
        self._thread = threading.Thread(target=self._run, name="StallingPeer", daemon=True)
        self._connector = threading.Thread(
            target=self._keep_connecting, name="StallingPeer-connect", daemon=True
        )
        self._opened = 0

    def _connect(self, mode: str) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind((self.source, 0))
        sock.settimeout(5)
        try:
            sock.connect(("127.0.0.1", self.port))
            started = time.monotonic()
            rq = associate_rq()
            if mode == "partial-rq":
                sock.sendall(rq[:12])
            elif mode in ("huge-pdata", "trickle-pdata"):
                sock.sendall(rq)
                if read_pdu(sock)[0] != A_ASSOCIATE_AC:
                    raise ConnectionError("association refused")
                if mode == "huge-pdata":
                    sock.sendall(struct.pack(">BBI", P_DATA_TF, 0, 0xFFFFFFF0) + bytes(8))
                started = time.monotonic()  # the PDU deadline runs from its first byte
        except OSError:  # refused at accept (per-peer limit) or closed while associating
            sock.close()
            with self._lock:
                self.lifetimes[mode].append(0.0)
            return
        sock.setblocking(False)
        with self._lock:
            self._open[sock] = (mode, started)
            self._sent[sock] = 0

    def _closed(self, sock: socket.socket) -> bool:
        try:
            return sock.recv(65536) == b""
        except BlockingIOError:
            return False
        except OSError:
            return True

    def _keep_connecting(self) -> None:
        # Apart from the watcher: an association handshake waits for the listener's answer, and
        # that wait must not delay noticing when other connections are closed.
        while not self._stop.wait(0.5):
            while not self._stop.is_set():
                with self._lock:
                    if len(self._open) >= self.count:
                        break
                self._connect(STALL_MODES[self._opened % len(STALL_MODES)])
                self._opened += 1

    def _run(self) -> None:
        trickle = p_data_tf(1, bytes(64), command=True)
        rq = associate_rq()
        beat = 0
        while not self._stop.wait(0.1):  # look for closed connections every 0.1 s
            beat += 1
            with self._lock:
                current = list(self._open.items())
            for sock, (mode, started) in current:
                if self._closed(sock):
                    with self._lock:
                        self.lifetimes[mode].append(time.monotonic() - started)
                        del self._open[sock], self._sent[sock]
                    sock.close()
                    continue
                stream = rq if mode == "trickle-rq" else trickle if mode == "trickle-pdata" else b""
                with self._lock:
                    sent = self._sent[sock]
                if sent < len(stream) and beat % 5 == 1:  # one byte every half second
                    if sent == 0 and mode == "trickle-pdata":  # the PDU's deadline starts now
                        with self._lock:
                            self._open[sock] = (mode, time.monotonic())
                    with contextlib.suppress(OSError):
                        n = sock.send(stream[sent : sent + 1])
                        with self._lock:
                            self._sent[sock] += n

    def __enter__(self) -> StallingPeer:
        """Open the connections and keep them open in a thread."""
        self._thread.start()
        self._connector.start()
        return self

    def __exit__(self, *exc: object) -> None:
        """Stop, and close what is still open."""
        self._stop.set()
        self._thread.join(timeout=10)
        self._connector.join(timeout=10)
        with self._lock:
            for sock in self._open:
                sock.close()

    def still_open(self) -> list[tuple[str, float]]:
        """Return the mode and age of each connection still open."""
        now = time.monotonic()
        with self._lock:
            return [(mode, now - started) for mode, started in self._open.values()]
