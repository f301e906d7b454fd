"""DICOM TLS (PS3.15 B.9, BCP 195): the listener with DCMTK's storescu/echoscu +tls, the SCU to
DCMTK's storescp +tls, refusals of missing, expired and foreign certificates, AE-to-subject
binding, and the watchdog's setup deadline on a TLS connection that never handshakes."""

from __future__ import annotations

import contextlib
import socket
import ssl
import struct
import subprocess
import time
from pathlib import Path

import pytest
from pydicom.uid import generate_uid
from sqlalchemy import select

from dicom_gateway.scu import echo, send_files
from dicom_gateway.service import GatewayError
from dicom_gateway.statuses import SUCCESS
from dicom_gateway.tls import TlsClient
from tests.builders.dicom import make_dataset, write_dicom_file
from tests.builders.gateway import GatewayFactory
from tests.builders.peers import dcmtk, echoscu, free_port, storescu, wait_for, wait_for_port
from tests.builders.qr import received
from tests.builders.tls import Pki, make_pki
from triage.exports.destinations import ExportDestination
from triage.exports.exporter import Exporter
from worklist.db.engine import Database
from worklist.db.schema import Instance, Study
from worklist.domain import JobKind
from worklist.jobs import claim

pytestmark = pytest.mark.dcmtk


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    return make_pki(tmp_path / "pki")


def _tls_settings(pki: Pki, **extra: object) -> dict[str, object]:
    return {
        "tls_port": 0,
        "tls_certificate": pki["server.pem"],
        "tls_private_key": pki["server.key"],
        "tls_ca_bundle": pki["ca.pem"],
        **extra,
    }


def _tls_args(pki: Pki, client: str = "client") -> list[str]:
    """DCMTK options: our key and certificate, the test CA for the listener's certificate."""
    return ["+tls", str(pki[f"{client}.key"]), str(pki[f"{client}.pem"]), "+cf", str(pki["ca.pem"])]


def _stored(db: Database) -> set[str]:
    with db.read() as s:
        return set(s.scalars(select(Instance.sop_instance_uid)))


def test_storescu_and_echoscu_over_tls_and_the_plain_port_beside_it(
    gateway_factory: GatewayFactory, pki: Pki, tmp_path: Path
) -> None:
    gw, db, _ = gateway_factory(**_tls_settings(pki))
    assert gw.tls_port is not None and gw.tls_port != gw.port
    echoed = echoscu(gw.tls_port, *_tls_args(pki))
    assert echoed.returncode == 0, echoed.stderr
    ds = make_dataset(study_uid=generate_uid(), seed=1)
    path = write_dicom_file(ds, tmp_path / "a.dcm")
    code, responses = storescu(gw.tls_port, [path], *_tls_args(pki))
    assert code == 0 and list(responses.values()) == ["Success"], responses
    plain = write_dicom_file(make_dataset(study_uid=generate_uid(), seed=2), tmp_path / "b.dcm")
    code, responses = storescu(gw.port, [plain])
    assert code == 0 and list(responses.values()) == ["Success"], responses
    assert wait_for(lambda: len(_stored(db)) == 2)
    # Plain DICOM on the TLS port is not DICOM TLS: refused.
    assert echoscu(gw.tls_port).returncode != 0


@pytest.mark.parametrize(
    "args",
    [
        pytest.param("none", id="no-client-certificate"),
        pytest.param("expired", id="expired-certificate"),
        pytest.param("rogue", id="certificate-from-another-ca"),
    ],
)
def test_bad_client_certificates_are_refused(
    gateway_factory: GatewayFactory, pki: Pki, tmp_path: Path, args: str
) -> None:
    gw, db, _ = gateway_factory(**_tls_settings(pki))
    assert gw.tls_port is not None
    opts = (
        ["+tla", "+cf", str(pki["ca.pem"])]  # TLS without a certificate of ours
        if args == "none"
        else _tls_args(pki, args)
    )
    assert echoscu(gw.tls_port, *opts).returncode != 0
    path = write_dicom_file(make_dataset(study_uid=generate_uid(), seed=3), tmp_path / "c.dcm")
    code, responses = storescu(gw.tls_port, [path], *opts)
    assert code != 0 and not responses
    assert _stored(db) == set()
    assert echoscu(gw.tls_port, *_tls_args(pki)).returncode == 0  # good clients still served


def test_ae_title_bound_to_certificate_subject(gateway_factory: GatewayFactory, pki: Pki) -> None:
    binding = {"tls_aet_subjects": {"MODALITY_1": ["MODALITY_1"]}}
    gw, _, _ = gateway_factory(**_tls_settings(pki, **binding))
    assert gw.tls_port is not None
    ok = echoscu(gw.tls_port, "-aet", "MODALITY_1", *_tls_args(pki))
    assert ok.returncode == 0, ok.stderr
    # Another valid certificate of the same CA may not use MODALITY_1's AE title...
    wrong = echoscu(gw.tls_port, "-aet", "MODALITY_1", *_tls_args(pki, "other"))
    assert wrong.returncode != 0
    assert "Calling AE Title Not Recognized" in wrong.stdout + wrong.stderr
    # ...nor may an AE title bound to none, nor the bound title come over the plain port.
    assert echoscu(gw.tls_port, "-aet", "MODALITY_2", *_tls_args(pki, "other")).returncode != 0
    assert echoscu(gw.port, "-aet", "MODALITY_1").returncode != 0
    assert echoscu(gw.port, "-aet", "OTHER").returncode == 0


