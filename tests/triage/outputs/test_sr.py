"""The TID 1500 SR of a triaged study: valid (dciodvfy), readable (dsrdump), and what it says
comes back through highdicom's srread: probabilities, Present/Absent, the algorithm, the images."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydicom.uid import Comprehensive3DSRStorage
from sqlalchemy import select

from models.card import ModelStatus
from tests.builders.onnx import write_worker_model
from tests.builders.outputs import (
    dciodvfy_errors,
    dsrdump,
    output_rows,
    pixelmed_sr_validation,
    read_sr,
    send_phantoms,
)
from tests.builders.worker import WorkerFactory, drain, load
from worklist.db.engine import Database
from worklist.db.schema import Finding, Job, Study
from worklist.domain import JobKind

ENABLED = ModelStatus.ENABLED


def _findings(db: Database, study_uid: str) -> list[Finding]:
    with db.read() as s:
        rows = list(
            s.scalars(
                select(Finding)
                .join(Study, Finding.study_id == Study.id)
                .where(Study.study_instance_uid == study_uid)
            )
        )
        s.expunge_all()
        return rows


@pytest.mark.parametrize("modality", ["DX", "CR"])
def test_sr_is_valid_and_round_trips(
    sqlite_db: Database, archive: Path, models_dir: Path, make_worker: WorkerFactory, modality: str
) -> None:
    db = sqlite_db
    model = load(write_worker_model(models_dir, "chest", n_labels=2))
    (image,) = send_phantoms(db, archive, [21], modality=modality)
    study_uid = str(image.StudyInstanceUID)
    assert drain(make_worker(db, [(model, ENABLED)])) == 1

    rows = output_rows(db, study_uid, Comprehensive3DSRStorage)
    assert len(rows) == 1
    instance, series = rows[0]
    assert series.modality == "SR"
    assert series.series_instance_uid != image.SeriesInstanceUID
    assert "AI decision support" in series.series_description
    assert "not a diagnosis" in series.series_description
    path = archive / instance.path
    assert dciodvfy_errors(path) == []
    dump = dsrdump(path)
    assert dump.returncode == 0, dump.stderr
    assert "Imaging Measurement Report" in dump.stdout
    assert f'"Device Observer UID")="{model.card.identity.uid}"' in dump.stdout
    assert f'"Device Observer Name")="{model.card.identity.name}"' in dump.stdout
    assert f'"Device Observer Manufacturer")="{model.card.identity.creator}"' in dump.stdout

    sr, groups = read_sr(path)
    assert sr.StudyInstanceUID == study_uid and sr.PatientID == image.PatientID
    assert "PredecessorDocumentsSequence" not in sr
    assert "Image Library" in str(sr.ContentSequence)
    evidence = sr.CurrentRequestedProcedureEvidenceSequence[0].ReferencedSeriesSequence[0]
    assert evidence.ReferencedSOPSequence[0].ReferencedSOPInstanceUID == image.SOPInstanceUID

    findings = _findings(db, study_uid)
    assert len(findings) == len(groups) == 2
    by_code = {(f.concept_scheme, f.concept_code): f for f in findings}
    labels = {lab.name: lab for lab in model.card.outputs.labels}
    assert {g.present for g in groups} == {True, False}  # the two labels add up to 1
    for group in groups:
        found = by_code[group.finding]
        label = labels[found.label]
        assert group.finding == (label.concept.scheme, label.concept.code)
        assert abs(group.probability - found.probability) <= 1e-6
        assert group.present is (found.probability >= label.threshold)
        assert group.algorithm == (model.card.identity.name, model.card.identity.version)
        assert f"threshold={label.threshold!r}" in group.parameters
        assert f"onnx_sha256={model.card.identity.sha256}" in group.parameters
        assert group.sources == (image.SOPInstanceUID,)
    assert len({g.tracking_uid for g in groups}) == 2

    with db.read() as s:  # the SR joined the study without reopening it
        study = s.scalars(select(Study).where(Study.study_instance_uid == study_uid)).one()
        assert study.state == "triaged" and study.instance_count == 3
        assert len(s.scalars(select(Job).where(Job.kind == JobKind.TRIAGE)).all()) == 1


@pytest.mark.slow
def test_pixelmed_finds_no_tid_1500_errors(
    sqlite_db: Database, archive: Path, models_dir: Path, make_worker: WorkerFactory
) -> None:
    db = sqlite_db
    model = load(write_worker_model(models_dir, "chest", n_labels=2))
    (image,) = send_phantoms(db, archive, [22])
    assert drain(make_worker(db, [(model, ENABLED)])) == 1
    ((row, _),) = output_rows(db, str(image.StudyInstanceUID), Comprehensive3DSRStorage)

    report = pixelmed_sr_validation(archive / row.path)
    assert "Found Root Template TID_1500 (MeasurementReport)" in report, report
    assert "Root Template Validation Complete" in report, report
    assert "IOD validation complete" in report, report
    errors = [line for line in report.splitlines() if line.startswith("Error")]
    assert errors == [], report
