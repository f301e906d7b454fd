"""How the worker stores its outputs: as instances of the study (rows and archive files), only
for enabled models, with the previous SR as predecessor on a re-triage, behind a setting, and
never at the cost of the triage."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from pathlib import Path

import pydicom
import pytest
from pydicom.uid import Comprehensive3DSRStorage, SecondaryCaptureImageStorage
from sqlalchemy import select

from dicom_gateway.assembler import Assembler
from dicom_gateway.settings import GatewaySettings
from models.card import ModelStatus
from tests.builders.audit import audit_events
from tests.builders.onnx import write_worker_model
from tests.builders.outputs import output_rows, read_sr, send_phantoms
from tests.builders.worker import WorkerFactory, drain, load
from worklist.db.engine import Database
from worklist.db.schema import Instance, Job, Study
from worklist.db.types import utcnow
from worklist.domain import JobKind, JobState, StudyState
from worklist.jobs import enqueue

ENABLED, SHADOW = ModelStatus.ENABLED, ModelStatus.SHADOW
SR, SC = Comprehensive3DSRStorage, SecondaryCaptureImageStorage


def _study(db: Database, study_uid: str) -> Study:
    with db.read() as s:
        row = s.scalars(select(Study).where(Study.study_instance_uid == study_uid)).one()
        s.expunge(row)
        return row


def test_outputs_are_instances_of_the_study(
    db: Database, archive: Path, models_dir: Path, make_worker: WorkerFactory
) -> None:
    model = load(write_worker_model(models_dir, "chest", n_labels=2))
    (image,) = send_phantoms(db, archive, [41])
    study_uid = str(image.StudyInstanceUID)
    assert drain(make_worker(db, [(model, ENABLED)])) == 1

    study = _study(db, study_uid)
    assert study.state == StudyState.TRIAGED and study.instance_count == 3
    assert set(study.modalities.split("\\")) == {"DX", "SR", "OT"}
    for sop_class in (SR, SC):
        ((row, series),) = output_rows(db, study_uid, sop_class)
        assert row.study_id == study.id and series.study_id == study.id
        data = (archive / row.path).read_bytes()
        assert row.sha256 == hashlib.sha256(data).hexdigest() and row.size_bytes == len(data)
        ds = pydicom.dcmread(archive / row.path)
        assert ds.SOPInstanceUID == row.sop_instance_uid and ds.StudyInstanceUID == study_uid
        assert ds.SeriesInstanceUID == series.series_instance_uid
    events = audit_events(db, "outputs.stored")
    assert len(events) == 1 and events[0].study_instance_uid == study_uid
    # The outputs did not reopen the study: nothing for the assembler, no second triage.
    assert Assembler(db, GatewaySettings()).run_once(utcnow() + timedelta(hours=2)) == []
    with db.read() as s:
        assert len(s.scalars(select(Job).where(Job.kind == JobKind.TRIAGE)).all()) == 1


def test_shadow_models_never_produce_outputs(
    sqlite_db: Database, archive: Path, models_dir: Path, make_worker: WorkerFactory
) -> None:
    db = sqlite_db
    live = load(write_worker_model(models_dir, "live", n_labels=2))
    shadow = load(write_worker_model(models_dir, "candidate", n_labels=2))
    first, second = send_phantoms(db, archive, [42, 43])
    assert drain(make_worker(db, [(shadow, SHADOW)])) == 2
    for image in (first, second):
        assert output_rows(db, str(image.StudyInstanceUID), SR) == []
        assert output_rows(db, str(image.StudyInstanceUID), SC) == []
    assert audit_events(db, "outputs.stored") == []

    # Both at once on a re-run: the SR names the enabled model only.
    with db.write() as s:  # as a re-run asked for in the web app
        enqueue(s, JobKind.TRIAGE, study_id=_study(db, str(first.StudyInstanceUID)).id)
    assert drain(make_worker(db, [(live, ENABLED), (shadow, SHADOW)])) == 1
    ((row, _),) = output_rows(db, str(first.StudyInstanceUID), SR)
    _, groups = read_sr(archive / row.path)
    assert {g.algorithm for g in groups} == {("live", "1.0")}
    assert len(output_rows(db, str(first.StudyInstanceUID), SC)) == 1


def test_retriage_makes_a_new_sr_referencing_the_previous_one(
    sqlite_db: Database, archive: Path, models_dir: Path, make_worker: WorkerFactory
) -> None:
    db = sqlite_db
    model = load(write_worker_model(models_dir, "chest", n_labels=2))
    worker = make_worker(db, [(model, ENABLED)])
    (image,) = send_phantoms(db, archive, [44])
    study_uid = str(image.StudyInstanceUID)
    assert drain(worker) == 1
    # A late image reopens the study: assembled again, triaged again.
    (extra,) = send_phantoms(db, archive, [], extra_of=image)
    assert drain(worker) == 1

    (first, _), (second, _) = output_rows(db, study_uid, SR)
    assert first.series_id == second.series_id
    old = pydicom.dcmread(archive / first.path)
    new = pydicom.dcmread(archive / second.path)
    assert "PredecessorDocumentsSequence" not in old
    (study_ref,) = new.PredecessorDocumentsSequence
    assert study_ref.StudyInstanceUID == study_uid
    (series_ref,) = study_ref.ReferencedSeriesSequence
    assert series_ref.SeriesInstanceUID == old.SeriesInstanceUID
    (sop_ref,) = series_ref.ReferencedSOPSequence
    assert sop_ref.ReferencedSOPInstanceUID == old.SOPInstanceUID
    assert (old.InstanceNumber, new.InstanceNumber) == (1, 2)
    _, groups = read_sr(archive / second.path)
    assert {g.sources for g in groups} == {(image.SOPInstanceUID,), (extra.SOPInstanceUID,)}
    assert len(output_rows(db, study_uid, SC)) == 2
    assert _study(db, study_uid).state == StudyState.TRIAGED


def test_a_failure_to_build_outputs_never_fails_the_triage(
    sqlite_db: Database,
    archive: Path,
    models_dir: Path,
    make_worker: WorkerFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    db = sqlite_db

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("highdicom says no")

    monkeypatch.setattr("triage.outputs.writer.build_sr", broken)
    model = load(write_worker_model(models_dir, "chest", n_labels=2))
    (image,) = send_phantoms(db, archive, [45])
    study_uid = str(image.StudyInstanceUID)
    assert drain(make_worker(db, [(model, ENABLED)])) == 1

    study = _study(db, study_uid)
    assert study.state == StudyState.TRIAGED and study.ai_status == "done"
    assert "ai_finding" in [e["rule"] for e in study.priority_explanation]  # AI raised it
    with db.read() as s:
        assert set(s.scalars(select(Job.state))) == {JobState.DONE}
        assert s.scalars(select(Instance.id).where(Instance.study_id == study.id)).all()
    assert output_rows(db, study_uid, SR) == []
    (event,) = audit_events(db, "outputs.failed")
    assert event.outcome == "failure" and event.study_instance_uid == study_uid
    assert "highdicom says no" in event.details["errors"]["sr"]
    assert event.details["model"] == "chest@1.0"
    # The key image does not depend on the SR: it is stored all the same.
    ((row, _),) = output_rows(db, study_uid, SC)
    (stored,) = audit_events(db, "outputs.stored")
    assert stored.details["key_image"] == row.path and "sr" not in stored.details


def test_outputs_can_be_turned_off(
    sqlite_db: Database, archive: Path, models_dir: Path, make_worker: WorkerFactory
) -> None:
    db = sqlite_db
    model = load(write_worker_model(models_dir, "chest", n_labels=2))
    (image,) = send_phantoms(db, archive, [46])
    assert drain(make_worker(db, [(model, ENABLED)], outputs=False)) == 1
    assert _study(db, str(image.StudyInstanceUID)).state == StudyState.TRIAGED
    assert output_rows(db, str(image.StudyInstanceUID), SR) == []
    assert output_rows(db, str(image.StudyInstanceUID), SC) == []
