"""``triage users add`` and ``triage users token`` through ``triage.cli.main``."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from models.settings import ModelsSettings
from triage.cli import main
from worklist.db.engine import Database
from worklist.settings import WorklistSettings
from worklist.users import authenticate
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
