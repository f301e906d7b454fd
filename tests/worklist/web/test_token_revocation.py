"""Listing and revoking API tokens: the store functions, ``triage users tokens|revoke-token``, and
the web app refusing a revoked token once its auth cache has let go of it."""

from __future__ import annotations

import io
import re
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from models.settings import ModelsSettings
from tests.worklist.web.support import add_users, make_app
from triage.cli import main
from worklist.accounts.tokens import HASH_PREFIX_LEN, issue_token, list_tokens, revoke_token
from worklist.accounts.users import UserError, hash_token, set_active
from worklist.db.engine import Database
from worklist.db.schema import Event
from worklist.settings import WorklistSettings
from worklist.web.app import create_app
from worklist.web.authcache import AUTH_CACHE_S


def _revocations(db: Database) -> list[Event]:
    with db.read() as session:
        rows = list(session.scalars(select(Event).where(Event.action == "token.revoke")))
        session.expunge_all()
    return rows


def test_list_tokens_shows_hash_prefixes_never_secrets(db: Database) -> None:
    tokens = add_users(db)
    with db.write() as session:
        second = issue_token(session, "radiologist")
        set_active(session, "ml_engineer", False)
    assert second.view.hash_prefix == hash_token(second.secret)[:HASH_PREFIX_LEN]
    assert second.secret not in repr(second)
    with db.read() as session:
        everyone = list_tokens(session)
        mine = list_tokens(session, "radiologist")
        with pytest.raises(UserError, match="no user 'nobody'"):
            list_tokens(session, "nobody")
    assert [t.username for t in everyone] == [
        "admin",
        "ml_engineer",
        "radiographer",
        "radiologist",
        "radiologist",
    ]
    assert [t.hash_prefix for t in mine] == [
        hash_token(tokens["radiologist"])[:HASH_PREFIX_LEN],
        second.view.hash_prefix,
    ]
    assert [t.id for t in mine] == sorted(t.id for t in mine)
    assert all(len(t.hash_prefix) == HASH_PREFIX_LEN for t in everyone)
    assert all(t.created_at.tzinfo is not None and not t.revoked for t in everyone)
    assert {t.username: t.state for t in everyone}["ml_engineer"] == "user inactive"
    shown = repr(everyone)
    for secret in [*tokens.values(), second.secret]:
        assert secret not in shown
        assert hash_token(secret) not in shown  # only a prefix of the hash, never all of it


def test_revoke_token_is_audited_once_and_unknown_ids_fail(db: Database) -> None:
    add_users(db)
    with db.read() as session:
        target = list_tokens(session, "radiologist")[0]
    with db.write() as session:
        done = revoke_token(session, target.id, actor="alice", source="cli")
    assert done.changed and done.token.revoked and done.token.state == "revoked"
    assert done.token.hash_prefix == target.hash_prefix
    with db.write() as session:
        again = revoke_token(session, target.id, actor="alice", source="cli")
    assert not again.changed and again.token.revoked
    events = _revocations(db)
    assert [(e.category, e.actor, e.source, e.outcome) for e in events] == [
        ("audit", "alice", "cli", "success")
    ]
    assert events[0].details == {
        "token_id": target.id,
        "username": "radiologist",
        "hash_prefix": target.hash_prefix,
    }
    with db.write() as session, pytest.raises(UserError, match="no API token with id 9999"):
        revoke_token(session, 9999)
    with db.read() as session:
        states = {t.id: t.revoked for t in list_tokens(session)}
    assert [tid for tid, revoked in states.items() if revoked] == [target.id]


def test_revoked_token_is_refused_once_the_auth_cache_window_passed(
    sqlite_db: Database, tmp_path: Path
) -> None:
    db = sqlite_db
    tokens = add_users(db)
    with db.write() as session:
        spare = issue_token(session, "radiologist").secret
    leaked = {"Authorization": f"Bearer {tokens['radiologist']}"}
    with make_app(db, tmp_path) as (app, _), TestClient(app) as client:
        assert app.state.auth_cache.ttl_s == AUTH_CACHE_S == 1.0  # the documented window
        assert client.get("/api/v1/studies", headers=leaked).status_code == 200
        cached_until = time.monotonic() + AUTH_CACHE_S  # put before the answer came back
        with db.read() as session:
            leaked_id = next(
                t.id
                for t in list_tokens(session, "radiologist")
                if t.hash_prefix == hash_token(tokens["radiologist"])[:HASH_PREFIX_LEN]
            )
        # Revoked in its own transaction, as `triage users revoke-token` in another process does:
        # this process' cache may still answer for the token until its entry expires...
        with db.write() as session:
            revoke_token(session, leaked_id, actor="admin", source="cli")
        time.sleep(max(0.0, cached_until - time.monotonic()) + 0.05)
        # ...and not a moment longer: a hit does not extend the entry.
        refused = client.get("/api/v1/studies", headers=leaked)
        assert refused.status_code == 401
        assert refused.headers["www-authenticate"] == "Bearer"
        spare_auth = {"Authorization": f"Bearer {spare}"}
        assert client.get("/api/v1/studies", headers=spare_auth).status_code == 200


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
        events = _revocations(db)
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


def test_token_last_use_is_stamped_at_most_once_a_minute(db: Database, tmp_path: Path) -> None:
    tokens = add_users(db)
    auth = {"Authorization": f"Bearer {tokens['radiologist']}"}
    prefix = hash_token(tokens["radiologist"])[:HASH_PREFIX_LEN]

    def last_uses() -> dict[str, datetime | None]:
        with db.read() as session:
            return {t.hash_prefix: t.last_used_at for t in list_tokens(session)}

    assert set(last_uses().values()) == {None}
    with make_app(db, tmp_path) as (app, _), TestClient(app) as client:
        before = datetime.now(UTC)
        assert client.get("/api/v1/studies", headers=auth).status_code == 200
        app.state.audit.flush()
        stamped = last_uses()
        first = stamped.pop(prefix)
        assert first is not None and first >= before - timedelta(seconds=1)
        assert set(stamped.values()) == {None}  # only the token that was used
        app.state.auth_cache.clear()  # a cache miss again: the token is looked up anew
        assert client.get("/api/v1/studies", headers=auth).status_code == 200
        app.state.audit.flush()
        assert last_uses()[prefix] == first  # within the minute: no second write
