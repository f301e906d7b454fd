"""The connection watch follows PDU framing byte by byte and names each overdue deadline."""

from __future__ import annotations

import struct

from dicom_gateway.watchdog import ConnectionLimits, ConnectionWatch
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
