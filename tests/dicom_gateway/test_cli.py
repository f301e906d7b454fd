"""``triage echo``, ``triage send`` and ``triage gateway`` through the command line."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import func, select

from tests.dicom_gateway.conftest import GatewayFactory, echoscu
from tests.dicom_gateway.synth import make_study
from tests.support import free_port, wait_for_port
from triage.cli import main
from worklist.db.schema import Instance

ROOT = Path(__file__).resolve().parents[2]


def test_echo_success_and_failure(
    gateway_factory: GatewayFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    gw, _db, _wl = gateway_factory()
    assert main(["echo", "127.0.0.1", str(gw.port)]) == 0
    assert "Success" in capsys.readouterr().out
    # In a subprocess: pynetdicom leaks the socket of a refused connection (ResourceWarning).
    refused = subprocess.run(
        [sys.executable, "-m", "triage", "echo", "127.0.0.1", str(free_port()), "--timeout", "2"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert refused.returncode == 1
    assert "C-ECHO to ICS_TRIAGE@127.0.0.1" in refused.stderr and "failed" in refused.stderr


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
        cwd=ROOT,
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
            gw = Gateway(
                GatewaySettings(port=port, processes=processes),
                WorklistSettings(data_dir=tmp_path / "var", min_free_bytes=0),
            )
            with pytest.raises(GatewayError, match="cannot"):
                gw.start()
