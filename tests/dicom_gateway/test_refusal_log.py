"""One peer's refusals cannot flood the listener's log or its store (issue 13)."""

from __future__ import annotations

import contextlib
import logging
import re
import socket
import threading
import time

import pytest
from sqlalchemy import func, select

from dicom_gateway.refusals import RefusalLog
from tests.builders import pdus
from tests.builders.gateway import GatewayFactory
from tests.builders.peers import wait_for
from worklist.db.schema import Event

PER_WINDOW, WINDOW_S = 20, 5.0


def _refused(port: int, source: str) -> None:
    """Propose an association with a calling AE title that is not allowed, from ``source``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((source, 0))
        sock.settimeout(10)
        sock.connect(("127.0.0.1", port))
        sock.sendall(pdus.associate_rq(calling=b"EVIL"))
        with contextlib.suppress(ConnectionError, TimeoutError):
            pdus.read_pdu(sock)  # A-ASSOCIATE-RJ (or the connection closed at accept)


@pytest.mark.slow  # 1,000 associations and the last 5 s window: about 30 s on this loaded machine
def test_a_thousand_refusals_from_one_peer_log_a_bounded_number_of_lines(
    gateway_factory: GatewayFactory, caplog: pytest.LogCaptureFixture
) -> None:
    gw, db, _ = gateway_factory(
        allowed_calling_aets=["GOOD"],
        refusal_log_per_peer=PER_WINDOW,
        refusal_log_window_s=WINDOW_S,
    )
    caplog.set_level(logging.WARNING)
    started = time.monotonic()
    remaining = iter(range(1000))
    lock = threading.Lock()

    def flood() -> None:
        while True:
            with lock:
                if next(remaining, None) is None:
                    return
            _refused(gw.port, "127.0.0.1")

    threads = [threading.Thread(target=flood) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    _refused(gw.port, "127.0.0.2")  # another peer, while the first one's lines are suppressed
    summary = re.compile(r"(\d+) more refusals from 127\.0\.0\.1 suppressed in the last 5 s")

    def accounted() -> int:
        """Refusals of 127.0.0.1 logged in full, plus those its summaries counted."""
        lines = [r.getMessage() for r in caplog.records if "127.0.0.1" in r.getMessage()]
        counted = [int(m.group(1)) for line in lines if (m := summary.fullmatch(line))]
        return len(lines) - len(counted) + sum(counted)

    # Every window's summary comes out once the window is over, flood or not.
    assert wait_for(lambda: accounted() >= 1000, WINDOW_S + 10), accounted()
    elapsed = time.monotonic() - started
    lines = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    flooding = [line for line in lines if "127.0.0.2" not in line]
    windows = int(elapsed / WINDOW_S) + 1
    # Each window: PER_WINDOW refusals in full and one summary, however many were refused.
    assert len(flooding) <= windows * (PER_WINDOW + 1), (elapsed, len(flooding), flooding[-5:])
    assert any(summary.fullmatch(line) for line in flooding), flooding[-5:]
    assert len(flooding) < 1000 / 2, len(flooding)
    assert any("127.0.0.2" in line and "rejected" in line for line in lines), lines[-5:]
    with db.read() as session:
        recorded = session.scalar(
            select(func.count()).select_from(Event).where(Event.action == "association.rejected")
        )
    assert recorded is not None and recorded <= windows * PER_WINDOW + 1, recorded


def test_the_refusal_log_counts_per_address_and_summarises_each_window(
    caplog: pytest.LogCaptureFixture,
) -> None:
    now = [0.0]
    log = RefusalLog(per_window=3, window_s=60.0, clock=lambda: now[0])
    assert [log.allow("10.0.0.1") for _ in range(5)] == [True, True, True, False, False]
    assert log.suppressing("10.0.0.1") and not log.suppressing("10.0.0.2")
    assert log.allow("10.0.0.2")  # another address is logged while the first is suppressed
    assert log.flush() == 0  # the window is not over
    now[0] = 61.0
    assert log.flush() == 1
    assert caplog.messages[-1] == "2 more refusals from 10.0.0.1 suppressed in the last 60 s"
    assert log.allow("10.0.0.1")  # a new window
