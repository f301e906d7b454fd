"""A SIGKILL of ``triage web`` during STOW-RS loses nothing that was acknowledged."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests
from sqlalchemy import select

from tests.builders.dicomweb import encode_multipart, encoded, make_instances
from tests.builders.peers import free_port, wait_for_port
from tests.builders.store import add_users
from worklist.db.engine import Database
from worklist.db.schema import Instance
from worklist.settings import WorklistSettings


def _send_until_refused(url: str, token: str, acked: dict[str, str], stop: threading.Event) -> None:
    """POST two-instance studies back to back; note the sha256 of every acknowledged instance."""
    while not stop.is_set():
        instances = make_instances(2, size=64)
        data = [encoded(d) for d in instances]
        body, content_type = encode_multipart(data)
        headers = {"Content-Type": content_type, "Authorization": f"Bearer {token}"}
        try:
            resp = requests.post(f"{url}/dicom-web/studies", data=body, headers=headers, timeout=30)
        except requests.RequestException:
            return  # the server is gone
        if resp.status_code == 200:
            for ds, raw in zip(instances, data, strict=True):
                acked[ds.SOPInstanceUID] = hashlib.sha256(raw).hexdigest()


@pytest.mark.slow
def test_sigkill_during_stow_loses_nothing_acknowledged(tmp_path: Path) -> None:
    settings = WorklistSettings(data_dir=tmp_path / "data")
    db = Database(settings.effective_database_url)
    token = add_users(db)["admin"]
    db.dispose()
    port = free_port()
    env = {
        **os.environ,
        "TRIAGE_WORKLIST_DATA_DIR": str(tmp_path / "data"),
        "TRIAGE_MODELS_MODELS_DIR": str(tmp_path / "models"),
    }
    env.pop("TRIAGE_CONFIG", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "triage", "web", "--host", "127.0.0.1", "--port", str(port)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    acked: dict[str, str] = {}
    stop = threading.Event()
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_port(port, 60)
        senders = [
            threading.Thread(target=_send_until_refused, args=(url, token, acked, stop))
            for _ in range(3)
        ]
        for sender in senders:
            sender.start()
        deadline = time.monotonic() + 60
        while len(acked) < 20 and time.monotonic() < deadline:
            time.sleep(0.05)
        os.killpg(proc.pid, signal.SIGKILL)  # with requests in flight
        proc.wait(timeout=30)
        stop.set()
        for sender in senders:
            sender.join(timeout=60)
    finally:
        stop.set()
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
    assert len(acked) >= 20
    db = Database(settings.effective_database_url)
    try:
        with db.read() as session:
            found = session.execute(select(Instance.sop_instance_uid, Instance.path)).all()
        rows = {uid: path for uid, path in found}
    finally:
        db.dispose()
    missing = [uid for uid in acked if uid not in rows]
    assert not missing, f"{len(missing)} acknowledged instance(s) not recorded"
    archive = settings.effective_archive_dir
    for uid, digest in acked.items():
        assert hashlib.sha256((archive / rows[uid]).read_bytes()).hexdigest() == digest
