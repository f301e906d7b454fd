"""Login, logout, CSRF, the login rate limit, bearer tokens and the audit rows they leave."""

from __future__ import annotations

import time
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import select

from tests.builders.audit import audit_events
from tests.builders.store import PASSWORD, add_users, seed_study
from tests.builders.web import csrf_of, login, make_app
from worklist.accounts.users import hash_token, set_active
from worklist.db.engine import Database
from worklist.db.schema import ApiToken
from worklist.web.app import SESSION_COOKIE


def test_login_logout_and_audit(db: Database, tmp_path: Path) -> None:
    add_users(db)
    with make_app(db, tmp_path) as (app, _), TestClient(app) as client:
        first = client.get("/", follow_redirects=False)
        assert first.status_code == 303
        assert first.headers["location"].startswith("/login")
        token = csrf_of(client.get("/login").text)
        bad = client.post(
            "/login", data={"username": "radiologist", "password": "wrong-pw", "csrf_token": token}
        )
        assert bad.status_code == 401
        assert "Wrong username or password" in bad.text
        ok = client.post(
            "/login",
            data={"username": "radiologist", "password": PASSWORD, "csrf_token": token},
            follow_redirects=False,
        )
        assert ok.status_code == 303 and ok.headers["location"] == "/"
        cookie = ok.headers["set-cookie"]
        assert SESSION_COOKIE in cookie and "httponly" in cookie.lower()
        assert "samesite=lax" in cookie.lower()
        page = client.get("/")
        assert page.status_code == 200 and "Worklist" in page.text
        new_csrf = csrf_of(page.text)
        assert new_csrf != token  # a new session gets a new token
        out = client.post("/logout", data={"csrf_token": new_csrf}, follow_redirects=False)
        assert out.status_code == 303
        assert client.get("/", follow_redirects=False).status_code == 303
    failed = audit_events(db, "login.failed")
    assert [(e.actor, e.outcome, e.category) for e in failed] == [
        ("radiologist", "failure", "audit")
    ]
    assert failed[0].source == "testclient"
    assert len(audit_events(db, "login")) == 1
    assert len(audit_events(db, "logout")) == 1


def test_csrf_refused_on_forms_and_cookie_api_posts(db: Database, tmp_path: Path) -> None:
    add_users(db)
    uid = seed_study(db, tmp_path / "archive", crossed=True)
    with make_app(db, tmp_path) as (app, _), TestClient(app) as client:
        # The login form itself is protected.
        no_token = client.post("/login", data={"username": "radiologist", "password": PASSWORD})
        assert no_token.status_code == 403
        csrf = login(client, "radiologist")
        refused = client.post(f"/studies/{uid}/claim", data={"csrf_token": "forged"})
        assert refused.status_code == 403
        api_refused = client.post(f"/api/v1/studies/{uid}/claim")
        assert api_refused.status_code == 403
        assert "CSRF" in api_refused.json()["detail"]
        api_ok = client.post(f"/api/v1/studies/{uid}/claim", headers={"X-CSRF-Token": csrf})
        assert api_ok.status_code == 200
        assert api_ok.json()["claimed_by"] == "radiologist"
        form_ok = client.post(
            f"/studies/{uid}/report", data={"csrf_token": csrf}, follow_redirects=False
        )
        assert form_ok.status_code == 303
        assert client.get(f"/api/v1/studies/{uid}").json()["status"] == "reported"


def test_login_rate_limit_per_username_and_ip(db: Database, tmp_path: Path) -> None:
    add_users(db)
    with make_app(db, tmp_path) as (app, _), TestClient(app) as client:
        token = csrf_of(client.get("/login").text)

        def attempt(user: str, password: str) -> int:
            data = {"username": user, "password": password, "csrf_token": token}
            return client.post("/login", data=data, follow_redirects=False).status_code

        assert [attempt("admin", "nope-nope") for _ in range(5)] == [401] * 5
        blocked = client.post(
            "/login", data={"username": "admin", "password": PASSWORD, "csrf_token": token}
        )
        assert blocked.status_code == 429  # even the right password, within the window
        assert int(blocked.headers["retry-after"]) >= 1
        # The same IP is now blocked for other usernames too (5 failures from it).
        assert attempt("radiologist", PASSWORD) == 429
        app.state.limiter.window_s = 0.0  # the window passes
        assert attempt("admin", PASSWORD) == 303
    assert len(audit_events(db, "login.blocked")) == 2
    assert len(audit_events(db, "login.failed")) == 5


