"""A stored hostile image cannot take the web process down: every endpoint that decodes it (key
image, DICOMweb rendered, thumbnail, frames, metadata) answers 422 naming the limit, and the
process's resident memory stays within a loose bound while they do.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.builders.dicom import encode, make_dataset
from tests.builders.hostile import deflate_bomb, huge_header, overwrite_instance
from tests.builders.store import add_users, seed_study
from tests.builders.web import login, make_app
from worklist.db.engine import Database

MIB = 1024 * 1024
RSS_BOUND = 200 * MIB
"""How much the process may grow while the hostile image is asked for (loose)."""
PAGE = 4096


def _rss() -> int:
    return int(Path("/proc/self/statm").read_text().split()[1]) * PAGE


@contextmanager
def peak_rss_growth() -> Iterator[Callable[[], int]]:
    """Sample the resident memory every 5 ms; yield a function giving the peak growth so far."""
    base = _rss()
    peak = [base]
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(0.005):
            peak[0] = max(peak[0], _rss())

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        yield lambda: peak[0] - base
    finally:
        stop.set()
        thread.join()


def _urls(uids: list[str]) -> dict[str, str]:
    study, series, sop = uids
    instance = f"/dicom-web/studies/{study}/series/{series}/instances/{sop}"
    return {
        "key image": f"/studies/{study}/key-image.png",
        "rendered": instance + "/rendered",
        "thumbnail": instance + "/thumbnail",
        "frames": instance + "/frames/1",
        "metadata": instance + "/metadata",
    }


@pytest.mark.parametrize(
    ("hostile", "endpoints"),
    [
        # A deflated dataset of 3 MiB that inflates to 1 GiB: even reading its header inflates it.
        ("deflate bomb", ("key image", "rendered", "thumbnail", "frames", "metadata")),
        # A header that announces 60000 x 60000 pixels (7.2 GB decoded).
        ("huge header", ("key image", "rendered", "thumbnail", "frames")),
    ],
)
def test_a_stored_hostile_image_is_refused_without_growing_the_process(
    sqlite_db: Database, tmp_path: Path, hostile: str, endpoints: tuple[str, ...]
) -> None:
    add_users(sqlite_db)
    archive = tmp_path / "archive"
    uid = seed_study(sqlite_db, archive, crossed=True)
    data = deflate_bomb(1024 * MIB)[1] if hostile == "deflate bomb" else huge_header(60000, 60000)
    urls = _urls(overwrite_instance(sqlite_db, archive, uid, data))
    with make_app(sqlite_db, tmp_path) as (app, _), TestClient(app) as client:
        login(client, "radiologist")
        with peak_rss_growth() as growth:
            for name in endpoints:
                resp = client.get(urls[name], headers={"Accept": "*/*"})
                assert resp.status_code == 422, (name, resp.status_code, resp.text[:300])
                assert "too large to decode" in resp.text, (name, resp.text[:300])
            # A search that reads the header for includefield lists it without inflating it.
            found = client.get(f"/dicom-web/studies/{uid}/instances?includefield=all")
            assert found.status_code == 200, found.text[:300]
            assert growth() < RSS_BOUND, f"the process grew {growth() / MIB:.0f} MiB"
        # An ordinary image still renders.
        other = seed_study(sqlite_db, archive, crossed=True)
        assert client.get(f"/studies/{other}/key-image.png").status_code == 200
        app.state.audit.flush()


def test_the_limits_are_settings(sqlite_db: Database, tmp_path: Path) -> None:
    add_users(sqlite_db)
    uid = seed_study(sqlite_db, tmp_path / "archive", crossed=True)  # a 64 x 64 image
    with (
        make_app(sqlite_db, tmp_path, web_max_image_pixels=4000) as (app, _),
        TestClient(app) as client,
    ):
        login(client, "radiologist")
        resp = client.get(f"/studies/{uid}/key-image.png")
        assert resp.status_code == 422
        assert "exceed 4000 per frame" in resp.text
        app.state.audit.flush()
    with (
        make_app(sqlite_db, tmp_path, web_max_decoded_bytes=8000) as (app, _),
        TestClient(app) as client,
    ):
        login(client, "radiologist")
        resp = client.get(f"/studies/{uid}/key-image.png")
        assert resp.status_code == 422
        assert "at most 8000" in resp.text
        app.state.audit.flush()


def test_a_frame_asked_for_many_times_counts_each_time(sqlite_db: Database, tmp_path: Path) -> None:
    tokens = add_users(sqlite_db)
    archive = tmp_path / "archive"
    uid = seed_study(sqlite_db, archive, crossed=True)
    image = make_dataset(study_uid=uid, size=64)  # 64 x 64 x 16 bits: 8 KiB a frame
    urls = _urls(overwrite_instance(sqlite_db, archive, uid, encode(image)))
    with (
        make_app(sqlite_db, tmp_path, web_max_decoded_bytes=40_000) as (app, _),
        TestClient(app) as client,
    ):
        headers = {"Authorization": f"Bearer {tokens['radiologist']}"}
        assert client.get(urls["frames"], headers=headers).status_code == 200
        many = urls["frames"].replace("/frames/1", "/frames/" + ",".join(["1"] * 5))
        resp = client.get(many, headers=headers)
        assert resp.status_code == 422, resp.text[:300]
        assert "5 frame(s) decode to 40960 bytes" in resp.json()["detail"]
        app.state.audit.flush()
