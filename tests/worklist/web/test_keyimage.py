"""The key image renders as PNG, with the heatmap overlaid when the top crossed finding has one."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from fastapi.testclient import TestClient
from PIL import Image

from tests.builders.store import add_users, seed_study
from tests.builders.web import login, make_app
from worklist.db.engine import Database


def test_key_image_with_and_without_overlay(sqlite_db: Database, tmp_path: Path) -> None:
    add_users(sqlite_db)
    archive = tmp_path / "archive"
    with_heat = seed_study(sqlite_db, archive, crossed=True, heatmap=True)
    plain = seed_study(sqlite_db, archive, crossed=True, heatmap=False)
    no_image = seed_study(sqlite_db, archive, with_image=False)
    with make_app(sqlite_db, tmp_path) as (app, _), TestClient(app) as client:
        login(client, "radiologist")
        images = {}
        for uid in (with_heat, plain):
            resp = client.get(f"/studies/{uid}/key-image.png")
            assert resp.status_code == 200
            assert resp.headers["content-type"] == "image/png"
            assert resp.content[:8] == b"\x89PNG\r\n\x1a\n"
            images[uid] = np.asarray(
                Image.open(io.BytesIO(resp.content)).convert("RGB"), dtype=np.int16
            )
        assert client.get(f"/studies/{no_image}/key-image.png").status_code == 404
        app.state.audit.flush()
    over, base = images[with_heat], images[plain]
    assert over.shape == base.shape == (64, 64, 3)
    # Without an overlay the image is grey; with it the centre turns red/yellow.
    assert np.array_equal(base[..., 0], base[..., 1]) and np.array_equal(base[..., 1], base[..., 2])
    centre, corner = over[32, 32], over[2, 2]
    assert centre[0] - centre[2] > 60  # red dominates where the heatmap is hot
    assert np.array_equal(corner, base[2, 2])  # untouched where the heatmap is cold
    assert np.abs(over - base).sum() > 0
