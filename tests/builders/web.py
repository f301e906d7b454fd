"""Seeding the store for web tests: synthetic DICOM, studies with findings and heatmaps, users."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydicom.uid import generate_uid

from models.settings import ModelsSettings
from tests.dicom_factory import CR_STORAGE, dicom_dataset, write_dicom_file
from tests.support import free_port, wait_for_port
from worklist.accounts.tokens import create_token
from worklist.accounts.users import add_user
from worklist.db.engine import Database
from worklist.db.schema import Finding, Instance, Series, Study
from worklist.domain import Role
from worklist.settings import WorklistSettings
from worklist.web.app import create_app

PASSWORD = "correct-horse"
ROLES = ("radiographer", "radiologist", "admin", "ml_engineer")


def write_dicom(path: Path, *, study_uid: str, sop_uid: str, size: int = 64) -> None:
    """Write a small synthetic 16-bit CR image (a gradient with a bright disc)."""
    yy, xx = np.mgrid[0:size, 0:size]
    img = (xx * 4095 // (size - 1)).astype(np.uint16)
    img[(yy - size // 2) ** 2 + (xx - size // 2) ** 2 < (size // 5) ** 2] = 3500
    ds = dicom_dataset(
        img,
        modality="CR",
        sop_uid=sop_uid,
        study_uid=study_uid,
        patient_name="SYNTHETIC^PHANTOM",
        WindowCenter=2048,
        WindowWidth=4096,
    )
    write_dicom_file(ds, path)


def seed_study(
    db: Database,
    archive: Path,
    *,
    priority: str = "P3",
    clinical_priority: str = "P3",
    due_in_min: float | None = 60.0,
    received_min_ago: float = 10.0,
    crossed: bool | None = None,
    heatmap: bool = False,
    site: str = "CDC1",
    modality: str = "CR",
    name: str = "TEST^PATIENT",
    with_image: bool = True,
) -> str:
    """Add a triaged study (with a DICOM file, optionally a finding and heatmap); return its UID.

    ``crossed=None`` adds no finding; True/False adds one finding crossed or not.
    """
    now = datetime.now(UTC)
    uid = generate_uid()
    sop = generate_uid()
    rel = f"{uid}/{sop}.dcm"
    if with_image:
        write_dicom(archive / rel, study_uid=uid, sop_uid=sop)
    with db.write() as session:
        study = Study(
            study_instance_uid=uid,
            patient_id="PID" + uid[-6:],
            patient_name=name,
            accession_number="ACC" + uid[-5:],
            study_description="Chest PA",
            modalities=modality,
            site=site,
            clinical_priority=clinical_priority,
            priority=priority,
            priority_explanation=[{"text": f"priority {priority} by test"}],
            state="triaged",
            ai_status="done" if crossed is not None else "not_available",
            ai_reason="" if crossed is not None else "no model applies",
            instance_count=1 if with_image else 0,
            first_received_at=now - timedelta(minutes=received_min_ago),
            last_received_at=now - timedelta(minutes=received_min_ago),
            due_at=now + timedelta(minutes=due_in_min) if due_in_min is not None else None,
        )
        session.add(study)
        session.flush()
        if with_image:
            series = Series(
                study_id=study.id, series_instance_uid=generate_uid(), modality=modality
            )
            session.add(series)
            session.flush()
            session.add(
                Instance(
                    study_id=study.id,
                    series_id=series.id,
                    sop_instance_uid=sop,
                    sop_class_uid=CR_STORAGE,
                    path=rel,
                    size_bytes=(archive / rel).stat().st_size,
                    sha256="0" * 64,
                )
            )
        if crossed is not None:
            heat_rel = ""
            if heatmap:
                heat_rel = f"heatmaps/{uid}.npy"
                (archive / "heatmaps").mkdir(parents=True, exist_ok=True)
                yy, xx = np.mgrid[0:16, 0:16]
                heat = np.exp(-((yy - 8.0) ** 2 + (xx - 8.0) ** 2) / 20.0).astype(np.float32)
                np.save(archive / heat_rel, heat)
            session.add(
                Finding(
                    study_id=study.id,
                    sop_instance_uid=sop,
                    model_name="demo-cxr",
                    model_version="1.0.0",
                    model_sha256="ab" * 32,
                    label="pneumothorax",
                    concept_meaning="Pneumothorax",
                    probability=0.93 if crossed else 0.12,
                    threshold=0.5,
                    crossed=crossed,
                    category="P1",
                    heatmap_path=heat_rel,
                )
            )
    return uid


@contextmanager
def make_app(db: Database, tmp_path: Path) -> Iterator[tuple[FastAPI, WorklistSettings]]:
    """Create the app on ``db`` with its data and archive in ``tmp_path``."""
    settings = WorklistSettings(
        data_dir=tmp_path / "data",
        database_url=db.url,
        archive_dir=tmp_path / "archive",
        web_poll_s=1.0,
    )
    app = create_app(settings, ModelsSettings(models_dir=tmp_path / "models"), db=db)
    try:
        yield app, settings
    finally:
        app.state.audit.close()


def add_users(db: Database, site: str = "CDC1") -> dict[str, str]:
    """Add one user per role (named after it) and return an API token per role."""
    tokens: dict[str, str] = {}
    with db.write() as session:
        for role in ROLES:
            add_user(
                session, role, PASSWORD, Role(role), site=site if role == "radiographer" else ""
            )
            tokens[role] = create_token(session, role)
    return tokens


def csrf_of(html: str) -> str:
    """Return the CSRF token embedded in a page."""
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "no CSRF token on the page"
    return found.group(1)


def login(client: TestClient, username: str, password: str = PASSWORD) -> str:
    """Log a test client in through the form; return the session's CSRF token."""
    token = csrf_of(client.get("/login").text)
    resp = client.post(
        "/login",
        data={"username": username, "password": password, "csrf_token": token},
        follow_redirects=False,
    )
    assert resp.status_code == 303, resp.text
    page = client.get(resp.headers["location"])
    return csrf_of(page.text)


@contextmanager
def live_server(app: FastAPI) -> Iterator[str]:
    """Serve ``app`` with uvicorn on a free loopback port in a thread; yield its base URL."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        wait_for_port(port)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
