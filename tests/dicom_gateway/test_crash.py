"""Kill the gateway (SIGKILL, the whole process group) mid-stream: nothing acknowledged is lost.

The gateway runs as a subprocess (``python -m triage gateway``, two listener processes). Three
pynetdicom senders stream a few hundred small instances; once some are acknowledged the gateway
is killed. After a restart, every instance the senders got Success for is in the archive with a
matching sha256 and in the store, and no row points to a missing or different file.
"""

from __future__ import annotations

import gc
import hashlib
import os
import signal
import subprocess
import sys
import threading
import time
import warnings
from pathlib import Path

import pytest
from pydicom.uid import ExplicitVRLittleEndian, generate_uid
from pynetdicom import AE
from sqlalchemy import select

from dicom_gateway.scu import send_files
from dicom_gateway.statuses import SUCCESS
from tests.builders import REPO
from tests.builders.dicom import SOP_CLASS, make_dataset, write_dicom_file
from tests.builders.peers import free_port, wait_for_port
from worklist.db.engine import Database
from worklist.db.schema import Instance

pytestmark = pytest.mark.slow

ROOT = REPO


def _start(data_dir: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "triage",
                "gateway",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--data-dir",
                str(data_dir),
                "--processes",
                "2",
            ],
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, killed as a whole
        )
    wait_for_port(port, timeout=60)
    return proc


def _sender(port: int, files: list[Path], acked: list[str], lock: threading.Lock) -> None:
    ae = AE(ae_title=f"CRASH{threading.get_ident() % 1000}")
    ae.add_requested_context(SOP_CLASS["CT"], ExplicitVRLittleEndian)
    assoc = ae.associate("127.0.0.1", port)
    if not assoc.is_established:
        return
    try:
        for path in files:
            try:
                rsp = assoc.send_c_store(path)
            except Exception:
                return
            if rsp and rsp.get("Status") == SUCCESS:
                with lock:
                    acked.append(path.stem)
            if not assoc.is_established:
                return
    finally:
        if assoc.is_established:
            assoc.release()
        else:
            assoc.abort()
        # pynetdicom does not close the socket of a connection its peer's death cut.
        transport = getattr(assoc.dul, "socket", None)
        if transport is not None and getattr(transport, "socket", None) is not None:
            transport.socket.close()


def test_sigkill_mid_stream_loses_nothing_acknowledged(tmp_path: Path) -> None:
    data_dir = tmp_path / "var"
    log = tmp_path / "gateway.log"
    port = free_port()
    study_uid = generate_uid()
    files: list[Path] = []
    for i in range(240):
        ds = make_dataset(study_uid=study_uid, modality="CT", size=16, seed=i, instance_number=i)
        files.append(write_dicom_file(ds, tmp_path / "in" / f"{ds.SOPInstanceUID}.dcm"))

    proc = _start(data_dir, port, log)
    acked: list[str] = []
    lock = threading.Lock()
    threads = [
        threading.Thread(target=_sender, args=(port, files[i::3], acked, lock)) for i in range(3)
    ]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 60
    while len(acked) < 60 and time.monotonic() < deadline and any(t.is_alive() for t in threads):
        time.sleep(0.01)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    for t in threads:
        t.join(timeout=30)
    with warnings.catch_warnings():  # collect what pynetdicom's aborted associations left
        warnings.simplefilter("ignore", ResourceWarning)
        gc.collect()
    assert 60 <= len(acked) < len(files), f"the kill was not mid-stream ({len(acked)} acked)"

    proc = _start(data_dir, port, log)  # restart on the same store and archive
    try:
        archive = data_dir / "archive"
        db = Database(f"sqlite:///{data_dir / 'triage.db'}", create=False)
        with db.read() as s:
            rows = {
                u: (p, h)
                for u, p, h in s.execute(
                    select(Instance.sop_instance_uid, Instance.path, Instance.sha256)
                )
            }
        for uid in acked:
            assert uid in rows, f"acknowledged {uid} not in the store"
        for uid, (path, digest) in rows.items():  # no row without its file, none half-written
            data = (archive / path).read_bytes()
            assert hashlib.sha256(data).hexdigest() == digest, uid
        assert not list(archive.rglob("*.tmp")), "temporary files survived the restart"
        # The restarted gateway takes the rest (and acknowledges a stored one again).
        rest = [f for f in files if f.stem not in rows] + [files[0]]
        results = send_files(rest, "127.0.0.1", port)
        assert [r.status for r in results] == [SUCCESS] * len(rest)
        with db.read() as s:
            assert len(s.scalars(select(Instance.id)).all()) == len(files)
        db.dispose()
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
    assert proc.returncode == 0, log.read_text()[-3000:]