def test_bearer_tokens(db: Database, tmp_path: Path) -> None:
    tokens = add_users(db)
    uid = seed_study(db, tmp_path / "archive", crossed=True)
    with make_app(db, tmp_path) as (app, _), TestClient(app) as client:
        assert client.get("/api/v1/studies").status_code == 401
        assert client.get("/api/v1/studies").headers["www-authenticate"] == "Bearer"
        bad = client.get("/api/v1/studies", headers={"Authorization": "Bearer wl_forged"})
        assert bad.status_code == 401
        auth = {"Authorization": f"Bearer {tokens['radiologist']}"}
        listing = client.get("/api/v1/studies", headers=auth)
        assert listing.status_code == 200
        assert [s["study_instance_uid"] for s in listing.json()["items"]] == [uid]
        # No CSRF token needed with a bearer token.
        claimed = client.post(f"/api/v1/studies/{uid}/claim", headers=auth)
        assert claimed.status_code == 200
        # A token does not open the HTML pages (they need a session).
        page = client.get("/", headers=auth, follow_redirects=False)
        assert page.status_code == 303
        app.state.audit.flush()
    with db.read() as session:
        stored = list(session.scalars(select(ApiToken.token_hash)))
    assert hash_token(tokens["radiologist"]) in stored
    assert tokens["radiologist"] not in stored
    views = audit_events(db, "worklist.view")
    assert views and views[0].actor == "radiologist"
    assert [e.outcome for e in audit_events(db, "study.claim")] == ["success"]


def test_deactivated_user_loses_session_and_token(db: Database, tmp_path: Path) -> None:
    tokens = add_users(db)
    with make_app(db, tmp_path) as (app, _), TestClient(app) as admin, TestClient(app) as rad:
        login(rad, "radiologist")
        csrf = login(admin, "admin")
        resp = admin.post(
            "/admin/users/radiologist/deactivate",
            data={"csrf_token": csrf},
            follow_redirects=False,
        )
        assert resp.status_code == 303
        assert rad.get("/", follow_redirects=False).status_code == 303
        auth = {"Authorization": f"Bearer {tokens['radiologist']}"}
        assert rad.get("/api/v1/studies", headers=auth).status_code == 401


def test_auth_cache_forgets_deactivated_users(db: Database, tmp_path: Path) -> None:
    tokens = add_users(db)
    auth = {"Authorization": f"Bearer {tokens['radiologist']}"}
    with make_app(db, tmp_path) as (app, _), TestClient(app) as admin, TestClient(app) as rad:
        login(rad, "radiologist")
        csrf = login(admin, "admin")
        # Both ways of the radiologist are cached now.
        assert rad.get("/", follow_redirects=False).status_code == 200
        assert rad.get("/api/v1/studies", headers=auth).status_code == 200
        # A change through this process is honoured at once...
        gone = admin.post(
            "/api/v1/admin/users/radiologist/deactivate", headers={"X-CSRF-Token": csrf}
        )
        assert gone.status_code == 200
        assert rad.get("/", follow_redirects=False).status_code == 303
        assert rad.get("/api/v1/studies", headers=auth).status_code == 401
        # ...one made elsewhere (another process, the command line) within the cache's TTL.
        app.state.auth_cache.ttl_s = 0.3
        tech = {"Authorization": f"Bearer {tokens['ml_engineer']}"}
        assert rad.get("/api/v1/studies", headers=tech).status_code == 200
        with db.write() as session:
            set_active(session, "ml_engineer", False)
        time.sleep(0.4)
        assert rad.get("/api/v1/studies", headers=tech).status_code == 401


def test_login_returns_to_the_page_asked_for_with_its_query(db: Database, tmp_path: Path) -> None:
    add_users(db)
    study = seed_study(db, tmp_path)
    with make_app(db, tmp_path) as (app, _), TestClient(app) as client:
        asked = f"/studies/{study}?tab=findings"
        first = client.get(asked, follow_redirects=False)
        assert first.status_code == 303
        page = client.get(first.headers["location"])
        token = csrf_of(page.text)
        ok = client.post(
            "/login",
            data={
                "username": "radiologist",
                "password": PASSWORD,
                "csrf_token": token,
                "next": asked,
            },
            follow_redirects=False,
        )
        assert ok.status_code == 303 and ok.headers["location"] == asked
        assert f'value="{asked}"' in page.text


def test_login_never_redirects_to_another_site(db: Database, tmp_path: Path) -> None:
    add_users(db)
    hostile = [
        "//evil.example/",
        "/\\evil.example/",
        "/\\/evil.example",
        "https://evil.example/",
        "/\tevil",
        "evil.example",
    ]
    for target in hostile:
        with make_app(db, tmp_path) as (app, _), TestClient(app) as client:
            token = csrf_of(client.get("/login").text)
            ok = client.post(
                "/login",
                data={
                    "username": "radiologist",
                    "password": PASSWORD,
                    "csrf_token": token,
                    "next": target,
                },
                follow_redirects=False,
            )
            assert ok.status_code == 303, target
            assert ok.headers["location"] == "/", (target, ok.headers["location"])
