"""Deadlines and limits per connection, kept by a watchdog beside pynetdicom's threads.

pynetdicom's network thread reads the rest of a PDU with a blocking ``recv`` and no deadline:
a peer that announces a PDU and stops sending (or sends one byte every few seconds) holds the
association, and a slot of ``maximum_associations``, for as long as it keeps the socket open.
Its own timeouts (ACSE, network) are checked by the very thread that is blocked.

Here, without changing pynetdicom, the listener (:class:`dicom_gateway.scp.ListenerServer`)
hands pynetdicom a :class:`WatchedSocket`: a plain socket whose ``recv`` also feeds a small PDU
framer (:class:`ConnectionWatch`: where each PDU starts and ends, what it announces). A
:class:`Watchdog` thread shuts down (``SHUT_RDWR``) every socket that is past a deadline; the
blocked ``recv`` then returns, and pynetdicom ends the association as a closed connection.

* association setup: from the TCP accept to a complete A-ASSOCIATE-RQ;
* a whole PDU: from its first byte to its last;
* a PDU announcing more than the maximum PDU length (ours, as announced to the peer): at once;
* at most ``max_associations_per_peer`` connections per peer address (more are closed at
  accept), beside pynetdicom's ``maximum_associations`` for the whole listener process.

TLS connections are watched too: the TLS listener's sockets are :class:`WatchedSSLSocket`
(their decrypted bytes feed the framer), wrapped at accept without the handshake, which then
happens at the first ``recv`` on the association's thread; the setup deadline, counted from the
TCP accept, covers a handshake that never finishes. Shutting down the underlying TCP socket
unblocks a ``recv`` in TLS as in plain TCP.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from dicom_gateway.refusals import RefusalLog, peer_host

__all__ = ["ConnectionLimits", "ConnectionWatch", "Watchdog", "WatchedSSLSocket", "WatchedSocket"]

logger = logging.getLogger(__name__)

_A_ASSOCIATE_RQ = 0x01
_HEADER = 6  # PDU type, reserved, 4-byte length
_ASSOCIATE_RQ_MAX = 64 * 1024  # an A-ASSOCIATE-RQ is a few hundred bytes; beyond this is hostile


@dataclass(frozen=True)
class ConnectionLimits:
    """The deadlines and limits the watchdog keeps (from the gateway's settings).

    Attributes
    ----------
    setup_s
        Seconds from accept to a complete A-ASSOCIATE-RQ.
    pdu_s
        Seconds from the first byte of a PDU to its last.
    per_peer
        Connections allowed at once from one peer address.
    max_pdu
        Longest PDU accepted (0: no limit besides the deadlines).
    """

    setup_s: float
    pdu_s: float
    per_peer: int
    max_pdu: int = 0


@dataclass
class ConnectionWatch:
    """What the watchdog knows about one connection: fed with every byte pynetdicom reads."""

    peer: str
    accepted_at: float
    max_pdu: int = 0
    associate_rq_done: bool = False
    pdu_started_at: float | None = None
    oversized: int = 0
    refusals: RefusalLog | None = None
    _header: bytearray = field(default_factory=bytearray)
    _remaining: int = 0
    _type: int = 0

    def feed(self, data: bytes, now: float) -> None:
        """Follow the PDU framing through ``data`` (the bytes one ``recv`` returned)."""
        pos, size = 0, len(data)
        while pos < size:
            if len(self._header) < _HEADER:
                if not self._header:
                    self.pdu_started_at = now
                take = min(_HEADER - len(self._header), size - pos)
                self._header += data[pos : pos + take]
                pos += take
                if len(self._header) == _HEADER:
                    self._type = self._header[0]
                    self._remaining = int.from_bytes(self._header[2:6], "big")
                    self._check_length()
                    if self._remaining == 0:
                        self._complete()
            else:
                take = min(self._remaining, size - pos)
                pos += take
                self._remaining -= take
                if self._remaining == 0:
                    self._complete()

    def _check_length(self) -> None:
        limit = _ASSOCIATE_RQ_MAX if self._type == _A_ASSOCIATE_RQ else self.max_pdu
        if limit and self._remaining > max(limit, _HEADER):
            self.oversized = self._remaining

    def _complete(self) -> None:
        if self._type == _A_ASSOCIATE_RQ:
            self.associate_rq_done = True
        self._header.clear()
        self.pdu_started_at = None

    def overdue(self, now: float, limits: ConnectionLimits) -> str | None:
        """Return why the connection must be closed now, or ``None``."""
        if self.oversized:
            return f"a PDU announcing {self.oversized} bytes (more than {limits.max_pdu})"
        if not self.associate_rq_done and now - self.accepted_at > limits.setup_s:
            return f"no complete A-ASSOCIATE-RQ within {limits.setup_s:g} s"
        started = self.pdu_started_at
        if started is not None and now - started > limits.pdu_s:
            return f"a PDU not complete within {limits.pdu_s:g} s"
        return None


def _shutdown_quietly(shutdown: Callable[[int], None], how: int) -> None:
    """Call ``shutdown(how)``; a connection the peer (or the watchdog) already ended is no error.

    pynetdicom ends an association's socket with ``shutdown`` and then ``close`` in one ``try``
    block: when the connection is already gone, ``shutdown`` raises ENOTCONN, the ``close`` is
    skipped and the descriptor is left to the garbage collector (a ``ResourceWarning``). With
    that error ignored here, the ``close`` follows at once.
    """
    try:
        shutdown(how)
    except OSError as exc:
        if exc.errno != errno.ENOTCONN:
            raise


class WatchedSocket(socket.socket):
    """A TCP socket whose received bytes also feed its :class:`ConnectionWatch`."""

    watch: ConnectionWatch

    def recv(self, bufsize: int, flags: int = 0) -> bytes:
        """Receive as :meth:`socket.socket.recv` does, and tell the watch what arrived."""
        data = super().recv(bufsize, flags)
        if data:
            self.watch.feed(data, time.monotonic())
        return data

    def shutdown(self, how: int) -> None:
        """Shut down as :meth:`socket.socket.shutdown` does, ignoring ENOTCONN (see above)."""
        _shutdown_quietly(super().shutdown, how)


class WatchedSSLSocket(ssl.SSLSocket):
    """A TLS socket whose decrypted bytes feed its :class:`ConnectionWatch`.

    :func:`dicom_gateway.tls.server_context` makes it its context's ``sslsocket_class``. The
    handshake happens in the first ``recv`` (on the association's thread, not the accepting
    one), within the setup deadline; a failed handshake is logged with its reason.
    """

    watch: ConnectionWatch | None = None

    def recv(self, buflen: int = 1024, flags: int = 0) -> bytes:
        """Receive as :meth:`ssl.SSLSocket.recv` does, and tell the watch what arrived."""
        try:
            data = super().recv(buflen, flags)
        except ssl.SSLError as exc:
            watch = self.watch
            peer = watch.peer if watch is not None else "?"
            if watch is None or watch.refusals is None or watch.refusals.allow(peer_host(peer)):
                logger.warning("TLS connection from %s refused: %s", peer, exc.reason or exc)
            raise
        if data and self.watch is not None:
            self.watch.feed(data, time.monotonic())
        return data

    def shutdown(self, how: int) -> None:
        """Shut down as :meth:`ssl.SSLSocket.shutdown` does, ignoring ENOTCONN."""
        _shutdown_quietly(super().shutdown, how)


class Watchdog:
    """Admit connections within the per-peer limit and close those past their deadlines.

    Parameters
    ----------
    limits
        The deadlines and limits.
    interval_s
        How often the deadlines are checked.
    clock
        Monotonic clock (tests may pass their own).
    refusals
        The listener's refusal log (bounded lines per peer); ``None``: every refusal is logged.
    """

    def __init__(
        self,
        limits: ConnectionLimits,
        *,
        interval_s: float = 0.25,
        clock: Callable[[], float] = time.monotonic,
        refusals: RefusalLog | None = None,
    ) -> None:
        self.limits = limits
        self.refusals = refusals
        self.interval_s = interval_s
        self.clock = clock
        self._sockets: dict[socket.socket, ConnectionWatch] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def wrap(
        self,
        client: socket.socket,
        address: tuple[str, int],
        tls: ssl.SSLContext | None = None,
    ) -> socket.socket:
        """Return ``client`` as a :class:`WatchedSocket`, or with ``tls`` a watched TLS socket.

        The TLS handshake is not done here (the accepting thread must not wait for a peer):
        it happens at the first ``recv``, and the setup deadline covers it.
        """
        watch = ConnectionWatch(
            peer=f"{address[0]}:{address[1]}",
            accepted_at=self.clock(),
            max_pdu=self.limits.max_pdu,
            refusals=self.refusals,
        )
        if tls is not None:
            secure = tls.wrap_socket(client, server_side=True, do_handshake_on_connect=False)
            if isinstance(secure, WatchedSSLSocket):
                secure.watch = watch
            return secure
        if type(client) is not socket.socket:
            return client
        timeout = client.gettimeout()
        watched = WatchedSocket(client.family, client.type, client.proto, fileno=client.detach())
        watched.settimeout(timeout)
        watched.watch = watch
        return watched

    def admit(self, client: socket.socket, address: tuple[str, int], *, busy: int = 0) -> bool:
        """Register a new connection; ``False`` if its peer address has too many already.

        Parameters
        ----------
        client, address
            The accepted socket (as :meth:`wrap` returned it) and the peer's address.
        busy
            Associations of this peer the caller knows to be running (their threads may outlive
            their sockets); the larger of it and the watched sockets counts.
        """
        host = str(address[0])
        with self._lock:
            self._prune()
            watched = sum(1 for w in self._sockets.values() if w.peer.rsplit(":", 1)[0] == host)
            same = max(watched, busy)
            if same >= self.limits.per_peer:
                self._log(
                    host,
                    "connection from %s refused: %d connections from this address already "
                    "(max_associations_per_peer)",
                    host,
                    same,
                )
                return False
            if isinstance(client, WatchedSocket | WatchedSSLSocket) and client.watch is not None:
                self._sockets[client] = client.watch
        return True

    def _prune(self) -> None:
        for sock in [s for s in self._sockets if s.fileno() == -1]:
            del self._sockets[sock]

    def check(self) -> list[str]:
        """Shut down every connection past a deadline; return the reasons (one per socket)."""
        now = self.clock()
        closed = []
        with self._lock:
            self._prune()
            late = [(s, w, w.overdue(now, self.limits)) for s, w in self._sockets.items()]
            for sock, _watch, _reason in late:
                if _reason is not None:
                    del self._sockets[sock]
        for sock, watch, reason in late:
            if reason is None:
                continue
            host = peer_host(watch.peer)
            self._log(host, "closing the connection from %s: %s", watch.peer, reason)
            with contextlib.suppress(OSError):  # the blocked recv returns; pynetdicom closes
                # socket.socket's own shutdown, also for TLS: SSLSocket.shutdown would drop
                # the TLS object under the thread blocked in it
                socket.socket.shutdown(sock, socket.SHUT_RDWR)
            closed.append(reason)
        return closed

    def refuse(self, host: str, message: str, *args: object) -> None:
        """Log a refusal of ``host`` (``message % args``) unless its refusals are counted."""
        self._log(host, message, *args)

    def _log(self, host: str, message: str, *args: object) -> None:
        """Log a refusal of ``host`` unless its refusals are being counted instead."""
        if self.refusals is None or self.refusals.allow(host):
            logger.warning(message, *args)

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.check()
                if self.refusals is not None:
                    self.refusals.flush()
            except Exception:
                logger.exception("connection watchdog pass failed")

    def start(self) -> None:
        """Start checking deadlines in a daemon thread."""
        self._thread = threading.Thread(target=self._run, name="ConnectionWatchdog", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread (connections are left to pynetdicom)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
