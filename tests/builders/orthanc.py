"""Receiving PACS peers of the export tests: Orthanc on loopback ports, SCPs that refuse or stall.

:class:`Orthanc` runs Debian's ``orthanc`` (``/usr/sbin/Orthanc``) with its own JSON config and
storage folders, on loopback ports, with ``TCP_NODELAY=1`` in its environment (its DICOM layer
is DCMTK, see ``FIELD-NOTES.md``), and stops it by its pid. :func:`refusing_scp` is a
pynetdicom Storage SCP that answers every C-STORE with a failure status; :class:`StallingSCP`
acknowledges a few instances, then holds the next C-STORE unanswered (a worker can be killed
while it waits), and :func:`export_in_subprocess` runs one worker's exports in a process the test
can SIGKILL.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from pynetdicom import AE, evt
from pynetdicom.events import Event
from pynetdicom.presentation import AllStoragePresentationContexts
from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]

from tests.builders import REPO
from tests.builders.peers import free_port, wait_for, wait_for_port

__all__ = [
    "ORTHANC_AET",
    "Orthanc",
    "StallingSCP",
    "export_in_subprocess",
    "orthanc",
    "orthanc_binary",
    "refusing_scp",
]

ORTHANC_AET = "ORTHANC"
"""The AE title the test Orthanc answers to."""


def orthanc_binary() -> str:
    """Return the path of the Orthanc server; fail (never skip) when it is not installed."""
    found = shutil.which("Orthanc") or (
        "/usr/sbin/Orthanc" if Path("/usr/sbin/Orthanc").is_file() else None
    )
    if found is None:
        pytest.fail("Orthanc is not installed: run scripts/install-system-deps.sh")
    return found


class Orthanc:
    """One Orthanc server in ``root`` on loopback ports (not started until :meth:`start`).

    Parameters
    ----------
    root : pathlib.Path
        Its config, storage, index and log go here.
    dicom_port : int or None, optional
        The DICOM port; a free one by default.
    """

    def __init__(self, root: Path, dicom_port: int | None = None) -> None:
        self.root = root
        self.dicom_port = dicom_port or free_port()
        self.http_port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        root.mkdir(parents=True, exist_ok=True)
        config: dict[str, Any] = {
            "Name": "test-pacs",
            "StorageDirectory": str(root / "storage"),
            "IndexDirectory": str(root / "index"),
            "HttpPort": self.http_port,
            "DicomPort": self.dicom_port,
            "DicomAet": ORTHANC_AET,
            "DicomCheckCalledAet": True,
            "DicomAlwaysAllowStore": True,
            "RemoteAccessAllowed": False,
            "AuthenticationEnabled": False,
            "Plugins": [],
            "HttpServerEnabled": True,
            "DicomServerEnabled": True,
        }
        self.config = root / "orthanc.json"
        self.config.write_text(json.dumps(config, indent=2))

    @property
    def url(self) -> str:
        """The REST API's base URL."""
        return f"http://127.0.0.1:{self.http_port}"

    def start(self, timeout: float = 30.0) -> None:
        """Start the server and wait until its REST API and DICOM port answer."""
        log = (self.root / "orthanc.log").open("ab")
        env = {**os.environ, "TCP_NODELAY": "1"}
        self.proc = subprocess.Popen(
            [orthanc_binary(), str(self.config)], stdout=log, stderr=log, env=env
        )
        log.close()

        def api_up() -> bool:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"Orthanc exited: {(self.root / 'orthanc.log').read_text()}")
            try:
                return httpx.get(f"{self.url}/system", timeout=1.0).status_code == 200
            except httpx.HTTPError:
                return False

        assert wait_for(api_up, timeout), "Orthanc's REST API did not come up"
        wait_for_port(self.dicom_port, timeout)

    def stop(self) -> None:
        """Stop the server by its pid (SIGTERM, then SIGKILL)."""
        if self.proc is None or self.proc.poll() is not None:
            return
        os.kill(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=5)

    def sop_instance_uids(self) -> list[str]:
        """Return the SOP Instance UID of every instance stored, through the REST API."""
        ids = httpx.get(f"{self.url}/instances", timeout=10.0).json()
        uids = []
        for orthanc_id in ids:
            tags = httpx.get(f"{self.url}/instances/{orthanc_id}/simplified-tags", timeout=10.0)
            uids.append(str(tags.json()["SOPInstanceUID"]))
        return uids

    def new_instance_changes(self) -> int:
        """Return how many times Orthanc recorded a new instance (its ``/changes`` log)."""
        changes = httpx.get(f"{self.url}/changes", params={"limit": 10000}, timeout=10.0).json()
        return sum(1 for c in changes["Changes"] if c["ChangeType"] == "NewInstance")


