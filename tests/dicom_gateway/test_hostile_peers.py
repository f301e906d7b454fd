"""Hostile and faulty peers speaking raw PDUs (issue 13): what they send never forges a log line,
and every C-STORE gets an answer.
"""

from __future__ import annotations

import logging
import socket
import struct
from pathlib import Path

import pytest
from pydicom.data import get_testdata_file
from pydicom.uid import DeflatedExplicitVRLittleEndian, generate_uid
from sqlalchemy import func, select

from dicom_gateway.statuses import CANNOT_UNDERSTAND, OUT_OF_RESOURCES, SUCCESS
from tests.builders import pdus
from tests.builders.dicom import make_dataset
from tests.builders.gateway import GatewayFactory
from tests.builders.hostile import dataset_part, deflate_bomb, nested_instance
from tests.builders.peers import storescu, wait_for
from worklist.db.schema import Event, Instance


def test_a_forged_calling_ae_title_does_not_forge_a_log_line(
    gateway_factory: GatewayFactory, capfd: pytest.CaptureFixture[str]
) -> None:
    # Two listener processes: their logging is the production set-up (basicConfig + protect).
    gw, _db, _ = gateway_factory(processes=2, allowed_calling_aets=["GOOD"])
    with pdus.connect(gw.port) as sock:
        sock.sendall(pdus.associate_rq(calling=b"A\nFORGED LINE\x00"))
        pdu_type, _ = pdus.read_pdu(sock)
    assert pdu_type in (pdus.A_ASSOCIATE_RJ, pdus.A_ABORT)  # pynetdicom aborts: invalid AE
    seen: list[str] = []

    def logged() -> bool:
        seen.append(capfd.readouterr().err)
        return "Traceback" in "".join(seen)

    assert wait_for(logged, 10), "".join(seen)
    err = "".join(seen)
    assert "A\\nFORGED LINE\\x00" in err, err
    assert not any(line.startswith("FORGED") for line in err.splitlines()), err
    assert "\x00" not in err


