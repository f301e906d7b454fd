"""Admin and ML engineers list models from the registry and enable, disable or shadow them."""

from __future__ import annotations

import re
from pathlib import Path

from fastapi.testclient import TestClient

from models.card import CARD_FILE, card_from_dict, dump_card
from models.registry import ModelRegistry
from models.settings import ModelsSettings
from tests.builders.cards import card_dict
from tests.builders.store import add_users
from tests.builders.web import login, make_app
from worklist.db.engine import Database


def test_models_list_and_status(sqlite_db: Database, tmp_path: Path) -> None:
    tokens = add_users(sqlite_db)
    models_dir = tmp_path / "models"
    card = card_from_dict(card_dict("chest", "1.0", sha256="ab" * 32, status="enabled"))
    (models_dir / "chest" / "1.0").mkdir(parents=True)
    dump_card(card, models_dir / "chest" / "1.0" / CARD_FILE)
    settings = ModelsSettings(models_dir=models_dir)
    with make_app(sqlite_db, tmp_path) as (app, _), TestClient(app) as client:
        ml = {"Authorization": f"Bearer {tokens['ml_engineer']}"}
        listed = client.get("/api/v1/admin/models", headers=ml).json()
        assert [(m["ref"], m["status"], m["sha256"]) for m in listed] == [
            ("chest@1.0", "enabled", "ab" * 32)
        ]
        resp = client.post(
            "/api/v1/admin/models/chest/status", headers=ml, json={"status": "shadow"}
        )
        assert resp.status_code == 200
        assert ModelRegistry(settings).get("chest").status == "shadow"
        bad = client.post("/api/v1/admin/models/chest/status", headers=ml, json={"status": "on"})
        assert bad.status_code == 422
        missing = client.post(
            "/api/v1/admin/models/nope/status", headers=ml, json={"status": "disabled"}
        )
        assert missing.status_code == 404
        # The page: the admin disables it with a form.
        csrf = login(client, "admin")
        page = client.get("/admin/models")
        assert "chest" in page.text and "shadow" in page.text
        assert re.search(r'action="/admin/models/chest%401.0/status"', page.text)
        done = client.post(
            "/admin/models/chest@1.0/status",
            data={"status": "disabled", "csrf_token": csrf},
            follow_redirects=False,
        )
        assert done.status_code == 303 and "disabled" in done.headers["location"]
        assert ModelRegistry(settings).get("chest").status == "disabled"
    with sqlite_db.read() as session:
        from sqlalchemy import select

        from worklist.db.schema import Event

        changes = [
            (e.actor, e.details["status"])
            for e in session.scalars(select(Event).where(Event.action == "model.status"))
        ]
    assert changes == [("ml_engineer", "shadow"), ("admin", "disabled")]
