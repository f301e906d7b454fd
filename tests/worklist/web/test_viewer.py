"""/viewer: the OHIF dist served with its config, or (not installed) how to add it."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from tests.builders.store import PASSWORD, add_users, seed_study
from tests.builders.viewer import fake_dist
from tests.builders.web import csrf_of, make_app
from worklist.db.engine import Database


def _logged_in(client: TestClient, who: str = "radiologist") -> None:
    csrf = csrf_of(client.get("/login").text)
    form = {"username": who, "password": PASSWORD, "csrf_token": csrf}
    assert client.post("/login", data=form).status_code == 200


def test_without_the_viewer_it_says_how_to_add_it_and_the_app_works(
    db: Database, tmp_path: Path
) -> None:
    add_users(db)
    uid = seed_study(db, tmp_path / "archive", crossed=True)
    with (
        make_app(db, tmp_path, viewer_dir=tmp_path / "no-viewer") as (app, _),
        TestClient(app) as c,
    ):
        _logged_in(c)
        resp = c.get(f"/viewer/viewer?StudyInstanceUIDs={uid}")
        assert resp.status_code == 503
        assert "scripts/install-viewer.sh" in resp.text
        assert c.get("/viewer").status_code == 503
        worklist = c.get("/")
        assert worklist.status_code == 200
        assert f'href="/viewer/viewer?StudyInstanceUIDs={uid}"' in worklist.text
        study = c.get(f"/studies/{uid}")
        assert study.status_code == 200
        assert f'href="/viewer/viewer?StudyInstanceUIDs={uid}"' in study.text
        assert c.get(f"/dicom-web/studies/{uid}/metadata").status_code == 200


def test_installed_viewer_is_served_with_its_config(db: Database, tmp_path: Path) -> None:
    add_users(db)
    dist = fake_dist(tmp_path / "dist")
    with make_app(db, tmp_path, viewer_dir=dist) as (app, _), TestClient(app) as c:
        _logged_in(c)
        spa = c.get("/viewer/viewer?StudyInstanceUIDs=1.2.3")
        assert spa.status_code == 200
        assert spa.text == (dist / "index.html").read_text()
        config = c.get("/viewer/app-config.js")
        assert config.headers["content-type"].startswith("text/javascript")
        assert '"qidoRoot": "http://testserver/dicom-web"' in config.text
        assert '"wadoRoot": "http://testserver/dicom-web"' in config.text
        assert '"imageRendering": "wadors"' in config.text
        assert '"routerBasename": "/viewer"' in config.text
        chunk = c.get("/viewer/app.bundle.0123abcd.js")
        assert chunk.headers["content-type"].startswith("text/javascript")
        assert "immutable" in chunk.headers["cache-control"]
        wasm = c.get("/viewer/0ddf166f7a343eda.wasm")
        assert wasm.headers["content-type"] == "application/wasm"
        assert c.get("/viewer/assets/logo.svg").status_code == 200
        assert c.get("/viewer/missing.js").status_code == 404
        assert c.get("/viewer/.installed").status_code == 404  # the stamp is not served
        outside = c.get("/viewer/..%2F..%2Fetc%2Fpasswd")  # never a file outside the dist
        assert outside.text == spa.text


def test_viewer_roles(db: Database, tmp_path: Path) -> None:
    add_users(db)
    dist = fake_dist(tmp_path / "dist")
    with make_app(db, tmp_path, viewer_dir=dist) as (app, _):
        with TestClient(app) as c:
            anonymous = c.get("/viewer/viewer", follow_redirects=False)
            assert anonymous.status_code == 303
            assert anonymous.headers["location"].startswith("/login?next=")
            assert c.get("/viewer/app-config.js", follow_redirects=False).status_code == 303
        with TestClient(app) as c:
            _logged_in(c, "radiographer")
            assert c.get("/viewer/viewer").status_code == 403
        for who in ("admin", "ml_engineer"):
            with TestClient(app) as c:
                _logged_in(c, who)
                assert c.get("/viewer/viewer").status_code == 200
