"""``run_web`` serves the app in a thread until its stop event is set (``triage serve``)."""

from __future__ import annotations

import threading
from pathlib import Path

import httpx

from models.settings import ModelsSettings
from tests.support import free_port
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
