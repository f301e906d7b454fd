"""Stalled and trickling connections are closed within their deadlines, and shut nobody out.

Issue 13 defect 1: four associations announcing a huge P-DATA-TF and 36 connections sending part
of an A-ASSOCIATE-RQ held every slot for as long as the attacker liked; every other echoscu was
refused ("local limit exceeded").
"""

from __future__ import annotations

import time

import pytest

from tests.builders.gateway import GatewayFactory
from tests.builders.pdus import STALL_MODES, StallingPeer
from tests.builders.peers import echoscu

pytestmark = [pytest.mark.dcmtk, pytest.mark.slow]

# SLACK_S: the watchdog's 0.25 s tick, the peer's 0.1 s look, and a loaded 2-core CI machine
SETUP_S, PDU_S, SLACK_S = 2.0, 3.0, 2.0


def test_forty_stalling_connections_do_not_shut_out_another_client(
    gateway_factory: GatewayFactory,
) -> None:
    gw, _db, _ = gateway_factory(
        max_associations=16,
        max_associations_per_peer=8,
        association_setup_timeout_s=SETUP_S,
        pdu_read_timeout_s=PDU_S,
    )
    with StallingPeer(gw.port, "127.0.0.2", 40) as attacker:
        results = []
        for _ in range(20):  # about 10 s: every deadline passes several times
            results.append(echoscu(gw.port, "-aet", "OTHER").returncode)
            time.sleep(0.4)
        open_now = attacker.still_open()
    assert results.count(0) >= 19, results
    deadline = {
        "partial-rq": SETUP_S,
        "trickle-rq": SETUP_S,
        "huge-pdata": 0.0,  # longer than the maximum PDU length: closed at once
        "trickle-pdata": PDU_S,
    }
    for mode in STALL_MODES:
        lifetimes = attacker.lifetimes[mode]
        assert any(t > 0 for t in lifetimes), f"no {mode} connection was admitted and closed"
        assert max(lifetimes) <= deadline[mode] + SLACK_S, (mode, sorted(lifetimes)[-5:])
        if deadline[mode]:  # some were closed by their deadline, not refused at accept
            assert max(lifetimes) >= deadline[mode] - 0.5, (mode, sorted(lifetimes)[-5:])
    assert all(age <= deadline[mode] + SLACK_S for mode, age in open_now), open_now
