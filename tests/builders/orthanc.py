"""Receiving PACS peers of the export tests: Orthanc on loopback ports, and an SCP that refuses.

:class:`Orthanc` runs Debian's ``orthanc`` (``/usr/sbin/Orthanc``) with its own JSON config and
storage folders, on loopback ports, with ``TCP_NODELAY=1`` in its environment (its DICOM layer
is DCMTK, see ``FIELD-NOTES.md``), and stops it by its pid. :func:`refusing_scp` is a
pynetdicom Storage SCP that answers every C-STORE with a failure status.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
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

from tests.builders.peers import free_port, wait_for, wait_for_port

__all__ = ["ORTHANC_AET", "Orthanc", "orthanc", "orthanc_binary", "refusing_scp"]

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
