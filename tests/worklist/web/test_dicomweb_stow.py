"""STOW-RS against a live server: status codes, durable ingest, triage queueing, who may store."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pydicom
import pytest
import requests
from fastapi.testclient import TestClient
from pydicom.uid import generate_uid
from sqlalchemy import select

from models.settings import ModelsSettings
from tests.builders.audit import audit_events
from tests.builders.dicomweb import client, encode_multipart, encoded, make_instances
from tests.builders.store import add_users
from tests.builders.web import live_server, login, make_app
from worklist.db.engine import Database
from worklist.db.schema import Association, Instance, Job, Study
from worklist.settings import WorklistSettings
from worklist.web.app import create_app

FAILED = "00081198"
REFERENCED = "00081199"
REASON = "00081197"
WARNING = "00081196"


class Server:
    """A live app, its store, its archive and a token per role."""

    def __init__(self, url: str, tokens: dict[str, str], db: Database, archive: Path) -> None:
        self.url = url
        self.tokens = tokens
        self.db = db
        self.archive = archive

    def post(
        self, parts: list[bytes], *, study: str = "", who: str = "admin", **kwargs: Any
    ) -> requests.Response:
        """POST parts as a STOW-RS request (``kwargs`` may replace the Content-Type)."""
        body, content_type = encode_multipart(parts)
        headers = {"Content-Type": kwargs.get("content_type", content_type)}
        if who != "anonymous":
            headers["Authorization"] = f"Bearer {self.tokens[who]}"
        path = f"/dicom-web/studies/{study}" if study else "/dicom-web/studies"
        return requests.post(self.url + path, data=body, headers=headers, timeout=30)


@pytest.fixture
def server(db: Database, tmp_path: Path) -> Iterator[Server]:
    tokens = add_users(db)
    with make_app(db, tmp_path) as (app, settings), live_server(app) as url:
        yield Server(url, tokens, db, settings.effective_archive_dir)
        app.state.audit.flush()


def _stored_uids(db: Database) -> set[str]:
    with db.read() as session:
        return set(session.scalars(select(Instance.sop_instance_uid)))


def test_a_valid_study_is_stored_completed_and_queued_for_triage(server: Server) -> None:
    instances = make_instances(3)
    result = client(server.url, server.tokens["admin"]).store_instances(instances)
    assert len(result.ReferencedSOPSequence) == 3
    assert "FailedSOPSequence" not in result
    assert _stored_uids(server.db) == {d.SOPInstanceUID for d in instances}
    study_uid = instances[0].StudyInstanceUID
    with server.db.read() as session:
        study = session.scalars(select(Study).where(Study.study_instance_uid == study_uid)).one()
        assert (study.state, study.instance_count, study.site) == ("queued", 3, "DICOMWEB")
        jobs = list(session.scalars(select(Job).where(Job.study_id == study.id)))
        assert [(j.kind, j.state) for j in jobs] == [("triage", "queued")]
        (assoc,) = session.scalars(select(Association))
        assert (assoc.called_aet, assoc.outcome) == ("DICOMWEB", "released")
        paths = list(session.scalars(select(Instance.path)))
    for path in paths:  # on disk before the answer
        assert (server.archive / path).is_file()
    (complete,) = [e for e in _events(server, "study.complete")]
    assert complete.actor == "stow-rs"


def _events(server: Server, action: str) -> list[Any]:
    return audit_events(server.db, action)


def test_status_200_has_the_study_retrieve_url(server: Server) -> None:
    instances = make_instances(2)
    resp = server.post([encoded(d) for d in instances])
    assert resp.status_code == 200
    assert resp.headers["content-type"] == "application/dicom+json"
    body = pydicom.Dataset.from_json(resp.json())
    assert body.RetrieveURL.endswith(f"/dicom-web/studies/{instances[0].StudyInstanceUID}")


def test_a_mixed_request_gives_202_with_the_failures(server: Server) -> None:
    good = make_instances(2)
    resp = server.post([encoded(good[0]), b"not a DICOM file", encoded(good[1])])
    assert resp.status_code == 202
    body = resp.json()
    assert len(body[REFERENCED]["Value"]) == 2
    (failed,) = body[FAILED]["Value"]
    assert failed[REASON]["Value"] == [0xC000]
    assert _stored_uids(server.db) == {d.SOPInstanceUID for d in good}
    (refused,) = _events(server, "instance.refused")
    assert refused.details["status"] == 0xC000


def test_a_changed_duplicate_is_kept_first_with_a_warning(server: Server) -> None:
    (first,) = make_instances(1)
    assert server.post([encoded(first)]).status_code == 200
    changed = first.copy()
    changed.file_meta = first.file_meta
    changed.PatientName = "OTHER^NAME"
    resp = server.post([encoded(changed)])
    assert resp.status_code == 202
    (item,) = resp.json()[REFERENCED]["Value"]
    assert item[WARNING]["Value"] == [0xB000]


def test_a_study_uid_mismatch_gives_409_and_stores_nothing(server: Server) -> None:
    instances = make_instances(2)
    other = generate_uid()
    resp = server.post([encoded(d) for d in instances], study=other)
    assert resp.status_code == 409
    failures = resp.json()[FAILED]["Value"]
    assert [f[REASON]["Value"] for f in failures] == [[0xA900], [0xA900]]
    assert _stored_uids(server.db) == set()
    with pytest.raises(requests.HTTPError) as raised:
        client(server.url, server.tokens["admin"]).store_instances(instances, other)
    assert raised.value.response is not None
    assert raised.value.response.status_code == 409
    right = server.post([encoded(d) for d in instances], study=instances[0].StudyInstanceUID)
    assert right.status_code == 200


@pytest.mark.parametrize(
    "content_type",
    [
        "application/json",
        "application/dicom",
        'multipart/related; type="application/dicom+json"; boundary=test-boundary-42',
    ],
)
def test_a_bad_content_type_gives_415(server: Server, content_type: str) -> None:
    resp = server.post([encoded(make_instances(1)[0])], content_type=content_type)
    assert resp.status_code == 415
    assert _stored_uids(server.db) == set()


@pytest.mark.parametrize(
    ("who", "code"),
    [("anonymous", 401), ("radiologist", 403), ("ml_engineer", 403), ("radiographer", 200)],
)
def test_who_may_store(server: Server, who: str, code: int) -> None:
    instances = make_instances(1)
    resp = server.post([encoded(instances[0])], who=who)
    assert resp.status_code == code
    assert bool(_stored_uids(server.db)) == (code == 200)
    if who == "radiographer":
        with server.db.read() as session:
            assert session.scalars(select(Study.site)).one() == "CDC1"  # the user's site
        for _ in range(50):
            if _events(server, "dicomweb.store"):
                break
            time.sleep(0.1)
        (event,) = _events(server, "dicomweb.store")
        assert (event.actor, event.details["stored"]) == ("radiographer", 1)


def test_a_session_needs_the_csrf_header_to_store(db: Database, tmp_path: Path) -> None:
    add_users(db)
    body, content_type = encode_multipart([encoded(make_instances(1)[0])])
    with make_app(db, tmp_path) as (app, _), TestClient(app) as http:
        csrf = login(http, "radiographer")
        headers = {"Content-Type": content_type}
        assert http.post("/dicom-web/studies", content=body, headers=headers).status_code == 403
        headers["X-CSRF-Token"] = csrf
        assert http.post("/dicom-web/studies", content=body, headers=headers).status_code == 200


def test_cors_is_off_by_default_and_scoped_to_dicomweb(db: Database, tmp_path: Path) -> None:
    origin = "https://viewer.example"
    preflight = {"Origin": origin, "Access-Control-Request-Method": "GET"}
    with make_app(db, tmp_path) as (app, _), TestClient(app) as http:
        resp = http.options("/dicom-web/studies", headers=preflight)
        assert "access-control-allow-origin" not in resp.headers
    settings = WorklistSettings(
        data_dir=tmp_path / "data",
        database_url=db.url,
        archive_dir=tmp_path / "archive",
        web_cors_origins=[origin],
    )
    app = create_app(settings, ModelsSettings(models_dir=tmp_path / "models"), db=db)
    try:
        with TestClient(app) as http:
            resp = http.options("/dicom-web/studies", headers=preflight)
            assert resp.headers["access-control-allow-origin"] == origin
            api = http.get("/api/v1/health", headers={"Origin": origin})
            assert "access-control-allow-origin" not in api.headers
    finally:
        app.state.audit.close()
