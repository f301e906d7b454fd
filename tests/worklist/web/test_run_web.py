"""``run_web`` serves the app in a thread until its stop event is set (``triage serve``)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

from models.settings import ModelsSettings
from tests.builders.peers import free_port, wait_for_port
from worklist.settings import WorklistSettings
from worklist.web.app import run_web


def test_run_web_starts_and_stops(tmp_path: Path) -> None:
    settings = WorklistSettings(data_dir=tmp_path / "data")
    port = free_port()
    stop, ready = threading.Event(), threading.Event()
    thread = threading.Thread(
        target=run_web,
        args=(settings, ModelsSettings(models_dir=tmp_path / "models"), "127.0.0.1", port, stop),
        kwargs={"ready": ready},
        daemon=True,
    )
    thread.start()
    try:
        assert ready.wait(30), "the web app did not start"
        resp = httpx.get(f"http://127.0.0.1:{port}/api/v1/health", timeout=10)
        assert resp.json() == {"status": "ok"}
        assert httpx.get(f"http://127.0.0.1:{port}/api/v1/studies").status_code == 401
        secret = tmp_path / "data" / "web_session_secret"
        assert secret.is_file() and oct(secret.stat().st_mode & 0o777) == "0o600"
    finally:
        stop.set()
        thread.join(timeout=15)
    assert not thread.is_alive()


def test_triage_web_with_two_worker_processes(tmp_path: Path) -> None:
    port = free_port()
    env = {
        **os.environ,
        "TRIAGE_WORKLIST_DATA_DIR": str(tmp_path / "data"),
        "TRIAGE_MODELS_MODELS_DIR": str(tmp_path / "models"),
    }
    env.pop("TRIAGE_CONFIG", None)
    cmd = [sys.executable, "-m", "triage", "web", "--workers", "2", "--host", "127.0.0.1"]
    proc = subprocess.Popen(
        [*cmd, "--port", str(port)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        wait_for_port(port, 60)
        resp = httpx.get(f"http://127.0.0.1:{port}/api/v1/health", timeout=10)
        assert resp.json() == {"status": "ok"}
        assert httpx.get(f"http://127.0.0.1:{port}/api/v1/studies").status_code == 401
        deadline = time.monotonic() + 30
        children: list[str] = []
        while time.monotonic() < deadline and len(children) < 2:
            children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
            time.sleep(0.1)
        assert len(children) >= 2, "uvicorn did not start two worker processes"
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            _, err = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            raise
    assert proc.returncode == 0, err.decode(errors="replace")
