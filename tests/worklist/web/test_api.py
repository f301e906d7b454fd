"""The JSON API: worklist order and filters, study detail, reading actions, site status, admin."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import select

from tests.builders.store import add_users, seed_study
from tests.builders.web import make_app
from worklist.audit import EventCategory, record_event
from worklist.db.engine import Database
from worklist.db.schema import Event, Feedback, Job, Study


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_worklist_order_filters_and_pages(db: Database, tmp_path: Path) -> None:
    tokens = add_users(db)
    archive = tmp_path / "archive"
    p3_late = seed_study(db, archive, priority="P3", due_in_min=300, with_image=False)
    p3_soon = seed_study(db, archive, priority="P3", due_in_min=30, with_image=False)
    p3_no_target_old = seed_study(
        db, archive, priority="P3", due_in_min=None, received_min_ago=50, with_image=False
    )
    p3_no_target_new = seed_study(
        db, archive, priority="P3", due_in_min=None, received_min_ago=5, with_image=False
    )
    p1 = seed_study(db, archive, priority="P1", due_in_min=500, crossed=True, site="CDC2")
    p2 = seed_study(db, archive, priority="P2", due_in_min=10, with_image=False, modality="DX")
    reported = seed_study(db, archive, priority="P1", due_in_min=1, with_image=False)
    with db.write() as session:
        row = session.scalars(select(Study).where(Study.study_instance_uid == reported)).one()
        row.read_status = "reported"
    with make_app(db, tmp_path) as (app, _), TestClient(app) as client:
        auth = _auth(tokens["radiologist"])

        def uids(query: str = "") -> list[str]:
            resp = client.get(f"/api/v1/studies{query}", headers=auth)
            assert resp.status_code == 200, resp.text
            return [s["study_instance_uid"] for s in resp.json()["items"]]

        expected = [p1, p2, p3_soon, p3_late, p3_no_target_old, p3_no_target_new]
        assert uids() == expected
        assert uids("?site=CDC2") == [p1]
        assert uids("?modality=dx") == [p2]
        assert uids("?priority=P3&priority=P2") == expected[1:]
        assert uids("?status=reported") == [reported]
        assert uids("?read_status=reported") == [reported]
        page1 = client.get("/api/v1/studies?page_size=4", headers=auth).json()
        page2 = client.get("/api/v1/studies?page_size=4&page=2", headers=auth).json()
        assert page1["has_next"] and not page2["has_next"]
        got = [s["study_instance_uid"] for s in page1["items"] + page2["items"]]
        assert got == expected
        first = client.get("/api/v1/studies", headers=auth).json()["items"][0]
        assert first["priority"] == "P1" and first["clinical_priority"] == "P3"
        assert first["findings"][0]["model"] == {
            "name": "demo-cxr",
            "version": "1.0.0",
            "sha256": "ab" * 32,
            "uid": "",
            "creator": "",
        }
        assert first["findings"][0]["crossed"] is True
        assert first["explanation"] == ["priority P1 by test"]
        assert first["status"] == "unread" and first["state"] == "triaged"
        assert first["waiting_s"] > 500 and first["due_at"]
        ai_na = client.get(f"/api/v1/studies/{p2}", headers=auth).json()
        assert ai_na["ai_status"] == "not_available" and ai_na["ai_reason"] == "no model applies"
        assert "not a diagnosis" in ai_na["disclaimer"]


def test_claim_release_report_feedback_and_audit(db: Database, tmp_path: Path) -> None:
    tokens = add_users(db)
    with db.write() as session:
        from worklist.accounts.tokens import issue_token
        from worklist.accounts.users import add_user

        add_user(session, "other", "password-2", "radiologist")
        other_token = issue_token(session, "other").secret
    uid = seed_study(db, tmp_path / "archive", priority="P1", crossed=True)
    with make_app(db, tmp_path) as (app, _), TestClient(app) as client:
        rad, other = _auth(tokens["radiologist"]), _auth(other_token)
        admin = _auth(tokens["admin"])
        base = f"/api/v1/studies/{uid}"
        assert client.post(f"{base}/report", headers=rad).status_code == 409  # not claimed
        assert client.post(f"{base}/claim", headers=rad).status_code == 200
        assert client.post(f"{base}/claim", headers=rad).status_code == 200  # idempotent
        taken = client.post(f"{base}/claim", headers=other)
        assert taken.status_code == 409 and "radiologist" in taken.json()["detail"]
        assert client.post(f"{base}/release", headers=other).status_code == 403
        assert client.post(f"{base}/report", headers=other).status_code == 403
        assert client.post(f"{base}/release", headers=admin).status_code == 200
        assert client.post(f"{base}/claim", headers=other).status_code == 200
        done = client.post(f"{base}/report", headers=other)
        assert done.status_code == 200 and done.json()["status"] == "reported"
        assert client.post(f"{base}/claim", headers=rad).status_code == 409
        finding_id = client.get(base, headers=rad).json()["findings"][0]["id"]
        fb = client.post(
            f"{base}/feedback", headers=rad, json={"kind": "disagree", "finding_id": finding_id}
        )
        assert fb.status_code == 201
        missed = client.post(f"{base}/feedback", headers=rad, json={"kind": "missed"})
        assert missed.status_code == 422  # a missed finding needs a label
        fb2 = client.post(
            f"{base}/feedback", headers=rad, json={"kind": "missed", "label": "effusion"}
        )
        assert fb2.status_code == 201
        assert client.get("/api/v1/studies/1.2.3.999", headers=rad).status_code == 404
        app.state.audit.flush()
    with db.read() as session:
        rows = [
            (f.username, f.kind, f.label, f.finding_id) for f in session.scalars(select(Feedback))
        ]
        audit = [
            (e.action, e.actor, e.outcome)
            for e in session.scalars(
                select(Event).where(Event.category == "audit").order_by(Event.id)
            )
            if e.action.startswith("study.")
        ]
    assert rows == [
        ("radiologist", "disagree", "", finding_id),
        ("radiologist", "missed", "effusion", None),
    ]
    actions = [a for a, _, _ in audit]
    assert actions.count("study.claim") == 5
    assert ("study.claim", "other", "failure") in audit
    assert ("study.release", "admin", "success") in audit
    assert ("study.report", "other", "success") in audit
    assert ("study.view", "radiologist", "success") in audit
    assert actions.count("study.feedback") == 2


def test_clinical_priority_enqueues_reprioritise(db: Database, tmp_path: Path) -> None:
    tokens = add_users(db)
    uid = seed_study(db, tmp_path / "archive", priority="P3", with_image=False)
    with make_app(db, tmp_path) as (app, _), TestClient(app) as client:
        url = f"/api/v1/studies/{uid}/clinical-priority"
        bad = client.put(url, headers=_auth(tokens["admin"]), json={"clinical_priority": "P9"})
        assert bad.status_code == 422
        resp = client.put(url, headers=_auth(tokens["admin"]), json={"clinical_priority": "P1"})
        assert resp.status_code == 200
        body = resp.json()
        assert body["clinical_priority"] == "P1"
        assert body["priority"] == "P3"  # the worker recomputes it, not the web app
    with db.read() as session:
        study = session.scalars(select(Study).where(Study.study_instance_uid == uid)).one()
        jobs = list(session.scalars(select(Job).where(Job.study_id == study.id)))
        assert study.clinical_priority_source == "api"
        assert [(j.kind, j.state) for j in jobs] == [("reprioritise", "queued")]


def test_site_status_shows_own_site_and_refusals(db: Database, tmp_path: Path) -> None:
    tokens = add_users(db, site="CDC1")
    mine = seed_study(db, tmp_path / "archive", site="CDC1", with_image=False)
    theirs = seed_study(db, tmp_path / "archive", site="CDC2", with_image=False)
    with db.write() as session:
        for site in ("CDC1", "CDC2"):
            record_event(
                session,
                EventCategory.INGEST,
                "instance.refused",
                actor=site,
                source="10.0.0.1:104",
                study_instance_uid="1.2.3",
                details={"reason": f"unsupported SOP class from {site}"},
            )
    with make_app(db, tmp_path) as (app, _), TestClient(app) as client:
        own = client.get("/api/v1/site/status", headers=_auth(tokens["radiographer"])).json()
        assert [s["study_instance_uid"] for s in own["studies"]] == [mine]
        assert own["studies"][0]["state"] == "triaged"
        assert "patient_name" not in own["studies"][0]
        assert [r["reason"] for r in own["refused"]] == ["unsupported SOP class from CDC1"]
        every = client.get("/api/v1/site/status", headers=_auth(tokens["admin"])).json()
        assert {s["study_instance_uid"] for s in every["studies"]} == {mine, theirs}
        assert len(every["refused"]) == 2
        login_page = client.get("/api/v1/studies", headers=_auth(tokens["radiographer"]))
        assert login_page.status_code == 403


def test_admin_users_and_audit_api(sqlite_db: Database, tmp_path: Path) -> None:
    tokens = add_users(sqlite_db)
    with make_app(sqlite_db, tmp_path) as (app, _), TestClient(app) as client:
        admin = _auth(tokens["admin"])
        new = {"username": "newrad", "password": "longenough", "role": "radiologist"}
        assert client.post("/api/v1/admin/users", headers=admin, json=new).status_code == 201
        assert client.post("/api/v1/admin/users", headers=admin, json=new).status_code == 409
        names = [u["username"] for u in client.get("/api/v1/admin/users", headers=admin).json()]
        assert "newrad" in names
        gone = client.post("/api/v1/admin/users/newrad/deactivate", headers=admin)
        assert gone.status_code == 200 and gone.json()["active"] is False
        assert (
            client.post("/api/v1/admin/users/nobody/deactivate", headers=admin).status_code == 404
        )
        log = client.get("/api/v1/admin/audit", headers=admin).json()
        assert [e["action"] for e in log["items"]][:2] == ["user.deactivate", "user.add"]
        health = client.get("/api/v1/health")
        assert health.json() == {"status": "ok"}
        assert health.headers["x-content-type-options"] == "nosniff"
        assert health.headers["x-frame-options"] == "DENY"
        assert health.headers["referrer-policy"] == "same-origin"


def test_list_cache_is_cleared_by_changes_and_expires(sqlite_db: Database, tmp_path: Path) -> None:
    tokens = add_users(sqlite_db)
    uid = seed_study(sqlite_db, tmp_path / "archive", with_image=False)
    with make_app(sqlite_db, tmp_path) as (app, _), TestClient(app) as client:
        rad = _auth(tokens["radiologist"])
        app.state.list_cache.ttl_s = 60.0

        def holder() -> str | None:
            item = client.get("/api/v1/studies", headers=rad).json()["items"][0]
            assert item["study_instance_uid"] == uid
            return item["claimed_by"]  # type: ignore[no-any-return]

        assert holder() is None
        assert client.post(f"/api/v1/studies/{uid}/claim", headers=rad).status_code == 200
        assert holder() == "radiologist"  # our own change empties the cache
        with sqlite_db.write() as session:  # a change by another process (say a worker)
            study = session.scalars(select(Study).where(Study.study_instance_uid == uid)).one()
            study.claimed_by = "elsewhere"
        assert holder() == "radiologist"  # served from the cache within the TTL
        app.state.list_cache.ttl_s = 0.0
        assert holder() == "elsewhere"


def test_list_cache_single_flight_and_generation() -> None:
    import threading

    from worklist.web.listcache import ListCache

    cache = ListCache(60.0)
    assert cache.get("k", lambda: 1) == 1
    assert cache.get("k", lambda: 2) == 1  # fresh: cached
    cache.clear()
    started, release = threading.Event(), threading.Event()

    def slow() -> int:
        started.set()
        release.wait(5)
        return 3

    worker = threading.Thread(target=lambda: cache.get("k", slow))
    worker.start()
    started.wait(5)
    cache.clear()  # a change while computing: the result must not be kept
    release.set()
    worker.join()
    assert cache.get("k", lambda: 4) == 4
