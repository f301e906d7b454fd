"""Every change to who can reach the worklist is audited exactly once, whichever door it came by.

The domain functions (``worklist.accounts.users``, ``worklist.accounts.tokens``) record the
events; the command line passes the OS login name and ``cli``, the web app the signed-in admin
and the client address.
No event ever holds a password or a token.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from tests.worklist.web.support import PASSWORD, add_users, login, make_app
from triage.cli import main
from worklist.accounts.tokens import HASH_PREFIX_LEN, issue_token
from worklist.accounts.users import UserError, add_user, hash_token, set_active
from worklist.db.engine import Database
from worklist.db.schema import Event
from worklist.settings import WorklistSettings

USER_ACTIONS = ("user.add", "user.deactivate", "user.activate", "token.create")


def _events(db: Database, username: str) -> list[tuple[str, str, str, str, dict[str, object]]]:
    """The user and token events about ``username``, oldest first."""
    with db.read() as session:
        rows = session.scalars(
            select(Event).where(Event.action.in_(USER_ACTIONS)).order_by(Event.id)
        )
        return [
            (e.action, e.category, e.actor, e.source, dict(e.details))
            for e in rows
            if e.details.get("username") == username
        ]


def _no_secret(events: list[tuple[str, str, str, str, dict[str, object]]], *secrets: str) -> None:
    dumped = json.dumps(events)
    for secret in secrets:
        assert secret not in dumped
        assert hash_token(secret) not in dumped  # a prefix of the hash at most


def test_domain_functions_audit_each_change_once(db: Database) -> None:
    with db.write() as session:
        add_user(session, "carol", PASSWORD, "radiographer", site="CDC1", actor="root", source="x")
    with db.write() as session:
        new = issue_token(session, "carol", actor="root", source="x")
        other = issue_token(session, "carol", actor="root", source="x").secret
    with db.write() as session:
        set_active(session, "carol", False, actor="root", source="x")
    with db.write() as session:
        again = set_active(session, "carol", False, actor="root", source="x")  # no change
    assert not again.active
    with db.write() as session:
        back = set_active(session, "carol", True, actor="root", source="x")
    assert back.active
    with db.write() as session, pytest.raises(UserError, match="no user 'nobody'"):
        set_active(session, "nobody", False, actor="root", source="x")
    events = _events(db, "carol")
    assert [(a, c, who, src) for a, c, who, src, _ in events] == [
        ("user.add", "audit", "root", "x"),
        ("token.create", "audit", "root", "x"),
        ("token.create", "audit", "root", "x"),
        ("user.deactivate", "audit", "root", "x"),
        ("user.activate", "audit", "root", "x"),
    ]
    assert events[0][4] == {"username": "carol", "role": "radiographer", "site": "CDC1"}
    assert events[1][4] == {
        "token_id": new.view.id,
        "username": "carol",
        "hash_prefix": new.view.hash_prefix,
    }
    assert events[2][4]["hash_prefix"] == hash_token(other)[:HASH_PREFIX_LEN]
    assert events[3][4] == events[4][4] == {"username": "carol"}
    _no_secret(events, PASSWORD, new.secret, other)


def test_failed_changes_record_nothing(db: Database) -> None:
    with db.write() as session:
        add_user(session, "dave", PASSWORD, "radiologist", actor="root", source="x")
    for bad in (
        lambda s: add_user(s, "dave", PASSWORD, "radiologist", actor="root", source="x"),
        lambda s: add_user(s, "erin", "short", "radiologist", actor="root", source="x"),
        lambda s: issue_token(s, "nobody", actor="root", source="x"),
    ):
        with pytest.raises(UserError), db.write() as session:
            bad(session)
    assert [e[0] for e in _events(db, "dave")] == ["user.add"]
    assert _events(db, "erin") == []


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
        assert _events(db, "alice") == [
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
        events = _events(db, "alice")
        assert [(a, c, who, src) for a, c, who, src, _ in events] == [
            ("user.add", "audit", "os-login", "cli"),
            ("token.create", "audit", "os-login", "cli"),
            ("user.deactivate", "audit", "os-login", "cli"),
        ]
        assert events[1][4]["hash_prefix"] == hash_token(secret)[:HASH_PREFIX_LEN]
        assert events[2][4] == {"username": "alice"}
        _no_secret(events, "s3cret-password", secret)
        assert main(["users", "deactivate", "nobody"]) == 2
        assert len(_events(db, "alice")) == 3
    finally:
        db.dispose()


def test_web_api_add_and_deactivate_each_record_one_event(db: Database, tmp_path: Path) -> None:
    tokens = add_users(db)
    admin = {"Authorization": f"Bearer {tokens['admin']}"}
    new = {"username": "frank", "password": "long-enough", "role": "ml_engineer"}
    with make_app(db, tmp_path) as (app, _), TestClient(app) as client:
        assert client.post("/api/v1/admin/users", headers=admin, json=new).status_code == 201
        gone = client.post("/api/v1/admin/users/frank/deactivate", headers=admin)
        assert gone.status_code == 200 and gone.json()["active"] is False
    events = _events(db, "frank")
    assert [(a, c, who, src) for a, c, who, src, _ in events] == [
        ("user.add", "audit", "admin", "testclient"),
        ("user.deactivate", "audit", "admin", "testclient"),
    ]
    assert events[0][4] == {"username": "frank", "role": "ml_engineer", "site": ""}
    _no_secret(events, "long-enough")


def test_web_admin_pages_add_and_deactivate_each_record_one_event(
    db: Database, tmp_path: Path
) -> None:
    add_users(db)
    with make_app(db, tmp_path) as (app, _), TestClient(app) as client:
        csrf = login(client, "admin")
        form = {
            "username": "grace",
            "password": "long-enough",
            "role": "radiographer",
            "site": "CDC2",
            "csrf_token": csrf,
        }
        added = client.post("/admin/users", data=form, follow_redirects=False)
        assert added.status_code == 303 and "error" not in added.headers["location"]
        gone = client.post(
            "/admin/users/grace/deactivate", data={"csrf_token": csrf}, follow_redirects=False
        )
        assert gone.status_code == 303 and "error" not in gone.headers["location"]
        audit_page = client.get("/admin/audit").text
        assert "user.add" in audit_page and "user.deactivate" in audit_page
    events = _events(db, "grace")
    assert [(a, c, who, src) for a, c, who, src, _ in events] == [
        ("user.add", "audit", "admin", "testclient"),
        ("user.deactivate", "audit", "admin", "testclient"),
    ]
    assert events[0][4] == {"username": "grace", "role": "radiographer", "site": "CDC2"}
    _no_secret(events, "long-enough")
