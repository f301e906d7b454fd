"""Headless Chromium: a radiologist reads the P1 study first and hears of new ones; monitoring."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from playwright.sync_api import sync_playwright
from sqlalchemy import select

from tests.builders import REPO
from tests.builders.monitoring import scores, write_reference
from tests.builders.rows import add_finding, set_study_datetime
from tests.builders.store import (
    PASSWORD,
    add_feedback,
    add_scored_findings,
    add_users,
    seed_study,
)
from tests.builders.web import live_server, make_app
from worklist.db.engine import Database
from worklist.db.schema import Study
from worklist.reading.drift import CHART_BINS

CHROMIUM = "/usr/bin/chromium"
MODEL = "demo-cxr@1.0.0"
ARTIFACTS = REPO / "test-artifacts"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]

# No skip when Chromium is missing: `make test` installs it, and a missing browser is a failure.


def test_radiologist_reads_p1_first(sqlite_db: Database, tmp_path: Path) -> None:
    add_users(sqlite_db)
    archive = tmp_path / "archive"
    p3 = seed_study(
        sqlite_db, archive, priority="P3", crossed=False, name="ROUTINE^PAT", received_min_ago=90
    )
    p1 = seed_study(
        sqlite_db, archive, priority="P1", crossed=True, heatmap=True, name="URGENT^PAT"
    )
    ARTIFACTS.mkdir(exist_ok=True)
    with (
        make_app(sqlite_db, tmp_path) as (app, _),
        live_server(app) as base,
        sync_playwright() as pw,
    ):
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            page.goto(f"{base}/")
            assert "/login" in page.url
            page.fill("input[name=username]", "radiologist")
            page.fill("input[name=password]", PASSWORD)
            page.click("button[type=submit]")
            page.wait_for_selector("#worklist tbody tr[data-uid]")
            page.screenshot(path=str(ARTIFACTS / "web-1-worklist.png"), full_page=True)
            rows = page.locator("#worklist tbody tr[data-uid]")
            assert rows.count() == 2
            assert rows.nth(0).get_attribute("data-uid") == p1
            assert rows.nth(1).get_attribute("data-uid") == p3
            # The rows refresh by polling the API; the order survives the refresh.
            page.wait_for_function(
                "document.getElementById('updated').textContent.startsWith('updated')",
                timeout=10_000,
            )
            assert rows.nth(0).get_attribute("data-uid") == p1
            rows.nth(0).locator("a").first.click()
            page.wait_for_url(f"**/studies/{p1}")
            page.wait_for_function(
                "() => { const i = document.getElementById('key-image');"
                " return i && i.complete && i.naturalWidth > 0; }",
                timeout=10_000,
            )
            width = page.eval_on_selector("#key-image", "i => i.naturalWidth")
            assert width == 64
            assert "decision support" in page.content()
            assert "demo-cxr" in page.content()
            page.screenshot(path=str(ARTIFACTS / "web-2-study.png"), full_page=True)
            page.click("#claim")
            page.wait_for_selector("#report")
            assert "claimed by radiologist" in page.inner_text("#read-status")
            page.screenshot(path=str(ARTIFACTS / "web-3-claimed.png"), full_page=True)
            page.click("#report")
            page.wait_for_function(
                "document.getElementById('read-status').textContent.includes('reported')"
            )
            page.screenshot(path=str(ARTIFACTS / "web-4-reported.png"), full_page=True)
        finally:
            browser.close()
    with sqlite_db.read() as session:
        study = session.scalars(select(Study).where(Study.study_instance_uid == p1)).one()
        assert (study.read_status, study.reported_by) == ("reported", "radiologist")


def test_new_p1_is_announced_without_reload(sqlite_db: Database, tmp_path: Path) -> None:
    add_users(sqlite_db)
    archive = tmp_path / "archive"
    old_p1 = seed_study(sqlite_db, archive, priority="P1", crossed=True, name="ALREADY^THERE")
    seed_study(sqlite_db, archive, priority="P3", crossed=False, name="ROUTINE^PAT")
    ARTIFACTS.mkdir(exist_ok=True)
    with (
        make_app(sqlite_db, tmp_path) as (app, _),
        live_server(app) as base,
        sync_playwright() as pw,
    ):
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(f"{base}/login")
            page.fill("input[name=username]", "radiologist")
            page.fill("input[name=password]", PASSWORD)
            page.click("button[type=submit]")
            page.wait_for_selector(f"#worklist tbody tr[data-uid='{old_p1}']")
            # The sound toggle is off by default and remembered across loads.
            assert not page.is_checked("#p1-sound")
            page.check("#p1-sound")
            page.reload()
            assert page.is_checked("#p1-sound")
            page.wait_for_function(
                "document.getElementById('updated').textContent.startsWith('updated')",
                timeout=10_000,
            )
            assert page.is_hidden("#p1-alert")  # the P1 already there is not announced
            new_p1 = seed_study(sqlite_db, archive, priority="P1", crossed=True, name="NEW^URGENT")
            set_study_datetime(sqlite_db, new_p1, "20261202", "1405")
            add_finding(sqlite_db, new_p1, "nodule", 0.2)
            page.wait_for_selector("#p1-alert:not([hidden])", timeout=10_000)
            assert "NEW^URGENT" in page.inner_text("#p1-alert")
            assert "ALREADY^THERE" not in page.inner_text("#p1-alert")
            assert page.get_attribute("#p1-alert", "role") == "alert"
            row = page.locator(f"#worklist tbody tr[data-uid='{new_p1}']")
            row.wait_for()
            assert "2 Dec 2026 14:05" in row.inner_text()
            assert row.locator("details.folded summary").inner_text() == "+1 below threshold"
            page.screenshot(path=str(ARTIFACTS / "web-6-p1-alert.png"), full_page=True)
            page.click("#p1-alert button")
            assert page.is_hidden("#p1-alert")
            assert errors == []
        finally:
            browser.close()


def test_ml_engineer_sees_the_monitoring_charts(sqlite_db: Database, tmp_path: Path) -> None:
    add_users(sqlite_db)
    write_reference(tmp_path / "models", MODEL, {"pneumothorax": scores(400, seed=30)})
    at = datetime.now(UTC) - timedelta(days=1)
    made = add_scored_findings(sqlite_db, scores(120, seed=31, a=5, b=2), at=at, site="CDC_A")
    for (study_id, finding_id), kind in zip(made, ["agree", "agree", "disagree"], strict=False):
        add_feedback(sqlite_db, study_id, kind, finding_id=finding_id, at=at)
    add_scored_findings(sqlite_db, scores(80, seed=32), at=at - timedelta(days=1), site="CDC_B")
    ARTIFACTS.mkdir(exist_ok=True)
    with (
        make_app(sqlite_db, tmp_path) as (app, _),
        live_server(app) as base,
        sync_playwright() as pw,
    ):
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            outside: list[str] = []
            page.on(
                "request",
                lambda r: outside.append(r.url) if not r.url.startswith(base) else None,
            )
            page.goto(f"{base}/login")
            page.fill("input[name=username]", "ml_engineer")
            page.fill("input[name=password]", PASSWORD)
            page.click("button[type=submit]")
            page.wait_for_url("**/admin/models")
            page.click("a[href='/admin/monitoring']")
            page.wait_for_selector("#model-report svg[data-chart=histogram]")
            page.screenshot(path=str(ARTIFACTS / "web-5-monitoring.png"), full_page=True)
            assert "Drift alert" in page.inner_text("#model-report")
            for chart in ("histogram", "positive-rate", "agreement"):
                box = page.locator(f"svg[data-chart={chart}]").first.bounding_box()
                assert box is not None and box["width"] > 100 and box["height"] > 50, chart
            bars = page.locator("svg[data-chart=histogram] rect.reference")
            assert bars.count() == CHART_BINS
            heights = bars.evaluate_all("rs => rs.map(r => r.getBoundingClientRect().height)")
            assert max(heights) > 20
            line = page.locator("svg[data-chart=histogram] polyline.current").first.bounding_box()
            assert line is not None and line["width"] > 100
            sites = page.locator("svg[data-chart=positive-rate] circle")
            assert sites.count() == 2
            assert page.locator("svg[data-chart=agreement] circle.estimate").count() == 1
            assert outside == []
        finally:
            browser.close()
