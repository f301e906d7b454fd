"""Headless Chromium: a radiologist logs in, reads the P1 study first, claims and reports it."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from tests.builders import REPO
from tests.builders.store import PASSWORD, add_users, seed_study
from tests.builders.web import live_server, make_app
from worklist.db.engine import Database
from worklist.db.schema import Study

CHROMIUM = "/usr/bin/chromium"
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
    from playwright.sync_api import sync_playwright

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
            rows.nth(0).locator("a").click()
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
