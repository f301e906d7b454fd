"""MIMIC-CXR-JPG: three gzipped tables joined by study and image; patient-wise splits."""

from __future__ import annotations

import csv
import dataclasses
import gzip
import io
import re
from collections.abc import Callable
from pathlib import Path

from models.datasets import READERS

READER = READERS["mimic"]
HEADERS = {
    "chexpert": (
        "subject_id,study_id,Atelectasis,Cardiomegaly,Consolidation,Edema,"
        "Enlarged Cardiomediastinum,Fracture,Lung Lesion,Lung Opacity,No Finding,"
        "Pleural Effusion,Pleural Other,Pneumonia,Pneumothorax,Support Devices"
    ),
    "metadata": (
        "dicom_id,subject_id,study_id,PerformedProcedureStepDescription,ViewPosition,Rows,"
        "Columns,StudyDate,StudyTime,ProcedureCodeSequence_CodeMeaning,"
        "ViewCodeSequence_CodeMeaning,PatientOrientationCodeSequence_CodeMeaning"
    ),
    "split": "dicom_id,study_id,subject_id,split",
}
IMAGE = re.compile(r"files/p(\d\d)/p(\d{8})/s(\d{8})/([0-9a-f]{8}(?:-[0-9a-f]{8}){4})\.jpg$")
CODES = {"1.0": 1, "0.0": 0, "-1.0": -1}


def _table(root: Path, name: str) -> list[dict[str, str]]:
    text = gzip.decompress((root / f"mimic-cxr-2.0.0-{name}.csv.gz").read_bytes()).decode()
    return list(csv.DictReader(io.StringIO(text)))


def test_the_tables_are_gzipped_with_the_published_headers(phantom_root: Path) -> None:
    for name, header in HEADERS.items():
        data = (phantom_root / "mimic" / f"mimic-cxr-2.0.0-{name}.csv.gz").read_bytes()
        assert gzip.decompress(data).decode().splitlines()[0] == header


def test_images_labels_and_splits_follow_the_tables(phantom_root: Path) -> None:
    root = phantom_root / "mimic"
    labels = {(r["subject_id"], r["study_id"]): r for r in _table(root, "chexpert")}
    splits = {r["dicom_id"]: r for r in _table(root, "split")}
    records = list(READER.read(root, uncertainty="negative"))
    assert [r.image_id for r in records] == [r["dicom_id"] for r in _table(root, "metadata")]
    for record in records:
        match = IMAGE.search(record.image.relative_to(root).as_posix())
        assert match is not None, record.image
        prefix, subject, study, dicom_id = match.groups()
        assert (record.patient, record.study, record.image_id) == (subject, study, dicom_id)
        assert prefix == subject[:2] and subject[0] == "1" and study[0] == "5"
        row = labels[(subject, study)]
        assert record.findings == {k: CODES[v] for k, v in row.items() if v in CODES}
        assert record.labels["pleural_effusion"] == int(row["Pleural Effusion"] == "1.0")
        assert splits[dicom_id]["study_id"] == study and splits[dicom_id]["subject_id"] == subject
        assert record.split == splits[dicom_id]["split"]
        assert record.sex is None and record.age is None and record.view in {"PA", "AP"}
    assert any(-1 in r.findings.values() for r in records)
    assert {r.split for r in records} == {"train", "validate", "test"}


def test_uncompressed_tables_read_the_same(
    phantom_root: Path, copy_of: Callable[[str], Path]
) -> None:
    root = copy_of("mimic")
    for path in root.glob("*.csv.gz"):
        path.with_suffix("").write_bytes(gzip.decompress(path.read_bytes()))
        path.unlink()
    original = phantom_root / "mimic"
    assert list(READER.read(root)) == [
        dataclasses.replace(r, image=root / r.image.relative_to(original))
        for r in READER.read(original)
    ]


def test_a_study_without_labels_has_unknown_labels(copy_of: Callable[[str], Path]) -> None:
    root = copy_of("mimic")
    path = root / "mimic-cxr-2.0.0-chexpert.csv.gz"
    lines = gzip.decompress(path.read_bytes()).decode().splitlines(keepends=True)
    dropped = lines.pop(1).split(",")[:2]
    path.write_bytes(gzip.compress("".join(lines).encode()))
    records = list(READER.read(root))
    unlabelled = [r for r in records if [r.patient, r.study] == dropped]
    assert unlabelled and all(set(r.labels.values()) == {None} for r in unlabelled)
    assert all(r.findings == {} for r in unlabelled)
    assert all(r.findings for r in records if r not in unlabelled)


def test_without_the_split_table(copy_of: Callable[[str], Path]) -> None:
    root = copy_of("mimic")
    (root / "mimic-cxr-2.0.0-split.csv.gz").unlink()
    assert {r.split for r in READER.read(root)} == {None}
