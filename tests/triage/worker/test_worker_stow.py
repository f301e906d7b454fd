"""A study stored with STOW-RS is queued and triaged like a DICOM arrival."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import select

from tests.builders.dicomweb import encode_multipart, encoded, make_instances
from tests.builders.store import add_users
from tests.builders.web import make_app
from tests.builders.worker import WorkerFactory, drain
from worklist.db.engine import Database
from worklist.db.schema import Study


def test_a_stow_rs_study_is_triaged(
    db: Database, tmp_path: Path, archive: Path, make_worker: WorkerFactory
) -> None:
    tokens = add_users(db)
    instances = make_instances(2)
    body, content_type = encode_multipart([encoded(d) for d in instances])
    headers = {"Content-Type": content_type, "Authorization": f"Bearer {tokens['admin']}"}
    with make_app(db, tmp_path) as (app, settings), TestClient(app) as http:
        assert settings.effective_archive_dir == archive
        assert http.post("/dicom-web/studies", content=body, headers=headers).status_code == 200
    assert drain(make_worker(db, [])) == 1  # no model applies: triaged, "AI not available"
    with db.read() as session:
        study = session.scalars(
            select(Study).where(Study.study_instance_uid == instances[0].StudyInstanceUID)
        ).one()
        assert (study.state, study.ai_status) == ("triaged", "not_available")
        assert study.priority == "P3"
