"""``triage users``: add, token, tokens, revoke-token, deactivate, activate, through ``main``.

Each change is audited once, with the OS login name and ``cli``, and holds no secret.
"""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from models.settings import ModelsSettings
from tests.builders.audit import assert_no_secret, audit_events, user_events
from triage.cli import main
from worklist.accounts.tokens import HASH_PREFIX_LEN
from worklist.accounts.users import authenticate, hash_token
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


def test_cli_add_token_and_deactivate_each_record_one_event(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "data"
    monkeypatch.setenv("TRIAGE_WORKLIST_DATA_DIR", str(data))
    monkeypatch.setattr("getpass.getuser", lambda: "os-login")
    monkeypatch.setattr("sys.stdin", io.StringIO("s3cret-password\n"))
    assert main(["users", "add", "alice", "--role", "radiologist", "--password-stdin"]) == 0
    db = Database(WorklistSettings(data_dir=data).effective_database_url)
    try:
        assert user_events(db, "alice") == [
            (
                "user.add",
                "audit",
                "os-login",
                "cli",
                {"username": "alice", "role": "radiologist", "site": ""},
            )
        ]
        assert main(["users", "token", "alice"]) == 0
        secret = capsys.readouterr().out.splitlines()[-1]
        assert secret.startswith("wl_")
        assert main(["users", "deactivate", "alice"]) == 0
        events = user_events(db, "alice")
        assert [(a, c, who, src) for a, c, who, src, _ in events] == [
            ("user.add", "audit", "os-login", "cli"),
            ("token.create", "audit", "os-login", "cli"),
            ("user.deactivate", "audit", "os-login", "cli"),
        ]
        assert events[1][4]["hash_prefix"] == hash_token(secret)[:HASH_PREFIX_LEN]
        assert events[2][4] == {"username": "alice"}
        assert_no_secret(events, "s3cret-password", secret)
        assert main(["users", "deactivate", "nobody"]) == 2
        assert len(user_events(db, "alice")) == 3
    finally:
        db.dispose()


def test_cli_lists_and_revokes_tokens(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "data"
    monkeypatch.setenv("TRIAGE_WORKLIST_DATA_DIR", str(data))
    monkeypatch.setattr("sys.stdin", io.StringIO("s3cret-password\n"))
    assert main(["users", "add", "alice", "--role", "radiologist", "--password-stdin"]) == 0
    capsys.readouterr()
    issued: list[tuple[str, int, str]] = []
    for _ in range(2):
        assert main(["users", "token", "alice"]) == 0
        out, err = capsys.readouterr()
        secret = out.strip()  # stdout holds the token alone, for TOKEN=$(triage users token ...)
        assert secret.startswith("wl_") and "\n" not in secret
        found = re.search(r"token id (\d+), sha256 ([0-9a-f]{8})", err)
        assert found, err
        assert found.group(2) == hash_token(secret)[:HASH_PREFIX_LEN]
        issued.append((secret, int(found.group(1)), found.group(2)))
    (leaked, leaked_id, leaked_prefix), (kept, _, kept_prefix) = issued

    assert main(["users", "tokens"]) == 0
    table = capsys.readouterr().out
    lines = table.splitlines()
    assert lines[0].split("\t") == ["id", "sha256", "user", "created", "last used", "state"]
    assert [line.split("\t")[1] for line in lines[1:]] == [leaked_prefix, kept_prefix]
    assert leaked not in table and kept not in table and hash_token(leaked) not in table
    assert main(["users", "tokens", "alice"]) == 0
    assert capsys.readouterr().out == table
    assert main(["users", "tokens", "nobody"]) == 2
    assert "no user 'nobody'" in capsys.readouterr().err

    assert main(["users", "revoke-token", str(leaked_id)]) == 0
    out = capsys.readouterr().out
    assert f"revoked token {leaked_id} (sha256 {leaked_prefix}) of alice" in out
    assert main(["users", "revoke-token", str(leaked_id)]) == 0
    assert "was already revoked" in capsys.readouterr().out
    assert main(["users", "revoke-token", "9999"]) == 2
    assert "error: no API token with id 9999" in capsys.readouterr().err
    assert main(["users", "revoke-token", "not-a-number"]) != 0
    capsys.readouterr()
    assert main(["users", "tokens", "alice"]) == 0
    states = [line.split("\t")[5] for line in capsys.readouterr().out.splitlines()[1:]]
    assert states == ["revoked", "active"]

    settings = WorklistSettings(data_dir=data)
    db = Database(settings.effective_database_url)
    try:
        events = audit_events(db, "token.revoke")
        assert len(events) == 1 and events[0].source == "cli"
        assert events[0].details["token_id"] == leaked_id
        app = create_app(settings, ModelsSettings(models_dir=tmp_path / "models"), db=db)
        with TestClient(app) as client:
            bad = client.get("/api/v1/studies", headers={"Authorization": f"Bearer {leaked}"})
            good = client.get("/api/v1/studies", headers={"Authorization": f"Bearer {kept}"})
        app.state.audit.close()
    finally:
        db.dispose()
    assert bad.status_code == 401
    assert good.status_code == 200
