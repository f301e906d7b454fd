"""``triage echo``, ``triage send`` and ``triage gateway`` through the command line."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_dataset
from pydicom.uid import ExplicitVRLittleEndian, MediaStorageDirectoryStorage, generate_uid
from sqlalchemy import func, select

from tests.builders import REPO
from tests.builders.dicom import make_dataset, make_study
from tests.builders.gateway import GatewayFactory
from tests.builders.peers import echoscu, free_port, wait_for_port
from tests.builders.tls import make_pki
from triage.cli import main
from worklist.db.engine import Database
from worklist.db.schema import Instance


def test_echo_success_and_failure(
    gateway_factory: GatewayFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    gw, _db, _wl = gateway_factory()
    assert main(["echo", "127.0.0.1", str(gw.port)]) == 0
    assert "Success" in capsys.readouterr().out
    # In a subprocess: pynetdicom leaks the socket of a refused connection (ResourceWarning).
    refused = subprocess.run(
        [sys.executable, "-m", "triage", "echo", "127.0.0.1", str(free_port()), "--timeout", "2"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert refused.returncode == 1
    assert "C-ECHO to ICS_TRIAGE@127.0.0.1" in refused.stderr and "failed" in refused.stderr
    assert "connection refused (nothing listens there)" in refused.stderr
    assert "pynetdicom" not in refused.stderr  # its own error lines would only repeat ours


def test_echo_rejected_says_why(
    gateway_factory: GatewayFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    gw, _db, _wl = gateway_factory(allowed_calling_aets=["CDC1"])
    port = ["127.0.0.1", str(gw.port)]
    assert main(["echo", *port, "--calling-aet", "CDC1"]) == 0
    capsys.readouterr()
    assert main(["echo", *port, "--calling-aet", "STRANGER"]) == 1
    err = capsys.readouterr().err
    assert "rejected by ICS_TRIAGE at 127.0.0.1" in err
    assert "rejected permanent, service user, calling ae title not recognised" in err.lower()


def test_send_folder_reports_each_file(
    gateway_factory: GatewayFactory, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    gw, db, _wl = gateway_factory()
    _uid, files = make_study(tmp_path / "study", series=2, per_series=3)
    args = ["send", str(tmp_path / "study"), "--host", "127.0.0.1", "--port", str(gw.port)]
    assert main([*args, "--calling-aet", "CDC_EAST"]) == 0
    out = capsys.readouterr()
    assert f"{len(files)} of {len(files)} file(s) stored" in out.out
    with db.read() as s:
        assert s.scalar(select(func.count(Instance.id))) == len(files)
        assert set(s.scalars(select(Instance.calling_aet))) == {"CDC_EAST"}
    junk = tmp_path / "notes.txt"
    junk.write_text("not DICOM")
    assert main([*args, str(junk), str(tmp_path / "missing.dcm")]) == 1
    out = capsys.readouterr()
    assert f"{len(files)} of {len(files) + 2} file(s) stored" in out.out
    assert "notes.txt" in out.err and "missing.dcm" in out.err


def _output(capsys: pytest.CaptureFixture[str]) -> tuple[str, str]:
    """Stdout and stderr, stderr unwrapped (Rich folds long lines at the console width)."""
    res = capsys.readouterr()
    return res.out, res.err.replace("\n", "")


def _stored(db: Database) -> int:
    with db.read() as s:
        return s.scalar(select(func.count(Instance.id))) or 0


def test_send_phantom_folder_skips_what_is_not_dicom(
    gateway_factory: GatewayFactory, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    gw, db, _wl = gateway_factory()
    folder = tmp_path / "phantoms"
    assert main(["phantoms", "generate", "--out", str(folder), "--n", "2", "--size", "64"]) == 0
    assert (folder / "labels.csv").is_file()
    (folder / "README").write_text("two synthetic phantoms\n")
    (folder / "dicom" / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1" + bytes(200))
    hidden_dir = folder / ".trash"  # a hidden folder: not walked into, even for DICOM
    make_study(hidden_dir, series=1, per_series=1)
    # A dataset without preamble or file meta (old exports): no DICM marker, still DICOM.
    fp = DicomBytesIO()
    fp.is_little_endian, fp.is_implicit_VR = True, True
    write_dataset(fp, make_dataset(study_uid=generate_uid(), modality="DX"))
    (folder / "dicom" / "raw_dataset").write_bytes(fp.getvalue())
    capsys.readouterr()

    args = ["send", str(folder), "--host", "127.0.0.1", "--port", str(gw.port)]
    assert main(args) == 0
    out, err = _output(capsys)
    assert "3 of 3 file(s) stored" in out and "4 skipped (not DICOM or hidden)" in out
    assert "skipped (not DICOM)" in err and "skipped (hidden file)" in err
    assert "labels.csv" in err and "FAILED" not in err
    assert _stored(db) == 3

    # A file that looks like DICOM (DICM marker) but cannot be read stays a failure.
    (folder / "broken.dcm").write_bytes(bytes(128) + b"DICM" + b"\xff" * 64)
    assert main(args) == 1
    out, err = _output(capsys)
    assert "3 of 4 file(s) stored" in out
    assert "FAILED" in err and "broken.dcm" in err and "labels.csv" not in err.split("FAILED", 1)[1]


def test_send_named_non_dicom_fails_and_nothing_sent_is_an_error(
    gateway_factory: GatewayFactory, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    gw, db, _wl = gateway_factory()
    _uid, files = make_study(tmp_path / "study", series=1, per_series=2)
    labels = tmp_path / "labels.csv"
    labels.write_text("path,study_instance_uid,sop_instance_uid,pneumothorax\na.dcm,1.2,1.3,0\n")
    port = ["--host", "127.0.0.1", "--port", str(gw.port)]
    assert main(["send", *map(str, files), str(labels), *port]) == 1
    out, err = _output(capsys)
    assert "2 of 3 file(s) stored" in out and "skipped" not in out
    assert "FAILED" in err and "labels.csv: not DICOM" in err
    assert _stored(db) == 2

    only_junk = tmp_path / "junk"
    only_junk.mkdir()
    (only_junk / "notes.txt").write_text("not DICOM")
    (only_junk / ".hidden").write_text("not DICOM either")
    assert main(["send", str(only_junk), *port]) == 1
    out, err = _output(capsys)
    assert "0 of 0 file(s) stored" in out and "2 skipped" in out
    assert "nothing sent" in err
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["send", str(empty), *port]) == 1
    assert "nothing sent" in _output(capsys)[1]


@pytest.mark.dcmtk
def test_gateway_command_serves_until_sigint(tmp_path: Path) -> None:
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "triage",
            "gateway",
            "--port",
            str(port),
            "--data-dir",
            str(tmp_path / "var"),
            "--processes",
            "1",
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=dict(os.environ, TRIAGE_WORKLIST_MIN_FREE_BYTES="0"),
    )
    try:
        wait_for_port(port, timeout=60)
        assert echoscu(port).returncode == 0
        _uid, files = make_study(tmp_path / "in", series=1, per_series=2)
        assert main(["send", *map(str, files), "--port", str(port)]) == 0
    finally:
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, out
    assert "SIGINT received" in out
    assert (tmp_path / "var" / "triage.db").exists()


def test_port_in_use_is_a_clear_error(tmp_path: Path) -> None:
    import socket

    from dicom_gateway.service import Gateway, GatewayError
    from dicom_gateway.settings import GatewaySettings
    from worklist.settings import WorklistSettings

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        for processes in (1, 2):
            gw = Gateway(  # a cap this test process (grown by earlier tests) cannot exceed
                GatewaySettings(port=port, processes=processes, max_memory_bytes=16 * 1024**3),
                WorklistSettings(data_dir=tmp_path / "var", min_free_bytes=0),
            )
            with pytest.raises(GatewayError, match="cannot"):
                gw.start()


def test_send_media_export_skips_its_dicomdir(
    gateway_factory: GatewayFactory, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    gw, db, _wl = gateway_factory()
    export = tmp_path / "cd"
    _uid, _files = make_study(export / "DICOM", series=1, per_series=2)
    # The index of a CD/DVD export (PS3.10 File-set): a Media Storage Directory file.
    index = Dataset()
    index.file_meta = FileMetaDataset()
    index.file_meta.MediaStorageSOPClassUID = MediaStorageDirectoryStorage
    index.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    index.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    index.FileSetID = "EXPORT"
    index.OffsetOfTheFirstDirectoryRecordOfTheRootDirectoryEntity = 0
    index.OffsetOfTheLastDirectoryRecordOfTheRootDirectoryEntity = 0
    index.FileSetConsistencyFlag = 0
    index.DirectoryRecordSequence = []
    index.save_as(export / "DICOMDIR", enforce_file_format=True)
    port = ["--host", "127.0.0.1", "--port", str(gw.port)]
    capsys.readouterr()

    assert main(["send", str(export), *port]) == 0
    out, err = _output(capsys)
    assert "2 of 2 file(s) stored" in out and "1 skipped" in out
    assert "skipped (DICOMDIR)" in err and "FAILED" not in err
    assert _stored(db) == 2

    assert main(["send", str(export / "DICOMDIR"), *port]) == 1  # named: the user meant it
    out, err = _output(capsys)
    assert "FAILED" in err and "DICOMDIR" in err and "not an instance" in err


def test_echo_and_send_over_tls(
    gateway_factory: GatewayFactory, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pki = make_pki(tmp_path / "pki")
    gw, db, _wl = gateway_factory(
        tls_port=0,
        tls_certificate=pki["server.pem"],
        tls_private_key=pki["server.key"],
        tls_ca_bundle=pki["ca.pem"],
    )
    assert gw.tls_port is not None
    tls = ["--tls-ca", str(pki["ca.pem"]), "--tls-cert", str(pki["client.pem"])]
    tls += ["--tls-key", str(pki["client.key"])]
    assert main(["echo", "localhost", str(gw.tls_port), *tls]) == 0
    assert "Success" in capsys.readouterr().out
    _uid, files = make_study(tmp_path / "study", series=1, per_series=2)
    args = ["send", str(tmp_path / "study"), "--host", "localhost", "--port", str(gw.tls_port)]
    assert main([*args, *tls]) == 0
    assert f"{len(files)} of {len(files)} file(s) stored" in capsys.readouterr().out
    with db.read() as s:
        assert s.scalar(select(func.count(Instance.id))) == len(files)
