"""The worklist web app for the web tests: in a test client or served live, and logging in."""

from __future__ import annotations

import contextlib
import re
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient

from models.settings import ModelsSettings
from tests.builders.peers import free_port, wait_for_port
from tests.builders.store import PASSWORD
from worklist.db.engine import Database
from worklist.settings import WorklistSettings
from worklist.web.app import create_app, run_web
from worklist.web.transport import url_scheme


@contextmanager
def make_app(
    db: Database, tmp_path: Path, *, viewer_dir: Path | None = None, **overrides: Any
) -> Iterator[tuple[FastAPI, WorklistSettings]]:
    """Create the app on ``db`` with its data and archive in ``tmp_path``; close its audit sink.

    Parameters
    ----------
    db : worklist.db.engine.Database
        The store.
    tmp_path : pathlib.Path
        Where ``data/``, ``archive/`` and ``models/`` are.
    viewer_dir : pathlib.Path, optional
        Where the OHIF viewer's dist is (default: where ``scripts/install-viewer.sh`` puts it).
    **overrides
        Other :class:`~worklist.settings.WorklistSettings` fields (``web_max_image_pixels=...``).

    Yields
    ------
    tuple of (fastapi.FastAPI, worklist.settings.WorklistSettings)
        The app and its settings.
    """
    settings = WorklistSettings(
        data_dir=tmp_path / "data",
        database_url=db.url,
        archive_dir=tmp_path / "archive",
        web_poll_s=1.0,
        web_viewer_dir=viewer_dir,
        **overrides,
    )
    app = create_app(settings, ModelsSettings(models_dir=tmp_path / "models"), db=db)
    try:
        yield app, settings
    finally:
        app.state.audit.close()


def csrf_of(html: str) -> str:
    """Return the CSRF token embedded in a page.

    Parameters
    ----------
    html : str
        The page.

    Returns
    -------
    str
        The token.
    """
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "no CSRF token on the page"
    return found.group(1)


def login(client: TestClient, username: str, password: str = PASSWORD) -> str:
    """Log a test client in through the form; return the session's CSRF token.

    Parameters
    ----------
    client : fastapi.testclient.TestClient
        The client; it keeps the session cookie.
    username, password : str
        The user's credentials (:data:`tests.builders.store.PASSWORD` by default).

    Returns
    -------
    str
        The CSRF token of the page the login redirects to.
    """
    token = csrf_of(client.get("/login").text)
    resp = client.post(
        "/login",
        data={"username": username, "password": password, "csrf_token": token},
        follow_redirects=False,
    )
    assert resp.status_code == 303, resp.text
    page = client.get(resp.headers["location"])
    return csrf_of(page.text)


@contextmanager
def live_server(app: FastAPI) -> Iterator[str]:
    """Serve ``app`` with uvicorn on a free loopback port in a thread; yield its base URL.

    Parameters
    ----------
    app : fastapi.FastAPI
        The app.

    Yields
    ------
    str
        ``http://127.0.0.1:PORT``.
    """
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        wait_for_port(port)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@contextmanager
def run_web_thread(settings: WorklistSettings, models: ModelsSettings) -> Iterator[str]:
    """Serve with :func:`worklist.web.app.run_web` (uvicorn as ``triage serve`` configures it).

    Parameters
    ----------
    settings : worklist.settings.WorklistSettings
        The app's settings (its store is opened, and migrated, by ``run_web``).
    models : models.settings.ModelsSettings
        Where the model registry is.

    Yields
    ------
    str
        ``http://127.0.0.1:PORT``, or ``https://`` when the settings name a TLS certificate.
    """
    port = free_port()
    stop, ready = threading.Event(), threading.Event()
    thread = threading.Thread(
        target=run_web,
        args=(settings, models, "127.0.0.1", port, stop),
        kwargs={"ready": ready},
        daemon=True,
    )
    thread.start()
    try:
        assert ready.wait(30), "the web app did not start"
        yield f"{url_scheme(settings)}://127.0.0.1:{port}"
    finally:
        stop.set()
        thread.join(timeout=15)


def wait_for_web_process(
    proc: subprocess.Popen[bytes], port: int, stderr: Path, timeout: float = 180.0
) -> None:
    """Wait until a ``triage web`` process listens on ``port``; fail at once if it exits.

    The timeout is generous: on the shared 2-core machine under a full test run, starting the
    command line (imports, migrations) has taken a minute.

    Parameters
    ----------
    proc : subprocess.Popen
        The process.
    port : int
        Its port on 127.0.0.1.
    stderr : pathlib.Path
        The file its stderr goes to (shown if it fails).
    timeout : float, optional
        Seconds to wait.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(
                f"triage web exited ({proc.returncode}): {stderr.read_text(errors='replace')}"
            )
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return
        time.sleep(0.1)
    raise TimeoutError(f"triage web did not listen on {port} in {timeout} s")
