"""Export to a real PACS: DCMTK storescu -> our listener -> triage -> C-STORE -> Orthanc, and the
faults: a peer down then up, a peer that refuses everything, a worker killed mid-export."""

from __future__ import annotations

import itertools
import os
import signal
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydicom import dcmread
from pydicom.uid import Comprehensive3DSRStorage, SecondaryCaptureImageStorage
from sqlalchemy import select

from models.card import ModelStatus
from models.phantoms import generate_phantom
from tests.builders.audit import audit_events
from tests.builders.gateway import GatewayFactory
from tests.builders.onnx import write_worker_model
from tests.builders.orthanc import (
    ORTHANC_AET,
    StallingSCP,
    export_in_subprocess,
    orthanc,
    refusing_scp,
)
from tests.builders.outputs import output_rows, send_phantoms
from tests.builders.peers import storescu, wait_for
from tests.builders.store import add_users
from tests.builders.web import login, make_app
from tests.builders.worker import drain, load, worker_factory
from triage.exports import ExportDestination, exporter
from triage.exports.exporter import Exporter
from triage.worker import Worker
from worklist import exports as store_exports
from worklist.db.engine import Database
from worklist.db.schema import ExportedInstance, Instance, Job, Study
from worklist.domain import JobKind, JobState

pytestmark = [pytest.mark.dcmtk, pytest.mark.slow, pytest.mark.orthanc]

ENABLED = ModelStatus.ENABLED
SR, SC = Comprehensive3DSRStorage, SecondaryCaptureImageStorage


def _destination(port: int, **extra: object) -> ExportDestination:
    fields: dict[str, object] = {
        "name": "pacs",
        "ae_title": ORTHANC_AET,
        "host": "127.0.0.1",
        "port": port,
        "first_delay_s": 0.4,
        "backoff": 2.0,
        "timeout_s": 5.0,
        **extra,
    }
    return ExportDestination.model_validate(fields)


def _export_jobs(db: Database) -> list[Job]:
    with db.read() as s:
        rows = list(s.scalars(select(Job).where(Job.kind == JobKind.EXPORT).order_by(Job.id)))
        s.expunge_all()
        return rows


def _study_uids(db: Database, study_uid: str) -> set[str]:
    with db.read() as s:
        return set(
            s.scalars(
                select(Instance.sop_instance_uid)
                .join(Study, Instance.study_id == Study.id)
                .where(Study.study_instance_uid == study_uid)
            )
        )


def _sent_rows(db: Database) -> list[ExportedInstance]:
    with db.read() as s:
        rows = list(s.scalars(select(ExportedInstance).order_by(ExportedInstance.id)))
        s.expunge_all()
        return rows


def _worker(db: Database, archive: Path, models_dir: Path, *dests: ExportDestination) -> Worker:
    model = load(write_worker_model(models_dir, "chest", n_labels=2))
    return worker_factory(archive)(db, [(model, ENABLED)], exports=dests, lease_s=1.0)


def _triaged(db: Database, worker: Worker) -> int:
    drain(worker)
    with db.read() as s:
        return len(s.scalars(select(Study).where(Study.state == "triaged")).all())


def test_storescu_study_is_triaged_and_its_outputs_arrive_in_orthanc(
    gateway_factory: GatewayFactory, tmp_path: Path, models_dir: Path
) -> None:
    gw, db, wl = gateway_factory()
    folder = tmp_path / "in"
    folder.mkdir()
    files = []
    for seed in (41, 42):
        ds = generate_phantom(seed, ["pneumothorax"], size=128).dataset
        files.append(folder / f"{seed}.dcm")
        ds.save_as(files[-1], enforce_file_format=True)
    rc, responses = storescu(gw.port, files, "-aet", "CDC_A")
    assert rc == 0 and list(responses.values()) == ["Success"] * 2
    with orthanc(tmp_path / "pacs") as pacs:
        with_originals = _destination(pacs.dicom_port, send=["sr", "key_image", "originals"])
        worker = _worker(db, wl.effective_archive_dir, models_dir, with_originals)
        assert wait_for(lambda: _triaged(db, worker) == 2, timeout=30)
        assert wait_for(
            lambda: [j.state for j in _export_jobs(db) if drain(worker) >= 0] == ["done"] * 2,
            timeout=30,
        ), _export_jobs(db)
        expected: set[str] = set()
        for path in files:
            study_uid = str(dcmread(path, stop_before_pixels=True).StudyInstanceUID)
            uids = _study_uids(db, study_uid)
            (sr,), (sc,) = output_rows(db, study_uid, SR), output_rows(db, study_uid, SC)
            assert {sr[0].sop_instance_uid, sc[0].sop_instance_uid} < uids
            assert len(uids) == 3  # the image, the SR, the key image
            expected |= uids
        assert sorted(pacs.sop_instance_uids()) == sorted(expected)
        assert pacs.new_instance_changes() == len(expected)
    assert len(_sent_rows(db)) == len(expected)


