"""The Secondary Capture key image: valid (dciodvfy), RGB, banner and heatmap burned in, and
pointing back at the original image, in a series of its own."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.uid import Comprehensive3DSRStorage, SecondaryCaptureImageStorage

from models.card import ModelStatus
from tests.builders.onnx import write_worker_model
from tests.builders.outputs import dciodvfy_errors, output_rows, send_phantoms
from tests.builders.worker import WorkerFactory, drain, load
from triage.outputs.keyimage import banner_lines
from triage.outputs.runs import key_finding, model_runs
from triage.worker.inference import FindingRecord
from worklist.db.engine import Database


def _record(
    label: str, probability: float, *, heatmap: str = "", shadow: bool = False
) -> FindingRecord:
    return FindingRecord(
        sop_instance_uid="1.2.3",
        model_name="chest",
        model_version="1.0",
        model_uid="1.2.3.4",
        model_creator="Test",
        model_sha256="ab" * 32,
        label=label,
        concept_scheme="SCT",
        concept_code="36118008",
        concept_meaning=label.capitalize(),
        probability=probability,
        threshold=0.5,
        crossed=probability >= 0.5,
        category="P1",
        shadow=shadow,
        preprocess_ms=1.0,
        inference_ms=1.0,
        heatmap_path=heatmap,
    )


@pytest.mark.parametrize("modality", ["DX", "CR"])
def test_key_image_is_a_valid_secondary_capture_of_the_original(
    sqlite_db: Database, archive: Path, models_dir: Path, make_worker: WorkerFactory, modality: str
) -> None:
    db = sqlite_db
    model = load(write_worker_model(models_dir, "chest", n_labels=2))
    (image,) = send_phantoms(db, archive, [31], modality=modality)
    study_uid = str(image.StudyInstanceUID)
    assert drain(make_worker(db, [(model, ModelStatus.ENABLED)])) == 1

    rows = output_rows(db, study_uid, SecondaryCaptureImageStorage)
    assert len(rows) == 1
    instance, series = rows[0]
    (sr_row,) = output_rows(db, study_uid, Comprehensive3DSRStorage)
    assert series.series_instance_uid not in (
        image.SeriesInstanceUID,
        sr_row[1].series_instance_uid,
    )
    assert "not a diagnosis" in series.series_description
    path = archive / instance.path
    assert dciodvfy_errors(path) == []

    sc = pydicom.dcmread(path)
    assert sc.SOPClassUID == SecondaryCaptureImageStorage
    assert sc.StudyInstanceUID == study_uid and sc.PatientID == image.PatientID
    assert sc.BurnedInAnnotation == "YES"
    assert (sc.PhotometricInterpretation, sc.SamplesPerPixel) == ("RGB", 3)
    (source,) = sc.SourceImageSequence
    assert source.ReferencedSOPInstanceUID == image.SOPInstanceUID
    assert source.ReferencedSOPClassUID == image.SOPClassUID
    assert list(sc.PatientOrientation) == list(image.PatientOrientation)

    pixels = sc.pixel_array.astype(np.int16)
    assert pixels.shape == (sc.Rows, sc.Columns, 3) and sc.Columns >= 512
    top = pixels[: sc.Rows // 6]
    alert = (top[..., 0] > 200) & (top[..., 1] > 150) & (top[..., 2] < 80)
    assert alert.any()  # the disclaimer line of the banner
    body = pixels[sc.Rows // 3 :]
    assert ((body[..., 0] - body[..., 2]) > 40).mean() > 0.01  # the heatmap (red to yellow)


def test_banner_says_finding_probability_model_and_disclaimer() -> None:
    present = _record("pneumothorax", 0.873)
    (run,) = model_runs("1.2", [present, _record("nodule", 0.2)])
    lines = banner_lines(run, present)
    assert lines[0] == "AI DECISION SUPPORT - NOT A DIAGNOSIS"
    assert "Pneumothorax: PRESENT" in lines[1] and "0.873" in lines[1] and "0.500" in lines[1]
    assert lines[2] == "Model chest 1.0 (Test)"
    assert "absent" in banner_lines(run, _record("nodule", 0.2))[1]


def test_key_finding_prefers_crossed_findings_with_heatmaps() -> None:
    with_map = _record("a", 0.6, heatmap="derived/a.npy")
    crossed = _record("b", 0.9)
    below = _record("c", 0.4)
    assert key_finding([below, crossed, with_map]) is with_map
    assert key_finding([below, crossed]) is crossed
    assert key_finding([below, _record("d", 0.1)]) is below
    with pytest.raises(ValueError, match="no key image"):
        key_finding([])
    assert model_runs("1.2", [_record("a", 0.9, shadow=True)]) == []
