"""Forwarded headers are trusted only from configured proxies (issue 13 defect 8).

uvicorn trusts ``X-Forwarded-For`` from 127.0.0.1 by default: a local client could rotate the
header to escape the per-IP login limit and write any address into the audit log.
"""

from __future__ import annotations

from pathlib import Path

import httpx
from sqlalchemy import select

from models.settings import ModelsSettings
from tests.builders.store import add_users
from tests.builders.web import csrf_of, run_web_thread
from worklist.db.engine import Database
from worklist.db.schema import Event
from worklist.settings import WorklistSettings


def _failed_logins(base: str, attempts: int) -> list[int]:
    """Try wrong passwords for rotating usernames with rotating X-Forwarded-For headers."""
    codes = []
    with httpx.Client(base_url=base, timeout=10) as client:
        csrf = csrf_of(client.get("/login").text)
        for i in range(attempts):
            form = {"username": f"nobody{i}", "password": "wrong-password", "csrf_token": csrf}
            headers = {"X-Forwarded-For": f"203.0.113.{i + 1}"}
            codes.append(client.post("/login", data=form, headers=headers).status_code)
    return codes


def _sources(settings: WorklistSettings) -> set[str]:
    db = Database(settings.effective_database_url)
    try:
        with db.read() as session:
            rows = session.scalars(select(Event.source).where(Event.action == "login.failed"))
            return set(rows)
    finally:
        db.dispose()


def _settings(tmp_path: Path, **overrides: object) -> WorklistSettings:
    settings = WorklistSettings.model_validate({"data_dir": tmp_path / "data", **overrides})
    db = Database(settings.effective_database_url)
    add_users(db)
    db.dispose()
    return settings


def test_forwarded_for_from_loopback_is_ignored_by_default(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    models = ModelsSettings(models_dir=tmp_path / "models")
    with run_web_thread(settings, models) as base:
        codes = _failed_logins(base, 20)
    limit = settings.web_login_max_failures
    assert codes[:limit] == [401] * limit and set(codes[limit:]) == {429}, codes
    assert _sources(settings) == {"127.0.0.1"}


def test_forwarded_for_is_honoured_from_a_configured_proxy(tmp_path: Path) -> None:
    settings = _settings(tmp_path, web_forwarded_allow_ips=["127.0.0.1"])
    models = ModelsSettings(models_dir=tmp_path / "models")
    with run_web_thread(settings, models) as base:
        codes = _failed_logins(base, 3)
    assert codes == [401] * 3
    assert _sources(settings) == {"203.0.113.1", "203.0.113.2", "203.0.113.3"}