@pytest.mark.dcmtk
def test_bad_vr_file_is_stored_with_what_was_tolerated_logged(
    gateway_factory: GatewayFactory,
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    # pydicom's badVR.dcm (Number of Frames '1A', an IS): DCMTK's storescp stores it.
    path = get_testdata_file("badVR.dcm")
    assert path is not None
    caplog.set_level(logging.INFO)  # the listener processes log at the parent's level
    gw, db, _ = gateway_factory(processes=2)  # production logging in the listener processes
    _rc, responses = storescu(gw.port, [Path(path)], "-aet", "BADVR")
    assert list(responses.values()) == ["Success"], responses
    with db.read() as session:
        assert session.scalar(select(func.count()).select_from(Instance)) == 1
    seen: list[str] = []

    def logged() -> bool:
        seen.append(capfd.readouterr().err)
        return "tolerated" in "".join(seen)

    assert wait_for(logged, 10), "".join(seen)
    assert "Traceback" not in "".join(seen)


@pytest.mark.parametrize("command_uid", [b"1." + b"2" * 63, b""], ids=["65-chars", "empty"])
@pytest.mark.parametrize("processes", [1, 2], ids=["in-process", "listener-processes"])
def test_a_bad_affected_sop_instance_uid_gets_cannot_understand(
    gateway_factory: GatewayFactory, command_uid: bytes, processes: int
) -> None:
    # Listener processes receive datasets to files: pynetdicom writes the file's meta from the
    # command's UIDs, which raised on its network thread for an empty one (no answer at all).
    gw, db, _ = gateway_factory(processes=processes)
    ds = make_dataset(study_uid=generate_uid(), size=8)
    answer = pdus.store_exchange(gw.port, ds.SOPClassUID, command_uid, pdus.implicit_le(ds))
    assert answer == (pdus.P_DATA_TF, CANNOT_UNDERSTAND)
    with db.read() as session:
        assert session.scalar(select(func.count()).select_from(Instance)) == 0
        refusals = [
            dict(e.details)
            for e in session.scalars(select(Event).where(Event.action == "instance.refused"))
        ]
    assert [e["status"] for e in refusals] == [CANNOT_UNDERSTAND], refusals
    assert "Affected SOP Instance UID" in str(refusals[0]["reason"])
    # The listener still answers.
    ok = pdus.store_exchange(
        gw.port, ds.SOPClassUID, ds.SOPInstanceUID.encode(), pdus.implicit_le(ds)
    )
    assert ok == (pdus.P_DATA_TF, SUCCESS)


def test_a_listener_process_drops_an_empty_uid_request_then_serves_the_association_on(
    gateway_factory: GatewayFactory,
) -> None:
    # The refused request's dataset comes in several PDUs: dropped as it arrives, answered
    # 0xC000, and the next C-STORE on the same association is stored. A command split over two
    # PDUs (its start already passed on to pynetdicom) ends its association with an A-ABORT.
    gw, db, _ = gateway_factory(processes=2)
    ds = make_dataset(study_uid=generate_uid(), size=64)
    data = pdus.implicit_le(ds)
    with pdus.connect(gw.port) as sock:
        sock.sendall(pdus.associate_rq(contexts=[(1, ds.SOPClassUID, [pdus.IMPLICIT_LE])]))
        assert pdus.read_pdu(sock)[0] == pdus.A_ASSOCIATE_AC
        sock.sendall(pdus.p_data_tf(1, pdus.c_store_rq(ds.SOPClassUID, b""), command=True))
        half = len(data) // 2
        sock.sendall(pdus.p_data_tf(1, data[:half], command=False, last=False))
        sock.sendall(pdus.p_data_tf(1, data[half:], command=False))
        pdu_type, body = pdus.read_pdu(sock)
        assert (pdu_type, pdus.command_status(body)) == (pdus.P_DATA_TF, CANNOT_UNDERSTAND)
        command = pdus.c_store_rq(ds.SOPClassUID, ds.SOPInstanceUID.encode(), message_id=2)
        sock.sendall(pdus.p_data_tf(1, command, command=True))
        sock.sendall(pdus.p_data_tf(1, data, command=False))
        pdu_type, body = pdus.read_pdu(sock)
        assert (pdu_type, pdus.command_status(body)) == (pdus.P_DATA_TF, SUCCESS)
        sock.sendall(pdus.release_rq())
        pdus.read_pdu(sock)
    with pdus.connect(gw.port) as sock:
        sock.sendall(pdus.associate_rq(contexts=[(1, ds.SOPClassUID, [pdus.IMPLICIT_LE])]))
        assert pdus.read_pdu(sock)[0] == pdus.A_ASSOCIATE_AC
        command = pdus.c_store_rq(ds.SOPClassUID, b"")
        sock.sendall(pdus.p_data_tf(1, command[:20], command=True, last=False))
        sock.sendall(pdus.p_data_tf(1, command[20:], command=True))
        sock.sendall(pdus.p_data_tf(1, data, command=False))
        assert pdus.read_pdu(sock)[0] == pdus.A_ABORT
    with db.read() as session:
        assert session.scalar(select(func.count()).select_from(Instance)) == 1
        reasons = [
            str(e.details["reason"])
            for e in session.scalars(select(Event).where(Event.action == "instance.refused"))
        ]
    assert reasons == ["Affected SOP Instance UID of the C-STORE command is empty"] * 2, reasons


@pytest.mark.parametrize("defined_lengths", [True, False], ids=["defined", "undefined"])
def test_sequences_nested_10000_deep_are_refused_alike(
    gateway_factory: GatewayFactory, defined_lengths: bool
) -> None:
    gw, db, _ = gateway_factory()
    ds, data = nested_instance(10_000, defined_lengths=defined_lengths)
    answer = pdus.store_exchange(
        gw.port,
        ds.SOPClassUID,
        ds.SOPInstanceUID.encode(),
        dataset_part(data),
        transfer_syntax=pdus.EXPLICIT_LE,
    )
    assert answer == (pdus.P_DATA_TF, CANNOT_UNDERSTAND)
    with db.read() as session:
        assert session.scalar(select(func.count()).select_from(Instance)) == 0
        reasons = [
            str(e.details["reason"])
            for e in session.scalars(select(Event).where(Event.action == "instance.refused"))
        ]
    assert reasons == ["sequences nested deeper than 32 levels"], reasons
    ok = pdus.store_exchange(
        gw.port, ds.SOPClassUID, ds.SOPInstanceUID.encode(), pdus.implicit_le(ds)
    )
    assert ok == (pdus.P_DATA_TF, SUCCESS)


@pytest.mark.slow
def test_a_deflate_bomb_and_an_oversized_instance_get_out_of_resources(
    gateway_factory: GatewayFactory,
) -> None:
    gw, db, _ = gateway_factory(max_instance_bytes=2_000_000)
    ds, data = deflate_bomb(1024**3)  # 1 GiB inflated, about 1 MiB sent
    answer = pdus.store_exchange(
        gw.port,
        ds.SOPClassUID,
        ds.SOPInstanceUID.encode(),
        dataset_part(data),
        transfer_syntax=DeflatedExplicitVRLittleEndian,
    )
    assert answer == (pdus.P_DATA_TF, OUT_OF_RESOURCES)
    big = make_dataset(study_uid=generate_uid(), size=1024)  # 2 MiB of pixels
    answer = pdus.store_exchange(
        gw.port, big.SOPClassUID, big.SOPInstanceUID.encode(), pdus.implicit_le(big)
    )
    assert answer == (pdus.P_DATA_TF, OUT_OF_RESOURCES)
    with db.read() as session:
        assert session.scalar(select(func.count()).select_from(Instance)) == 0
        reasons = [
            str(e.details["reason"])
            for e in session.scalars(select(Event).where(Event.action == "instance.refused"))
        ]
    assert "inflates to more than" in reasons[0] and "larger than 2000000" in reasons[1], reasons
    small = make_dataset(study_uid=generate_uid(), size=8)
    ok = pdus.store_exchange(
        gw.port, small.SOPClassUID, small.SOPInstanceUID.encode(), pdus.implicit_le(small)
    )
    assert ok == (pdus.P_DATA_TF, SUCCESS)


def _rss_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise AssertionError(f"no {field} for {pid}")


@pytest.mark.slow
@pytest.mark.parametrize("processes", [2, 1], ids=["two-listener-processes", "one"])
def test_a_half_sent_huge_pixel_data_is_received_to_disk_not_memory(
    gateway_factory: GatewayFactory, processes: int
) -> None:
    # processes = 1: one listener process, as `triage serve` runs it by default.
    gw, db, wl = gateway_factory(processes=processes, in_process=False)
    pids = [child.pid for child in gw._children if child.pid is not None]
    assert len(pids) == processes
    field = "VmHWM"  # the listener processes' peak
    before = {pid: _rss_kib(pid, field) for pid in pids}
    ds = make_dataset(study_uid=generate_uid(), size=8)
    del ds.PixelData
    announced = struct.pack("<HHI", 0x7FE0, 0x0010, 1024**3)  # 1 GiB Pixel Data announced
    chunk, sent, target = bytes(512 * 1024), 0, 100 * 1024 * 1024  # 100 MiB sent
    with pdus.connect(gw.port) as sock:
        sock.sendall(pdus.associate_rq(contexts=[(1, ds.SOPClassUID, [pdus.IMPLICIT_LE])]))
        assert pdus.read_pdu(sock)[0] == pdus.A_ASSOCIATE_AC
        command = pdus.c_store_rq(ds.SOPClassUID, ds.SOPInstanceUID.encode())
        sock.sendall(pdus.p_data_tf(1, command, command=True))
        sock.sendall(pdus.p_data_tf(1, pdus.implicit_le(ds) + announced, command=False, last=False))
        while sent < target:
            sock.sendall(pdus.p_data_tf(1, chunk, command=False, last=False))
            sent += len(chunk)
        receiving = wl.effective_archive_dir / ".receiving"
        assert wait_for(lambda: any(f.stat().st_size > target for f in receiving.glob("*.dcm")))
        growth_mib = max(_rss_kib(pid, field) - before[pid] for pid in pids) / 1024
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # reset
    assert growth_mib < 40, f"a listener process grew by {growth_mib:.0f} MiB"
    with db.read() as session:
        assert session.scalar(select(func.count()).select_from(Instance)) == 0
