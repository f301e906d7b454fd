"""Outputs of an image that leaves out what it may (no Patient Orientation, no Type 2 patient
attributes): still stored and valid, the SR without an image library."""

from __future__ import annotations

from pathlib import Path

import pydicom
from pydicom.uid import Comprehensive3DSRStorage, SecondaryCaptureImageStorage

from models.card import ModelStatus
from tests.builders.onnx import write_worker_model
from tests.builders.outputs import dciodvfy_errors, output_rows, read_sr
from tests.builders.store import add_study
from tests.builders.worker import WorkerFactory, drain, load
from worklist.db.engine import Database


def test_outputs_of_an_image_without_orientation_or_patient_details(
    sqlite_db: Database, archive: Path, models_dir: Path, make_worker: WorkerFactory
) -> None:
    db = sqlite_db
    model = load(write_worker_model(models_dir, "chest", n_labels=2))
    _, study_uid = add_study(db, archive, brights=(0.9,))
    assert drain(make_worker(db, [(model, ModelStatus.ENABLED)])) == 1

    ((sr_row, _),) = output_rows(db, study_uid, Comprehensive3DSRStorage)
    ((sc_row, _),) = output_rows(db, study_uid, SecondaryCaptureImageStorage)
    for row in (sr_row, sc_row):
        assert dciodvfy_errors(archive / row.path) == []
    sr, groups = read_sr(archive / sr_row.path)
    assert len(groups) == 2 and sr.PatientBirthDate == ""
    assert "Image Library" not in str(sr.ContentSequence)
    sc = pydicom.dcmread(archive / sc_row.path)
    assert sc.PatientOrientation == "" and sc.BurnedInAnnotation == "YES"