def _archive(tmp_path: Path) -> Path:
    path = tmp_path / "archive"
    path.mkdir()
    return path


def _attempts_until(db: Database, worker: Worker, attempts: int, timeout: float = 15.0) -> Job:
    """Run the worker's exports until the only export job has made ``attempts`` attempts."""

    def reached() -> bool:
        worker.run_exports()
        (job,) = _export_jobs(db)
        return job.attempts >= attempts and job.state != JobState.RUNNING

    assert wait_for(reached, timeout), _export_jobs(db)
    (job,) = _export_jobs(db)
    return job


def test_peer_down_then_up_retries_on_schedule_and_sends_once(
    sqlite_db: Database, tmp_path: Path, models_dir: Path
) -> None:
    db, archive = sqlite_db, _archive(tmp_path)
    (image,) = send_phantoms(db, archive, [51])
    study_uid = str(image.StudyInstanceUID)
    with orthanc(tmp_path / "pacs", start=False) as pacs:  # its DICOM port is closed
        worker = _worker(db, archive, models_dir, _destination(pacs.dicom_port))
        drain(worker)  # triage, outputs, then the first export attempt: refused
        (job,) = _export_jobs(db)
        assert (job.state, job.attempts) == (JobState.QUEUED, 1)
        with db.read() as s:
            priority = s.scalars(select(Study.priority)).one()
        assert job.priority == int(priority[1])  # claimed by the study's priority, P1 first
        assert worker.run_exports() == 0  # the retry is not due yet
        job = _attempts_until(db, worker, 2)
        assert (job.state, job.attempts) == (JobState.QUEUED, 2)
        pacs.start()
        job = _attempts_until(db, worker, 3)
        assert (job.state, job.attempts) == (JobState.DONE, 3)
        assert worker.run_exports() == 0
        outputs = {row.sop_instance_uid for row, _ in output_rows(db, study_uid, SR)} | {
            row.sop_instance_uid for row, _ in output_rows(db, study_uid, SC)
        }
        assert len(outputs) == 2 and sorted(pacs.sop_instance_uids()) == sorted(outputs)
        assert pacs.new_instance_changes() == 2  # each sent once
    events = audit_events(db, "export.attempt")
    assert [e.details["state"] for e in events] == ["queued", "queued", "done"]
    assert [e.details["retry_in_s"] for e in events] == [0.4, 0.8, None]  # exponential
    assert "connection refused" in events[0].details["errors"][0]
    for before, after in itertools.pairwise(events):  # the retry began once it was due
        started = [datetime.fromisoformat(e.details["started_at"]) for e in (before, after)]
        waited = (started[1] - started[0]).total_seconds()
        assert waited >= before.details["retry_in_s"], waited
    assert [(r.sop_instance_uid in outputs, r.attempt) for r in _sent_rows(db)] == [(True, 3)] * 2


def test_refusing_peer_ends_exhausted_shows_to_admins_and_can_be_queued_again(
    db: Database, tmp_path: Path, models_dir: Path
) -> None:
    archive = _archive(tmp_path)
    (image,) = send_phantoms(db, archive, [52])
    with refusing_scp(0xA700, "REFUSER") as (port, offered):
        refuser = _destination(
            port, name="refuser", ae_title="REFUSER", attempts=3, first_delay_s=0.1
        )
        worker = _worker(db, archive, models_dir, refuser)
        drain(worker)
        job = _attempts_until(db, worker, 3)
        assert worker.run_exports() == 0  # nothing left to try
    assert (job.state, job.attempts) == (JobState.FAILED, 3)
    assert "0xA700" in job.last_error
    assert len(offered) == 6 and len(set(offered)) == 2  # the SR and key image, each attempt
    assert [e.details["state"] for e in audit_events(db, "export.attempt")] == [
        "queued",
        "queued",
        "failed",
    ]
    (exhausted,) = audit_events(db, "export.exhausted")
    assert exhausted.study_instance_uid == str(image.StudyInstanceUID)
    assert _sent_rows(db) == []

    tokens = add_users(db)
    admin = {"Authorization": f"Bearer {tokens['admin']}"}
    with make_app(db, tmp_path) as (app, _), TestClient(app) as client:
        (listed,) = client.get("/api/v1/admin/exports", headers=admin).json()
        assert listed["job_id"] == job.id and listed["destination"] == "refuser"
        assert (listed["state"], listed["attempts"]) == ("failed", 3)
        assert listed["study_instance_uid"] == str(image.StudyInstanceUID)
        reader = {"Authorization": f"Bearer {tokens['radiologist']}"}
        assert client.get("/api/v1/admin/exports", headers=reader).status_code == 403
        login(client, "admin")
        page = client.get("/admin/exports")
        assert page.status_code == 200 and "refuser" in page.text and "0xA700" in page.text
        again = client.post(f"/api/v1/admin/exports/{job.id}/requeue", headers=admin)
        assert again.status_code == 200 and again.json()["state"] == "queued"
        assert (
            client.post(f"/api/v1/admin/exports/{job.id}/requeue", headers=admin).status_code == 409
        )
        assert client.post("/api/v1/admin/exports/999999/requeue", headers=admin).status_code == 404
        assert client.get("/api/v1/admin/exports", headers=admin).json() == []
        app.state.audit.flush()
    (requeued,) = _export_jobs(db)
    assert (requeued.state, requeued.attempts) == (JobState.QUEUED, 0)
    assert [e.actor for e in audit_events(db, "export.requeue")] == ["admin"]


