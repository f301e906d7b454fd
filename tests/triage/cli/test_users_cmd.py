"""``triage users add`` and ``triage users token`` through ``triage.cli.main``."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from models.settings import ModelsSettings
from triage.cli import main
from worklist.accounts.users import authenticate
from worklist.db.engine import Database
from worklist.db.schema import Event
from worklist.settings import WorklistSettings
from worklist.web.app import create_app


def test_users_add_and_token(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "data"
    monkeypatch.setenv("TRIAGE_WORKLIST_DATA_DIR", str(data))
    monkeypatch.setattr("sys.stdin", io.StringIO("s3cret-password\n"))
    argv = ["users", "add", "alice", "--role", "radiologist", "--password-stdin"]
    assert main(argv) == 0
    assert "added alice (radiologist)" in capsys.readouterr().out
    monkeypatch.setattr("sys.stdin", io.StringIO("s3cret-password\n"))
    assert main(argv) == 2  # already exists
    assert "already exists" in capsys.readouterr().err
    monkeypatch.setattr("sys.stdin", io.StringIO("short\n"))
    assert main(["users", "add", "bob", "--role", "admin", "--password-stdin"]) == 2
    assert main(["users", "add", "bob", "--role", "surgeon", "--password-stdin"]) == 2
    assert main(["users", "token", "alice"]) == 0
    token = capsys.readouterr().out.strip()
    assert token.startswith("wl_") and len(token) > 30
    assert main(["users", "token", "nobody"]) == 2
    settings = WorklistSettings(data_dir=data)
    db = Database(settings.effective_database_url)
    try:
        with db.write() as session:
            assert authenticate(session, "alice", "s3cret-password") is not None
            assert authenticate(session, "alice", "wrong-password") is None
        app = create_app(settings, ModelsSettings(models_dir=tmp_path / "models"), db=db)
        with TestClient(app) as client:
            resp = client.get("/api/v1/studies", headers={"Authorization": f"Bearer {token}"})
            assert resp.status_code == 200
    finally:
        db.dispose()


def test_users_deactivate_and_activate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "data"
    monkeypatch.setenv("TRIAGE_WORKLIST_DATA_DIR", str(data))
    monkeypatch.setattr("sys.stdin", io.StringIO("s3cret-password\n"))
    assert main(["users", "add", "carol", "--role", "radiologist", "--password-stdin"]) == 0
    capsys.readouterr()
    db = Database(WorklistSettings(data_dir=data).effective_database_url)

    def can_log_in() -> bool:
        with db.write() as session:
            return authenticate(session, "carol", "s3cret-password") is not None

    def events(action: str) -> int:
        with db.read() as session:
            query = select(func.count()).select_from(Event).where(Event.action == action)
            return int(session.scalar(query) or 0)

    try:
        assert main(["users", "deactivate", "carol"]) == 0
        assert "deactivated carol" in capsys.readouterr().out
        assert not can_log_in()
        assert main(["users", "deactivate", "carol"]) == 0  # a no-op, said as such
        assert "already inactive: nothing changed" in capsys.readouterr().out
        assert main(["users", "activate", "carol"]) == 0
        assert "activated carol" in capsys.readouterr().out
        assert can_log_in()
        assert main(["users", "activate", "carol"]) == 0
        assert "already active" in capsys.readouterr().out
        assert (events("user.deactivate"), events("user.activate")) == (1, 1)
        assert main(["users", "activate", "nobody"]) == 2
        assert "no user 'nobody'" in capsys.readouterr().err
    finally:
        db.dispose()
