"""HTTPS for the web app itself (issue 13): uvicorn's TLS, Secure cookies and HSTS over TLS only.

A real TLS server on 127.0.0.1 with a certificate from a test CA (``tests/builders/tls.py``),
fetched with httpx verifying against that CA: in the command line's process (``run_web``, as
``triage serve`` and ``triage web`` serve it) and with ``triage web --workers 2`` requiring
client certificates. Over plain HTTP, neither HSTS nor Secure cookies (browsers ignore HSTS over
HTTP, and a Secure cookie would never come back to a plain-HTTP localhost), unless a trusted
proxy says ``X-Forwarded-Proto: https``.
"""

from __future__ import annotations

import os
import signal
import ssl
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from fastapi.testclient import TestClient

from models.settings import ModelsSettings
from tests.builders.peers import free_port, wait_for
from tests.builders.store import PASSWORD, add_users
from tests.builders.tls import Pki, make_pki
from tests.builders.web import csrf_of, make_app, run_web_thread, wait_for_web_process
from worklist.db.engine import Database
from worklist.settings import WorklistSettings

ONE_YEAR = "max-age=31536000"
KEY_PASSWORD = "correct horse battery staple"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


def _encrypted_key(pki: Pki, path: Path) -> Path:
    """Write the server's key encrypted with :data:`KEY_PASSWORD` (PKCS#8, best encryption)."""
    key = serialization.load_pem_private_key(pki["server.key"].read_bytes(), password=None)
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(KEY_PASSWORD.encode()),
        )
    )
    return path


def _settings(tmp_path: Path, *, users: bool = True, **overrides: object) -> WorklistSettings:
    settings = WorklistSettings.model_validate({"data_dir": tmp_path / "data", **overrides})
    if users:
        db = Database(settings.effective_database_url)
        add_users(db)
        db.dispose()
    return settings


def _verify(pki: Pki, client_cert: bool = False) -> ssl.SSLContext:
    """A client context trusting only the test CA (with the test client's certificate)."""
    context = ssl.create_default_context(cafile=str(pki["ca.pem"]))
    if client_cert:
        context.load_cert_chain(pki["client.pem"], pki["client.key"])
    return context


def _session_cookies(response: httpx.Response) -> list[str]:
    return [v for v in response.headers.get_list("set-cookie") if v.startswith("triage_session=")]


def _log_in(client: httpx.Client) -> httpx.Response:
    csrf = csrf_of(client.get("/login").text)
    form = {"username": "radiologist", "password": PASSWORD, "csrf_token": csrf}
    return client.post("/login", data=form)


def _is_secure(cookie: str) -> bool:
    return any(a.strip().lower() == "secure" for a in cookie.split(";")[1:])


def test_https_in_process_sends_hsts_and_secure_cookies(tmp_path: Path, pki: Pki) -> None:
    settings = _settings(
        tmp_path,
        web_tls_certificate=pki["server.pem"],
        web_tls_private_key=_encrypted_key(pki, tmp_path / "server-encrypted.key"),
        web_tls_private_key_password=KEY_PASSWORD,
    )
    with run_web_thread(settings, ModelsSettings(models_dir=tmp_path / "models")) as base:
        assert base.startswith("https://")
        with httpx.Client(base_url=base, verify=_verify(pki), timeout=10) as client:
            page = client.get("/login")
            assert page.status_code == 200
            assert page.headers["strict-transport-security"] == ONE_YEAR
            (cookie,) = _session_cookies(page)
            assert _is_secure(cookie), cookie
            logged_in = _log_in(client)
            assert logged_in.status_code == 303, logged_in.text
            (cookie,) = _session_cookies(logged_in)
            assert _is_secure(cookie) and "httponly" in cookie.lower(), cookie
            worklist = client.get("/api/v1/studies")
            assert worklist.status_code == 200
            assert worklist.headers["strict-transport-security"] == ONE_YEAR
        # The certificate is the test CA's: a client trusting only the system's CAs refuses it.
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"{base}/api/v1/health", timeout=10)
        plain = base.replace("https://", "http://")
        with pytest.raises(httpx.HTTPError):  # no plain HTTP on the TLS port
            httpx.get(f"{plain}/api/v1/health", timeout=10)


def test_hsts_settings_are_honoured(sqlite_db: Database, tmp_path: Path) -> None:
    """max-age, includeSubDomains and preload as set (any HTTPS request: here a test client's)."""
    overrides: dict[str, Any] = {
        "web_hsts_max_age_s": 600,
        "web_hsts_include_subdomains": True,
        "web_hsts_preload": True,
    }
    with make_app(sqlite_db, tmp_path, **overrides) as (app, _settings):
        https = TestClient(app, base_url="https://testserver").get("/api/v1/health")
        http = TestClient(app).get("/api/v1/health")
    assert https.headers["strict-transport-security"] == "max-age=600; includeSubDomains; preload"
    assert "strict-transport-security" not in http.headers


