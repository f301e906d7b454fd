"""Orthanc with its DICOMweb plugin (Debian ``orthanc-dicomweb``): the reference DICOMweb server."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.builders.peers import free_port, wait_for

__all__ = ["DICOMWEB_PLUGIN", "orthanc_dicomweb"]

DICOMWEB_PLUGIN = Path("/usr/share/orthanc/plugins/libOrthancDicomWeb.so")
"""Where Debian's ``orthanc-dicomweb`` installs the plugin."""


def _up(url: str) -> bool:
    try:
        return requests.get(f"{url}/system", timeout=2).status_code == 200
    except requests.RequestException:
        return False


@contextlib.contextmanager
def orthanc_dicomweb(folder: Path) -> Iterator[str]:
    """Start Orthanc with DICOMweb on a free loopback port; yield its DICOMweb root.

    The test fails (never skips) when Orthanc or the plugin is not installed
    (``scripts/install-system-deps.sh`` installs both).

    Parameters
    ----------
    folder : pathlib.Path
        Where its configuration, index and storage go.

    Yields
    ------
    str
        ``http://127.0.0.1:PORT/dicom-web`` (no authentication); Orthanc stops afterwards.
    """
    binary = shutil.which("Orthanc") or "/usr/sbin/Orthanc"
    if not Path(binary).is_file() or not DICOMWEB_PLUGIN.is_file():
        pytest.fail("Orthanc or its DICOMweb plugin is missing: run scripts/install-system-deps.sh")
    folder.mkdir(parents=True, exist_ok=True)
    port = free_port()
    config = {
        "Name": "triage-test-orthanc",
        "StorageDirectory": str(folder / "storage"),
        "IndexDirectory": str(folder / "index"),
        "HttpPort": port,
        "DicomServerEnabled": False,
        "RemoteAccessAllowed": False,
        "AuthenticationEnabled": False,
        "StorageCompression": False,
        "Plugins": [str(DICOMWEB_PLUGIN)],
        "DicomWeb": {"Enable": True, "Root": "/dicom-web/", "EnableWado": False},
    }
    path = folder / "orthanc.json"
    path.write_text(json.dumps(config), encoding="utf-8")
    env = {**os.environ, "TCP_NODELAY": "1"}
    log = (folder / "orthanc.log").open("wb")
    proc = subprocess.Popen(
        [binary, str(path)], stdout=log, stderr=subprocess.STDOUT, env=env, cwd=folder
    )
    url = f"http://127.0.0.1:{port}"
    try:
        if not wait_for(lambda: _up(url) or proc.poll() is not None, timeout=60) or not _up(url):
            pytest.fail(f"Orthanc did not start: see {folder / 'orthanc.log'}")
        yield f"{url}/dicom-web"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=30)
        log.close()
