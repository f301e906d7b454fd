"""The monitoring page and API: same numbers as the store's report, audited, ML roles only."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from models.settings import ModelsSettings
from tests.builders import REPO
from tests.builders.audit import audit_events
from tests.builders.monitoring import scores, write_reference
from tests.builders.store import add_scored_findings, add_users
from tests.builders.web import login, make_app
from worklist.db.engine import Database
from worklist.reading.monitoring import model_report

MODEL = "demo-cxr@1.0.0"
API = "/api/v1/monitoring/models"


def _seed(db: Database, tmp_path: Path, *, shifted: bool = True) -> dict[str, str]:
    tokens = add_users(db)
    write_reference(tmp_path / "models", MODEL, {"pneumothorax": scores(500, seed=20)})
    window = scores(150, seed=21, a=5, b=2) if shifted else scores(150, seed=21)
    at = datetime.now(UTC) - timedelta(days=1)
    add_scored_findings(db, window[:100], at=at, site="CDC_A")
    add_scored_findings(db, window[100:], at=at - timedelta(days=1), site="CDC_B")
    return tokens


def test_api_gives_the_reports_numbers_and_is_audited(sqlite_db: Database, tmp_path: Path) -> None:
    tokens = _seed(sqlite_db, tmp_path)
    auth = {"Authorization": f"Bearer {tokens['ml_engineer']}"}
    with make_app(sqlite_db, tmp_path) as (app, settings), TestClient(app) as client:
        listed = client.get(API, headers=auth)
        assert listed.status_code == 200, listed.text
        (entry,) = listed.json()["models"]
        assert entry["model"] == MODEL
        assert {a["measure"] for a in entry["alerts"]} == {"psi", "ks_pvalue"}
        got = client.get(f"{API}/{MODEL}", headers=auth, params={"days": 7})
        assert got.status_code == 200, got.text
        expected = asdict(
            model_report(sqlite_db, settings, ModelsSettings(models_dir=tmp_path / "models"), MODEL)
        )
        body = got.json()
        for key in ("since", "until"):  # the window ends when each was asked
            del body[key], expected[key]
        assert body == expected
        assert {r["site"] for r in body["positive_rate"]} == {"CDC_A", "CDC_B"}
        assert client.get(f"{API}/absent@1", headers=auth).status_code == 404
        assert client.get(f"{API}/no-version", headers=auth).status_code == 422
        app.state.audit.flush()
    views = audit_events(sqlite_db, "monitoring.view")
    assert len(views) == 2  # the list and the report; refused requests show nothing
    assert {e.actor for e in views} == {"ml_engineer"}
    assert views[0].details["models"] == [MODEL]


@pytest.mark.parametrize("role", ["admin", "ml_engineer"])
def test_page_draws_the_charts_and_the_alert(
    sqlite_db: Database, tmp_path: Path, role: str
) -> None:
    _seed(sqlite_db, tmp_path)
    with make_app(sqlite_db, tmp_path) as (app, _), TestClient(app) as client:
        login(client, role)
        page = client.get("/admin/monitoring")
        assert page.status_code == 200, page.text
        html = page.text
        assert 'data-chart="histogram"' in html
        assert 'data-chart="positive-rate"' in html
        assert 'data-chart="agreement"' in html
        assert "Drift alert: demo-cxr@1.0.0 pneumothorax: PSI" in html
        assert 'href="/admin/monitoring"' in client.get("/admin/models").text
        assert "http://" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "")
        app.state.audit.flush()
    (view,) = audit_events(sqlite_db, "monitoring.view")
    assert (view.actor, view.details["via"]) == (role, "page")


def test_unshifted_scores_show_no_alert(sqlite_db: Database, tmp_path: Path) -> None:
    _seed(sqlite_db, tmp_path, shifted=False)
    with make_app(sqlite_db, tmp_path) as (app, _), TestClient(app) as client:
        login(client, "ml_engineer")
        html = client.get("/admin/monitoring").text
    assert "Drift alert" not in html
    assert 'data-chart="histogram"' in html


@pytest.mark.parametrize("role", ["radiologist", "radiographer"])
def test_other_roles_are_refused(sqlite_db: Database, tmp_path: Path, role: str) -> None:
    tokens = _seed(sqlite_db, tmp_path)
    with make_app(sqlite_db, tmp_path) as (app, _), TestClient(app) as client:
        assert (
            client.get(API, headers={"Authorization": f"Bearer {tokens[role]}"}).status_code == 403
        )
        login(client, role)
        page = client.get("/admin/monitoring")
    assert page.status_code == 403
    assert "pneumothorax" not in page.text


def test_without_scipy_monitoring_answers_503_and_the_rest_works(
    sqlite_db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tokens = _seed(sqlite_db, tmp_path)
    monkeypatch.setitem(sys.modules, "scipy.stats", None)
    auth = {"Authorization": f"Bearer {tokens['ml_engineer']}"}
    with make_app(sqlite_db, tmp_path) as (app, _), TestClient(app) as client:
        resp = client.get(f"{API}/{MODEL}", headers=auth)
        assert resp.status_code == 503
        assert "bench extra" in resp.json()["detail"]
        assert client.get("/api/v1/studies", headers=auth).status_code == 200
        login(client, "ml_engineer")
        page = client.get("/admin/monitoring")
    assert page.status_code == 200
    assert "bench extra" in page.text


def test_the_web_app_imports_without_scipy() -> None:
    code = (
        "import sys; sys.modules['scipy'] = None; sys.modules['scipy.stats'] = None\n"
        "import worklist.web.app, worklist.reading.monitoring\n"
    )
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True, timeout=120)


def test_page_takes_the_window_and_the_period(sqlite_db: Database, tmp_path: Path) -> None:
    _seed(sqlite_db, tmp_path)
    old = datetime.now(UTC) - timedelta(days=20)
    add_scored_findings(sqlite_db, [0.9], at=old, site="CDC_OLD", model="old@1")
    with make_app(sqlite_db, tmp_path) as (app, _), TestClient(app) as client:
        login(client, "ml_engineer")
        week = client.get("/admin/monitoring", params={"bucket": "week"}).text
        seeded = datetime.now(UTC) - timedelta(days=1)  # CDC_A's findings (_seed)
        assert f"<td>CDC_A</td><td>{seeded.strftime('%G-W%V')}</td>" in week
        default = client.get("/admin/monitoring").text
        assert "old@1" not in default
        wide = client.get("/admin/monitoring", params={"days": 30, "model": "old@1"}).text
        assert 'data-model="old@1"' in wide and "CDC_OLD" in wide
        missing = client.get("/admin/monitoring", params={"model": "absent@1"}).text
        assert "absent@1 made no finding in the window" in missing
