"""The web app refuses a revoked API token once its auth cache has let go of it, and stamps a
token's last use at most once a minute."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from fastapi.testclient import TestClient

from tests.builders.store import add_users
from tests.builders.web import make_app
from worklist.accounts.tokens import HASH_PREFIX_LEN, issue_token, list_tokens, revoke_token
from worklist.accounts.users import hash_token
from worklist.db.engine import Database
from worklist.web.authcache import AUTH_CACHE_S


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
