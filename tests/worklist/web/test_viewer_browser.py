"""Headless Chromium: a radiologist opens the P1 study in the OHIF viewer from the worklist."""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import Request, Response, sync_playwright

from tests.builders import REPO
from tests.builders.store import PASSWORD, add_users, seed_study
from tests.builders.viewer import installed_dist
from tests.builders.web import live_server, make_app
from worklist.db.engine import Database

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = REPO / "test-artifacts"
ARGS = [
    "--no-sandbox",
    "--use-angle=swiftshader",
    "--enable-unsafe-swiftshader",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
# True once the viewport's canvas holds a pixel that is not black (the image is drawn).
NON_BLANK = """() => {
  const c = document.querySelector('.cornerstone-canvas, [data-viewport-uid] canvas');
  if (!c || c.width === 0) return false;
  const ctx = c.getContext('2d', { willReadFrequently: true });
  if (!ctx) return false;
  const d = ctx.getImageData(0, 0, c.width, c.height).data;
  for (let i = 0; i < d.length; i += 4) { if (d[i] || d[i + 1] || d[i + 2]) return true; }
  return false;
}"""

# No skip when the viewer is missing: `make test` installs it first (its `viewer` step).


def test_radiologist_opens_the_p1_study_in_the_viewer(sqlite_db: Database, tmp_path: Path) -> None:
    dist = installed_dist()
    add_users(sqlite_db)
    archive = tmp_path / "archive"
    seed_study(sqlite_db, archive, priority="P3", crossed=False, name="ROUTINE^PAT")
    p1 = seed_study(sqlite_db, archive, priority="P1", crossed=True, name="URGENT^PAT")
    ARTIFACTS.mkdir(exist_ok=True)
    requests: list[str] = []
    failed: list[str] = []

    def on_response(resp: Response) -> None:
        if resp.status >= 400:
            failed.append(f"{resp.status} {resp.url}")

    def on_failed(req: Request) -> None:
        failed.append(f"failed {req.url}: {req.failure}")

    with (
        make_app(sqlite_db, tmp_path, viewer_dir=dist) as (app, _),
        live_server(app) as base,
        sync_playwright() as pw,
    ):
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            page.goto(f"{base}/login")
            page.fill("input[name=username]", "radiologist")
            page.fill("input[name=password]", PASSWORD)
            page.click("button[type=submit]")
            page.wait_for_selector("#worklist tbody tr[data-uid]")
            row = page.locator("#worklist tbody tr[data-uid]").nth(0)
            assert row.get_attribute("data-uid") == p1
            page.on("request", lambda r: requests.append(r.url))
            page.on("response", on_response)
            page.on("requestfailed", on_failed)
            row.locator("a.open-viewer").click()
            page.wait_for_url(f"**/viewer/viewer?StudyInstanceUIDs={p1}")
            page.wait_for_function(NON_BLANK, timeout=60_000)
            page.screenshot(path=str(ARTIFACTS / "viewer-1-p1-study.png"))
        finally:
            browser.close()
    study = f"{base}/dicom-web/studies/{p1}"
    assert any(u.startswith(study) and "/metadata" in u for u in requests), requests
    assert any(u.startswith(study) and "/frames/" in u for u in requests), requests
    assert all(u.startswith(base) for u in requests), [
        u for u in requests if not u.startswith(base)
    ]
    assert failed == []