@contextmanager
def orthanc(root: Path, *, dicom_port: int | None = None, start: bool = True) -> Iterator[Orthanc]:
    """Yield an :class:`Orthanc` (started unless ``start`` is false) and stop it afterwards."""
    server = Orthanc(root, dicom_port)
    try:
        if start:
            server.start()
        yield server
    finally:
        server.stop()


@contextmanager
def refusing_scp(
    status: int = 0xA700, ae_title: str = "REFUSER"
) -> Iterator[tuple[int, list[str]]]:
    """Yield ``(port, received)`` of a Storage SCP that answers ``status`` to every C-STORE.

    ``received`` lists the SOP Instance UIDs it was offered, in order.
    """
    received: list[str] = []

    def refuse(event: Event) -> int:
        received.append(str(event.dataset.SOPInstanceUID))
        return status

    ae = AE(ae_title=ae_title)
    ae.supported_contexts = AllStoragePresentationContexts
    ae.add_supported_context(Verification)
    port = free_port()
    server = ae.start_server(
        ("127.0.0.1", port), block=False, evt_handlers=[(evt.EVT_C_STORE, refuse)]
    )
    assert server is not None
    try:
        yield port, received
    finally:
        server.shutdown()


class StallingSCP:
    """A Storage SCP that acknowledges ``acknowledge`` instances, then stalls until released.

    A stalled C-STORE waits for :meth:`release`, then answers ``0xA700`` (never Success: its
    association may be gone). Later C-STOREs are acknowledged at once.

    Parameters
    ----------
    acknowledge : int
        How many C-STOREs are answered Success before one stalls.
    ae_title : str
        Its AE title.
    """

    def __init__(self, acknowledge: int = 1, ae_title: str = "STALLER") -> None:
        self.acknowledge = acknowledge
        self.offered: list[str] = []
        self.acknowledged: list[str] = []
        self.released = threading.Event()
        self._lock = threading.Lock()
        ae = AE(ae_title=ae_title)
        ae.supported_contexts = AllStoragePresentationContexts
        self.port = free_port()
        server = ae.start_server(
            ("127.0.0.1", self.port), block=False, evt_handlers=[(evt.EVT_C_STORE, self._store)]
        )
        assert server is not None
        self._server = server

    def _store(self, event: Event) -> int:
        uid = str(event.dataset.SOPInstanceUID)
        with self._lock:
            self.offered.append(uid)
            stall = len(self.acknowledged) >= self.acknowledge and not self.released.is_set()
        if stall:
            self.released.wait(60)
            return 0xA700
        with self._lock:
            self.acknowledged.append(uid)
        return 0x0000

    def release(self) -> None:
        """Let the stalled C-STORE go, and acknowledge every later one."""
        self.released.set()

    def stop(self) -> None:
        """Release any stalled C-STORE and shut the server down."""
        self.release()
        self._server.shutdown()


_EXPORT_SCRIPT = """
import sys
from pathlib import Path
from tests.builders.worker import worker_factory
from triage.exports import ExportDestination
from worklist.db.engine import Database
db = Database(sys.argv[1], create=False)
destination = ExportDestination.model_validate_json(sys.argv[3])
worker = worker_factory(Path(sys.argv[2]))(
    db, [], exports=(destination,), owner=sys.argv[4], lease_s=float(sys.argv[5])
)
worker.run_exports()
"""


def export_in_subprocess(
    db_url: str, archive: Path, destination_json: str, owner: str, lease_s: float, log: Path
) -> subprocess.Popen[bytes]:
    """Start a worker process that carries out one round of export jobs, then exits.

    Parameters
    ----------
    db_url : str
        The store.
    archive : pathlib.Path
        The archive.
    destination_json : str
        The one destination, as JSON (``ExportDestination.model_dump_json()``).
    owner : str
        The worker's lease owner.
    lease_s : float
        Its lease.
    log : pathlib.Path
        Where its output goes.

    Returns
    -------
    subprocess.Popen
        The process (the test stops it by its pid).
    """
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    with log.open("ab") as out:
        return subprocess.Popen(
            [
                sys.executable,
                "-c",
                _EXPORT_SCRIPT,
                db_url,
                str(archive),
                destination_json,
                owner,
                str(lease_s),
            ],
            stdout=out,
            stderr=out,
            env=env,
            cwd=REPO,
        )
