"""Fixtures of the gateway tests: an in-process gateway on a free port, DCMTK helpers."""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from dicom_gateway.service import Gateway
from dicom_gateway.settings import GatewaySettings
from worklist.db.engine import Database
from worklist.settings import WorklistSettings

GatewayFactory = Callable[..., tuple[Gateway, Database, WorklistSettings]]


def need_dcmtk() -> None:
    if shutil.which("storescu") is None or shutil.which("echoscu") is None:
        pytest.fail("DCMTK is not installed: run scripts/install-system-deps.sh")


@pytest.fixture
def gateway_factory(tmp_path: Path) -> Iterator[GatewayFactory]:
    """Start gateways (in-process, port 0) with settings overrides; stop them afterwards."""
    started: list[tuple[Gateway, Database]] = []

    def start(
        *, name: str = "gw", worklist: dict[str, Any] | None = None, **gateway: Any
    ) -> tuple[Gateway, Database, WorklistSettings]:
        defaults: dict[str, Any] = {
            "port": 0,
            "processes": 1,
            "idle_s": {"DX": 0.0, "CR": 0.0, "CT": 0.3, "MR": 0.3},
            "default_idle_s": 0.3,
            "assembler_interval_s": 0.05,
        }
        defaults.update(gateway)
        wl = WorklistSettings(data_dir=tmp_path / name, min_free_bytes=0, **(worklist or {}))
        gw = Gateway(GatewaySettings(**defaults), wl)
        gw.start()
        db = Database(wl.effective_database_url)
        started.append((gw, db))
        return gw, db, wl

    yield start
    for gw, db in started:
        db.dispose()
        gw.stop()


def echoscu(port: int, *args: str) -> subprocess.CompletedProcess[str]:
    need_dcmtk()
    return subprocess.run(
        ["echoscu", "-to", "10", *args, "127.0.0.1", str(port)],
        capture_output=True,
        text=True,
        timeout=30,
    )


_SENDING = re.compile(r"Sending file: (.+)$")
_RESPONSE = re.compile(r"Received Store Response \((.+)\)")


def storescu(port: int, files: list[Path], *args: str) -> tuple[int, dict[str, str]]:
    """Run DCMTK storescu; return its exit code and the response per file ("Success", ...)."""
    need_dcmtk()
    proc = subprocess.run(
        ["storescu", "-v", "-R", "-nh", "-to", "20", *args, "127.0.0.1", str(port)]
        + [str(f) for f in files],
        capture_output=True,
        text=True,
        timeout=120,
    )
    responses: dict[str, str] = {}
    current: str | None = None
    for line in (proc.stdout + proc.stderr).splitlines():
        m = _SENDING.search(line)
        if m:
            current = m.group(1).strip()
            continue
        m = _RESPONSE.search(line)
        if m and current is not None:
            responses[current] = m.group(1)
            current = None
    return proc.returncode, responses


def wait_for(predicate: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()