class _Killed(BaseException):
    """Stands for the worker process dying (not an error the worker could catch)."""


def test_worker_killed_mid_export_completes_once_after_the_lease_expires(
    sqlite_db: Database, tmp_path: Path, models_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db, archive = sqlite_db, _archive(tmp_path)
    (image,) = send_phantoms(db, archive, [53])
    real_record = store_exports.record_sent

    def record_then_die(*args: Any, **kwargs: Any) -> bool:
        real_record(*args, **kwargs)
        raise _Killed  # dies right after the first acknowledged instance was recorded

    with orthanc(tmp_path / "pacs") as pacs:
        dest = _destination(pacs.dicom_port)
        dying = _worker(db, archive, models_dir, dest)
        monkeypatch.setattr(exporter, "record_sent", record_then_die)
        with pytest.raises(_Killed):
            drain(dying)
        monkeypatch.undo()
        (job,) = _export_jobs(db)
        assert (job.state, job.attempts, job.lease_owner) == (JobState.RUNNING, 1, "test-worker")
        assert len(_sent_rows(db)) == 1

        successor = worker_factory(archive)(db, [], exports=(dest,), owner="successor", lease_s=1.0)
        assert successor.run_exports() == 0  # the dead worker's lease still holds
        job = _attempts_until(db, successor, 2)
        assert (job.state, job.attempts) == (JobState.DONE, 2)
        study_uid = str(image.StudyInstanceUID)
        outputs = {row.sop_instance_uid for row, _ in output_rows(db, study_uid, SR)} | {
            row.sop_instance_uid for row, _ in output_rows(db, study_uid, SC)
        }
        assert sorted(pacs.sop_instance_uids()) == sorted(outputs)
        assert pacs.new_instance_changes() == 2
    rows = _sent_rows(db)
    assert sorted(r.sop_instance_uid for r in rows) == sorted(outputs)
    assert [r.attempt for r in rows] == [1, 2]
    (attempt,) = audit_events(db, "export.attempt")  # the dead worker recorded nothing
    assert (attempt.details["sent"], attempt.details["already_sent"]) == (1, 1)
    assert attempt.actor == "successor"


def test_worker_process_sigkilled_mid_export_completes_once_after_the_lease_expires(
    tmp_path: Path, models_dir: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'triage.db'}"
    db, archive = Database(url), _archive(tmp_path)
    peer = StallingSCP(acknowledge=1)
    try:
        (image,) = send_phantoms(db, archive, [54])
        dest = _destination(peer.port, ae_title="STALLER", timeout_s=30.0)
        drain(_worker(db, archive, models_dir))  # triage and outputs, no exports
        with db.write() as s:
            study_id = s.scalars(select(Study.id)).one()
        Exporter(db, archive, [dest], owner="enqueuer").enqueue_for(study_id)
        doomed = export_in_subprocess(
            url, archive, dest.model_dump_json(), "doomed", 1.0, tmp_path / "doomed.log"
        )
        try:
            # It sent one instance (acknowledged and recorded) and waits on the second.
            assert wait_for(lambda: len(peer.offered) == 2 and len(_sent_rows(db)) == 1, 60), (
                tmp_path / "doomed.log"
            ).read_text()
        finally:
            os.kill(doomed.pid, signal.SIGKILL)
            doomed.wait(timeout=10)
        peer.release()
        (job,) = _export_jobs(db)
        assert (job.state, job.attempts, job.lease_owner) == (JobState.RUNNING, 1, "doomed")

        successor = worker_factory(archive)(db, [], exports=(dest,), owner="successor", lease_s=1.0)
        assert successor.run_exports() == 0  # the dead worker's lease still holds
        job = _attempts_until(db, successor, 2)
        assert (job.state, job.attempts) == (JobState.DONE, 2)
        study_uid = str(image.StudyInstanceUID)
        outputs = {row.sop_instance_uid for row, _ in output_rows(db, study_uid, SR)} | {
            row.sop_instance_uid for row, _ in output_rows(db, study_uid, SC)
        }
        assert sorted(peer.acknowledged) == sorted(outputs)  # each acknowledged exactly once
        assert peer.offered[0] not in peer.offered[1:]  # the acknowledged one was not resent
        rows = _sent_rows(db)
        assert [r.attempt for r in rows] == [1, 2]
        assert sorted(r.sop_instance_uid for r in rows) == sorted(outputs)
    finally:
        peer.stop()
        db.dispose()
