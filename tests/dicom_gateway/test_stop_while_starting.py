"""``triage gateway`` stopped by SIGTERM to its process group while its listeners start.

Seen in the chaos test's CI run: the signal killed the half-started listener process, the
gateway waited 60 s for it and exited with status 2 instead of stopping cleanly.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.builders import REPO
from tests.builders.peers import free_port

pytestmark = pytest.mark.slow


def _listener_children(pid: int) -> list[int]:
    """The processes ``pid`` spawned with multiprocessing (not a short-lived helper such as
    the ``ldconfig`` that ``ctypes.util.find_library`` runs, seen in a clean-clone run)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid and b"spawn_main" in cmdline:
                found.append(int(entry.name))
    return found


def test_sigterm_while_listener_processes_start_stops_the_gateway_cleanly(tmp_path: Path) -> None:
    log = tmp_path / "gateway.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "triage", "gateway", "--host", "127.0.0.1",
             "--port", str(free_port()), "--data-dir", str(tmp_path / "data"),
             "--processes", "2"],
            cwd=REPO, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        children: list[int] = []
        while not children and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)  # the listener processes are spawned once the store is ready
            children = _listener_children(proc.pid)
        assert children, log.read_text()
        os.killpg(proc.pid, signal.SIGTERM)  # as systemd or a terminal would: the whole group
        began = time.monotonic()
        code = proc.wait(timeout=40)
        took = time.monotonic() - began
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
    assert code == 0, log.read_text()[-3000:]
    assert took < 30, (took, log.read_text()[-3000:])  # not the 60 s wait for a dead child
