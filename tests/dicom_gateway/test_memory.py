"""The memory budget of a listener process, and the split of the cap among processes."""

from __future__ import annotations

import threading

import pytest

from dicom_gateway.memory import (
    COST_FACTOR,
    MIN_SHARE_BYTES,
    MemoryBudget,
    plan_processes,
    resident_bytes,
)
from dicom_gateway.scp import ListenerServer
from tests.builders import pdus
from tests.builders.gateway import GatewayFactory
from worklist.ingest.header import InstanceTooLargeError

MIB = 1024 * 1024


def test_a_reservation_that_cannot_fit_is_refused_and_one_that_will_fit_waits() -> None:
    budget = MemoryBudget(capacity=300 * MIB, wait_s=0.2)
    assert budget.largest_instance() == 100 * MIB
    too_large = pytest.raises(InstanceTooLargeError, match="more than the listener's budget")
    with too_large, budget.reserve(301 * MIB, "instance X"):
        pass
    with budget.reserve(200 * MIB, "first") as free:
        assert free == 100 * MIB and budget.used == 200 * MIB
        busy = pytest.raises(InstanceTooLargeError, match=f"{100 * MIB} of the listener's .* now")
        with busy, budget.reserve(150 * MIB, "second"):
            pass
        assert budget.extend(150 * MIB) == 100 * MIB  # what is free, no more
        budget.give_back(100 * MIB)
    assert budget.used == 0

    waiting = MemoryBudget(capacity=300 * MIB, wait_s=10)
    held = threading.Event()
    done = threading.Event()

    def hold() -> None:
        with waiting.reserve(200 * MIB, "first"):
            held.set()
            done.wait(10)

    thread = threading.Thread(target=hold)
    thread.start()
    assert held.wait(5)
    threading.Timer(0.2, done.set).start()
    with waiting.reserve(200 * MIB, "second"):  # waits for the first to give its bytes back
        assert waiting.used == 200 * MIB
    thread.join()


def test_the_cap_is_split_among_processes_and_an_impossible_split_is_refused() -> None:
    cap = 1024 * MIB + resident_bytes()  # this process (pytest, grown by the suite) is counted
    processes, share = plan_processes(cap, 1, cpus=16, in_process=True)
    assert (processes, share) == (1, cap - cap // 8)  # the tests' in-process listener
    processes, share = plan_processes(cap, 1, cpus=16)  # one listener process beside this one
    assert processes == 1 and MIN_SHARE_BYTES <= share <= cap - cap // 8 - resident_bytes()
    processes, share = plan_processes(cap, 0, cpus=16)  # one per core, as many as fit
    assert 1 <= processes <= 3 and share >= MIN_SHARE_BYTES
    assert share * processes + resident_bytes() <= cap
    with pytest.raises(ValueError, match="raise it or lower processes"):
        plan_processes(cap, 8, cpus=16)
    assert COST_FACTOR * (share // COST_FACTOR) <= share


def test_a_listener_above_its_memory_share_closes_new_connections_at_accept(
    gateway_factory: GatewayFactory, caplog: pytest.LogCaptureFixture
) -> None:
    gw, _db, _ = gateway_factory()
    server = gw._server
    assert isinstance(server, ListenerServer)
    server.memory_share = 1  # any process holds more than one byte
    with pdus.connect(gw.port) as sock:
        sock.sendall(pdus.associate_rq())
        with pytest.raises(ConnectionError):
            pdus.read_pdu(sock)
    assert any("more than its share of max_memory_bytes" in m for m in caplog.messages)
    server.memory_share = 0  # no gate: the same request is accepted
    with pdus.connect(gw.port) as sock:
        sock.sendall(pdus.associate_rq())
        assert pdus.read_pdu(sock)[0] == pdus.A_ASSOCIATE_AC
        sock.sendall(pdus.release_rq())
        pdus.read_pdu(sock)
