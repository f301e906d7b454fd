"""Every change to who can reach the worklist through the web app is audited exactly once.

The web app passes the signed-in admin and the client address to the domain functions, which
record the events. No event ever holds a password or a token.
"""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from tests.builders.audit import assert_no_secret, user_events
from tests.builders.store import add_users
from tests.builders.web import login, make_app
from worklist.db.engine import Database


def test_web_api_add_and_deactivate_each_record_one_event(db: Database, tmp_path: Path) -> None:
    tokens = add_users(db)
    admin = {"Authorization": f"Bearer {tokens['admin']}"}
    new = {"username": "frank", "password": "long-enough", "role": "ml_engineer"}
    with make_app(db, tmp_path) as (app, _), TestClient(app) as client:
        assert client.post("/api/v1/admin/users", headers=admin, json=new).status_code == 201
        gone = client.post("/api/v1/admin/users/frank/deactivate", headers=admin)
        assert gone.status_code == 200 and gone.json()["active"] is False
    events = user_events(db, "frank")
    assert [(a, c, who, src) for a, c, who, src, _ in events] == [
        ("user.add", "audit", "admin", "testclient"),
        ("user.deactivate", "audit", "admin", "testclient"),
    ]
    assert events[0][4] == {"username": "frank", "role": "ml_engineer", "site": ""}
    assert_no_secret(events, "long-enough")


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
    events = user_events(db, "grace")
    assert [(a, c, who, src) for a, c, who, src, _ in events] == [
        ("user.add", "audit", "admin", "testclient"),
        ("user.deactivate", "audit", "admin", "testclient"),
    ]
    assert events[0][4] == {"username": "grace", "role": "radiographer", "site": "CDC2"}
    assert_no_secret(events, "long-enough")


def test_an_admin_cannot_deactivate_the_last_active_admin(db: Database, tmp_path: Path) -> None:
    tokens = add_users(db)
    admin = {"Authorization": f"Bearer {tokens['admin']}"}
    with make_app(db, tmp_path) as (app, _), TestClient(app) as client:
        refused = client.post("/api/v1/admin/users/admin/deactivate", headers=admin)
        assert refused.status_code == 409, refused.text
        assert "last active admin" in refused.json()["detail"]
        assert client.get("/api/v1/admin/users", headers=admin).status_code == 200  # still in
        csrf = login(client, "admin")
        page = client.post(
            "/admin/users/admin/deactivate", data={"csrf_token": csrf}, follow_redirects=False
        )
        assert page.status_code == 303 and "error" in page.headers["location"]
    assert [a for a, *_ in user_events(db, "admin") if a.startswith("user.")] == ["user.add"]