def test_plain_http_has_neither_hsts_nor_secure_cookies(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    with run_web_thread(settings, ModelsSettings(models_dir=tmp_path / "models")) as base:
        assert base.startswith("http://")
        # X-Forwarded-Proto from a client that is not a configured proxy changes nothing.
        headers = {"X-Forwarded-Proto": "https"}
        with httpx.Client(base_url=base, headers=headers, timeout=10) as client:
            page = client.get("/login")
            assert "strict-transport-security" not in page.headers
            (cookie,) = _session_cookies(page)
            assert not _is_secure(cookie), cookie
            logged_in = _log_in(client)  # the cookie comes back over plain HTTP: login works
            assert logged_in.status_code == 303, logged_in.text
            assert client.get("/api/v1/studies").status_code == 200


def test_behind_a_trusted_proxy_saying_https(tmp_path: Path) -> None:
    settings = _settings(tmp_path, users=False, web_forwarded_allow_ips=["127.0.0.1"])
    with run_web_thread(settings, ModelsSettings(models_dir=tmp_path / "models")) as base:
        proxied = httpx.get(f"{base}/login", headers={"X-Forwarded-Proto": "https"}, timeout=10)
        direct = httpx.get(f"{base}/login", timeout=10)
    assert proxied.headers["strict-transport-security"] == ONE_YEAR
    assert all(_is_secure(c) for c in _session_cookies(proxied)), proxied.headers
    assert "strict-transport-security" not in direct.headers
    assert not any(_is_secure(c) for c in _session_cookies(direct)), direct.headers


def test_tls_settings_without_a_certificate_are_refused(tmp_path: Path, pki: Pki) -> None:
    with pytest.raises(ValueError, match="without web_tls_certificate"):
        WorklistSettings(data_dir=tmp_path, web_tls_private_key=pki["server.key"])
    with pytest.raises(ValueError, match="needs web_tls_ca_bundle"):
        WorklistSettings(
            data_dir=tmp_path,
            web_tls_certificate=pki["server.pem"],
            web_tls_require_client_certificate=True,
        )


class Workers:
    """``triage web --workers 2`` over HTTPS requiring client certificates; its stderr file."""

    def __init__(self, base: str, stderr: Path) -> None:
        self.base = base
        self.stderr = stderr


@pytest.fixture(scope="module")
def workers(tmp_path_factory: pytest.TempPathFactory, pki: Pki) -> Iterator[Workers]:
    root = tmp_path_factory.mktemp("workers")
    port = free_port()
    env = {
        **os.environ,
        "TRIAGE_WORKLIST_DATA_DIR": str(root / "data"),
        "TRIAGE_MODELS_MODELS_DIR": str(root / "models"),
    }
    env.pop("TRIAGE_CONFIG", None)
    tls = ["--tls-cert", str(pki["server.pem"]), "--tls-key", str(pki["server.key"])]
    tls += ["--tls-ca", str(pki["ca.pem"]), "--tls-require-client-cert"]
    cmd = [sys.executable, "-m", "triage", "web", "--workers", "2", "--host", "127.0.0.1"]
    stderr = root / "stderr.log"
    with stderr.open("wb") as err:
        proc = subprocess.Popen(
            [*cmd, "--port", str(port), *tls],
            cwd=root,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=err,
            start_new_session=True,
        )
    try:
        wait_for_web_process(proc, port, stderr)
        yield Workers(f"https://127.0.0.1:{port}", stderr)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            raise
    assert proc.returncode == 0, stderr.read_text(errors="replace")


def test_workers_serve_https_to_clients_with_a_certificate(workers: Workers, pki: Pki) -> None:
    with httpx.Client(
        base_url=workers.base, verify=_verify(pki, client_cert=True), timeout=10
    ) as client:
        for _ in range(4):  # new connections, spread over both workers by the kernel
            page = client.get("/login", headers={"Connection": "close"})
            assert page.status_code == 200
            assert page.headers["strict-transport-security"] == ONE_YEAR
            assert all(_is_secure(c) for c in _session_cookies(page)), page.headers
    with pytest.raises(httpx.HTTPError):  # without a client certificate: refused in TLS
        httpx.get(f"{workers.base}/api/v1/health", verify=_verify(pki), timeout=10)


def test_workers_escape_control_characters_in_log_lines(workers: Workers, pki: Pki) -> None:
    """A user name with a newline, NUL and ESC reaches a worker's log escaped (one line)."""
    hostile = "eve\nFORGED LINE admin logged in\x00\x1b[31m"
    with httpx.Client(
        base_url=workers.base, verify=_verify(pki, client_cert=True), timeout=10
    ) as client:
        csrf = csrf_of(client.get("/login").text)
        form = {"username": hostile, "password": "wrong", "csrf_token": csrf}
        assert client.post("/login", data=form).status_code == 401

    def logged() -> str:
        return workers.stderr.read_text(encoding="utf-8", errors="replace")

    assert wait_for(lambda: "failed login for user" in logged(), 10), logged()
    text = logged()
    (line,) = [x for x in text.splitlines() if "failed login for user" in x]
    assert "eve\\nFORGED LINE admin logged in\\x00\\x1b[31m from 127.0.0.1" in line, line
    assert " WARNING " in line and "worklist.web.routers.pages_auth" in line, line
    assert not any(x.startswith("FORGED") for x in text.splitlines()), text
    assert "\x00" not in text and "\x1b" not in text