def test_scu_sends_and_echoes_over_tls_to_dcmtk_storescp(pki: Pki, tmp_path: Path) -> None:
    port = free_port()
    out = tmp_path / "received"
    out.mkdir()
    tls = ["+tls", str(pki["server.key"]), str(pki["server.pem"]), "+cf", str(pki["ca.pem"])]
    proc = subprocess.Popen(
        [dcmtk("storescp"), "-aet", "PACS", *tls, "-od", str(out), str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port)
        client = TlsClient(pki["ca.pem"], pki["client.pem"], pki["client.key"])
        assert echo("localhost", port, called_aet="PACS", tls=client) == SUCCESS
        ds = make_dataset(study_uid=generate_uid(), seed=4)
        path = write_dicom_file(ds, tmp_path / "d.dcm")
        (result,) = send_files([path], "localhost", port, called_aet="PACS", tls=client)
        assert result.ok, result.message
        assert wait_for(lambda: str(ds.SOPInstanceUID) in received(out))
        # Without our certificate (storescp requires one) nothing is stored.
        anonymous = TlsClient(pki["ca.pem"])
        (refused,) = send_files([path], "localhost", port, called_aet="PACS", tls=anonymous)
        assert not refused.ok
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_export_destination_over_tls_to_dcmtk_storescp(
    gateway_factory: GatewayFactory, pki: Pki, tmp_path: Path
) -> None:
    gw, db, wl = gateway_factory()
    ds = make_dataset(study_uid=generate_uid(), seed=5)
    code, _ = storescu(gw.port, [write_dicom_file(ds, tmp_path / "e.dcm")])
    assert code == 0 and wait_for(lambda: len(_stored(db)) == 1)
    with db.read() as s:
        study_id = s.scalars(select(Study.id)).one()
    port = free_port()
    out = tmp_path / "pacs"
    out.mkdir()
    tls = ["+tls", str(pki["server.key"]), str(pki["server.pem"]), "+cf", str(pki["ca.pem"])]
    proc = subprocess.Popen(
        [dcmtk("storescp"), "-aet", "PACS", *tls, "-od", str(out), str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port)
        dest = ExportDestination(
            name="pacs",
            ae_title="PACS",
            host="localhost",
            port=port,
            send=["originals"],
            tls=True,
            tls_ca_bundle=pki["ca.pem"],
            tls_certificate=pki["client.pem"],
            tls_private_key=pki["client.key"],
        )
        exporter = Exporter(db, wl.effective_archive_dir, [dest], owner="t")
        assert exporter.enqueue_for(study_id)
        (job,) = claim(db, "t", kinds=[str(JobKind.EXPORT)]).jobs
        outcome = exporter.run(job)
        assert (outcome.sent, outcome.failed) == (1, []), outcome
        assert str(ds.SOPInstanceUID) in received(out)
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_tls_connection_that_never_handshakes_is_closed_and_blocks_nobody(
    gateway_factory: GatewayFactory, pki: Pki
) -> None:
    gw, _, _ = gateway_factory(**_tls_settings(pki, association_setup_timeout_s=1.0))
    assert gw.tls_port is not None
    silent = [socket.create_connection(("127.0.0.1", gw.tls_port)) for _ in range(3)]
    try:
        # The accepting thread does not wait for their handshakes: others are served at once.
        assert echoscu(gw.tls_port, *_tls_args(pki)).returncode == 0
        start = time.monotonic()
        for sock in silent:
            sock.settimeout(10)
            assert sock.recv(1) == b""  # closed by the watchdog's setup deadline
        assert time.monotonic() - start < 8
    finally:
        for sock in silent:
            sock.close()


def test_tls_pdu_announcing_too_much_is_closed_at_once(
    gateway_factory: GatewayFactory, pki: Pki
) -> None:
    """The watchdog reads the decrypted PDU stream: an oversized announcement inside TLS."""
    gw, _, _ = gateway_factory(**_tls_settings(pki, association_setup_timeout_s=30.0))
    assert gw.tls_port is not None
    context = TlsClient(pki["ca.pem"], pki["client.pem"], pki["client.key"]).tls_args("localhost")
    raw = socket.create_connection(("127.0.0.1", gw.tls_port))
    with context[0].wrap_socket(raw, server_hostname="localhost") as tls:
        tls.settimeout(10)
        start = time.monotonic()
        tls.sendall(struct.pack(">BBL", 0x01, 0, 1 << 30) + b"\x00" * 8)  # A-ASSOCIATE-RQ
        # Closed under TLS: EOF, a reset or an unexpected EOF; a timeout fails the test.
        with contextlib.suppress(ConnectionResetError, ssl.SSLError):
            assert tls.recv(1) == b""
        assert time.monotonic() - start < 5


def test_tls_listener_in_listener_processes(gateway_factory: GatewayFactory, pki: Pki) -> None:
    gw, _, _ = gateway_factory(**_tls_settings(pki, processes=2))
    assert gw.tls_port is not None
    for _ in range(3):
        assert echoscu(gw.tls_port, *_tls_args(pki)).returncode == 0
    assert echoscu(gw.port).returncode == 0


def test_tls_port_without_certificate_does_not_start(
    gateway_factory: GatewayFactory, pki: Pki
) -> None:
    with pytest.raises(GatewayError, match="tls_certificate"):
        gateway_factory(tls_port=0)
    with pytest.raises(GatewayError, match="CA bundle"):
        gateway_factory(**_tls_settings(pki, tls_ca_bundle=None))
