"""The connection watch follows PDU framing byte by byte and names each overdue deadline."""

from __future__ import annotations

import socket
import struct
import time

from dicom_gateway.watchdog import ConnectionLimits, ConnectionWatch, WatchedSocket
from tests.builders import pdus

LIMITS = ConnectionLimits(setup_s=10, pdu_s=30, per_peer=4, max_pdu=16384)


def test_framing_across_arbitrary_reads() -> None:
    watch = ConnectionWatch(peer="10.0.0.1:1000", accepted_at=0.0, max_pdu=LIMITS.max_pdu)
    rq = pdus.associate_rq()
    for i in range(len(rq) - 1):  # one byte per recv
        watch.feed(rq[i : i + 1], now=1.0 + i * 0.001)
    assert not watch.associate_rq_done and watch.pdu_started_at == 1.0
    assert watch.overdue(10.5, LIMITS) == "no complete A-ASSOCIATE-RQ within 10 s"
    watch.feed(rq[-1:], now=2.0)
    assert watch.associate_rq_done and watch.pdu_started_at is None
    assert watch.overdue(1000.0, LIMITS) is None  # idle between PDUs: pynetdicom's own timeout
    two = pdus.p_data_tf(1, b"x" * 100, command=True) * 2
    watch.feed(two + two[:3], now=3.0)  # two PDUs and the start of a third in one read
    assert watch.pdu_started_at == 3.0
    assert watch.overdue(33.5, LIMITS) == "a PDU not complete within 30 s"


def test_a_pdu_announcing_more_than_the_maximum_is_overdue_at_once() -> None:
    watch = ConnectionWatch(peer="10.0.0.1:1000", accepted_at=0.0, max_pdu=LIMITS.max_pdu)
    watch.feed(pdus.associate_rq(), now=0.1)
    watch.feed(struct.pack(">BBI", pdus.P_DATA_TF, 0, 0xFFFFFFF0) + bytes(8), now=0.2)
    assert watch.overdue(0.2, LIMITS) == "a PDU announcing 4294967280 bytes (more than 16384)"


def _ended_by_the_peer(cls: type[socket.socket]) -> socket.socket:
    """An accepted connection of class ``cls`` that the watchdog shut down, then the peer
    closed (a stalled peer noticing its connection was closed)."""
    with socket.create_server(("127.0.0.1", 0)) as server:
        client = socket.create_connection(server.getsockname())
        accepted, _ = server.accept()
        ours = cls(accepted.family, accepted.type, accepted.proto, fileno=accepted.detach())
        socket.socket.shutdown(ours, socket.SHUT_RDWR)  # the watchdog, past a deadline
        client.close()
    time.sleep(0.1)  # the peer's FIN arrives
    return ours


def _close_as_pynetdicom_does(sock: socket.socket) -> None:
    try:  # pynetdicom's AssociationSocket._shutdown_socket
        sock.shutdown(socket.SHUT_RDWR)
        sock.close()
    except Exception:
        pass


def test_a_watched_socket_ended_by_the_peer_is_closed_not_left_to_the_collector() -> None:
    # Seen in the clean-clone CI run: ResourceWarning "unclosed WatchedSocket" (stalled peers).
    plain = _ended_by_the_peer(socket.socket)
    _close_as_pynetdicom_does(plain)
    assert plain.fileno() != -1  # the control: shutdown raised ENOTCONN, close was skipped
    plain.close()
    watched = _ended_by_the_peer(WatchedSocket)
    _close_as_pynetdicom_does(watched)
    assert watched.fileno() == -1
