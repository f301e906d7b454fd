"""CheXpert: train/valid tables, codes 1/0/-1/blank under each policy, patients from paths."""

from __future__ import annotations

import csv
from collections.abc import Callable
from pathlib import Path

import pytest

from models.datasets import READERS, DatasetError, Record

READER = READERS["chexpert"]
HEADER = (
    "Path,Sex,Age,Frontal/Lateral,AP/PA,No Finding,Enlarged Cardiomediastinum,Cardiomegaly,"
    "Lung Opacity,Lung Lesion,Edema,Consolidation,Pneumonia,Atelectasis,Pneumothorax,"
    "Pleural Effusion,Pleural Other,Fracture,Support Devices"
)
CODES = {"1.0": 1, "0.0": 0, "-1.0": -1}
MAPPED = {
    "pneumothorax": "Pneumothorax",
    "pleural_effusion": "Pleural Effusion",
    "nodule_mass": "Lung Lesion",
    "cardiomegaly": "Cardiomegaly",
    "consolidation": "Consolidation",
}


def _rows(root: Path, name: str) -> list[dict[str, str]]:
    with (root / name).open(newline="") as fh:
        return list(csv.DictReader(fh))


def test_both_tables_have_the_published_header(phantom_root: Path) -> None:
    for name in ("train.csv", "valid.csv"):
        assert (phantom_root / "chexpert" / name).read_text().splitlines()[0] == HEADER
    paths = [row["Path"] for row in _rows(phantom_root / "chexpert", "train.csv")]
    assert all(p.startswith("CheXpert-v1.0-small/train/patient") for p in paths)
    assert all(p.endswith("_frontal.jpg") for p in paths)


def test_codes_are_read_as_written_and_resolved_by_each_policy(phantom_root: Path) -> None:
    root = phantom_root / "chexpert"
    rows = _rows(root, "train.csv") + _rows(root, "valid.csv")
    by_policy = {
        p: list(READER.read(root, uncertainty=p)) for p in ("ignore", "negative", "positive")
    }
    seen: set[str] = set()
    for i, row in enumerate(rows):
        record: Record = by_policy["ignore"][i]
        assert record.image_id == row["Path"].split("/", 1)[1]
        labels = list(row)[5:]
        assert record.findings == {k: CODES[row[k]] for k in labels if row[k] in CODES}
        for label, column in MAPPED.items():
            cell = row[column]
            seen.add(cell)
            want = {"1.0": (1, 1, 1), "-1.0": (None, 0, 1)}.get(cell, (0, 0, 0))
            got = tuple(by_policy[p][i].labels[label] for p in ("ignore", "negative", "positive"))
            assert got == want, (row["Path"], column, cell)
    assert {"1.0", "0.0", "-1.0", ""} <= seen


def test_validation_labels_are_certain_and_its_patients_numbered_apart(phantom_root: Path) -> None:
    valid = list(READER.read(phantom_root / "chexpert", split="official"))
    assert valid and all(r.split == "valid" for r in valid)
    assert all(len(r.findings) == 14 for r in valid)  # no blank cell in valid.csv
    assert all(-1 not in r.findings.values() and None not in r.labels.values() for r in valid)
    assert all(int(r.patient.removeprefix("patient")) >= 64541 for r in valid)
    train = list(READER.read(phantom_root / "chexpert", split="train"))
    assert all(int(r.patient.removeprefix("patient")) < 64541 for r in train)
    assert all(r.study.startswith(f"{r.patient}/study") for r in train + valid if r.study)


def test_lateral_views_unknown_sex_and_bad_codes(copy_of: Callable[[str], Path]) -> None:
    root = copy_of("chexpert")
    lines = (root / "valid.csv").read_text().splitlines()
    first = next(csv.reader([lines[1]]))
    first[1], first[3], first[4] = "Unknown", "Lateral", ""
    second = next(csv.reader([lines[2]]))
    second[3], second[4] = "Lateral", "LL"
    lines[1:3] = [",".join(first), ",".join(second)]
    (root / "valid.csv").write_text("\n".join(lines) + "\n")
    one, two = list(READER.read(root, split="valid"))[:2]
    assert (one.view, one.sex, two.view) == ("LATERAL", None, "LL")
    first[7] = "2.0"
    lines[1] = ",".join(first)
    (root / "valid.csv").write_text("\n".join(lines) + "\n")
    with pytest.raises(DatasetError, match=r"valid.csv: column 'Cardiomegaly'.*'2.0'"):
        list(READER.read(root, split="valid"))


def test_a_path_outside_the_layout_is_refused(copy_of: Callable[[str], Path]) -> None:
    root = copy_of("chexpert")
    text = (root / "valid.csv").read_text()
    (root / "valid.csv").write_text(text.replace("/valid/", "/elsewhere/", 1))
    with pytest.raises(DatasetError, match="is not <folder>/<split>/patientN"):
        list(READER.read(root, split="valid"))
