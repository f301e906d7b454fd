"""NIH ChestX-ray14: the entries table, the images folders, the official split lists."""

from __future__ import annotations

import csv
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from models.datasets import READERS, DatasetError
from models.phantoms.layouts.common import split_of
from tests.builders.datasets import N

READER = READERS["nih"]
HEADER = (
    "Image Index,Finding Labels,Follow-up #,Patient ID,Patient Age,Patient Gender,"
    "View Position,OriginalImage[Width,Height],OriginalImagePixelSpacing[x,y]"
)


def _edit_rows(path: Path, edit: Callable[[list[list[str]]], None]) -> None:
    with path.open(newline="") as fh:
        rows = list(csv.reader(fh))
    edit(rows)
    with path.open("w", newline="") as fh:
        csv.writer(fh).writerows(rows)


def test_the_copy_has_the_published_header_and_split_lists(phantom_root: Path) -> None:
    root = phantom_root / "nih"
    assert (root / "Data_Entry_2017.csv").read_text().splitlines()[0] == HEADER
    test = (root / "test_list.txt").read_text().split()
    train_val = (root / "train_val_list.txt").read_text().split()
    assert not set(test) & set(train_val) and len(test) + len(train_val) == N
    expected = [f"{i + 1:08d}_000.png" for i in range(N) if split_of(i, ("x", "test")) == "test"]
    assert test == expected


def test_records_carry_the_csv_values(phantom_root: Path) -> None:
    with (phantom_root / "nih" / "Data_Entry_2017.csv").open(newline="") as fh:
        rows = list(csv.reader(fh))[1:]
    records = list(READER.read(phantom_root / "nih"))
    for record, row in zip(records, rows, strict=True):
        assert record.image_id == row[0] and record.patient == row[3]
        assert set(record.findings) == set(row[1].split("|"))
        assert record.age == float(row[4]) and record.sex == row[5] and record.view == row[6]
        assert record.image == phantom_root / "nih" / "images" / row[0]


def test_nodule_or_mass_and_no_finding(copy_of: Callable[[str], Path]) -> None:
    root = copy_of("nih")

    def edit(rows: list[list[str]]) -> None:
        rows[1][1], rows[2][1], rows[3][1] = "Mass|Effusion", "No Finding", "Hernia|Nodule"
        rows[1][4], rows[2][4] = "414", "058Y"

    _edit_rows(root / "Data_Entry_2017.csv", edit)
    first, second, third = list(READER.read(root))[:3]
    assert first.labels == {
        "pneumothorax": 0,
        "pleural_effusion": 1,
        "nodule_mass": 1,
        "cardiomegaly": 0,
        "consolidation": 0,
    }
    assert first.age is None and second.age == 58.0
    assert set(second.labels.values()) == {0} and second.findings == {"No Finding": 1}
    assert third.labels["nodule_mass"] == 1 and third.findings == {"Hernia": 1, "Nodule": 1}


def test_the_kaggle_folders_and_the_v2020_table_are_read(copy_of: Callable[[str], Path]) -> None:
    root = copy_of("nih")
    images = sorted((root / "images").iterdir())
    for i, image in enumerate(images):
        folder = root / f"images_{1 + i % 2:03d}" / "images"
        folder.mkdir(parents=True, exist_ok=True)
        shutil.move(image, folder / image.name)
    (root / "images").rmdir()
    shutil.copy(root / "Data_Entry_2017.csv", root / "Data_Entry_2017_v2020.csv")
    _edit_rows(root / "Data_Entry_2017_v2020.csv", lambda rows: rows[1].__setitem__(3, "999"))
    records = list(READER.read(root))
    assert len(records) == N and records[0].patient == "999"
    assert {r.image.parent.parent.name for r in records} == {"images_001", "images_002"}


def test_without_the_split_lists(copy_of: Callable[[str], Path]) -> None:
    root = copy_of("nih")
    (root / "test_list.txt").unlink()
    assert {r.split for r in READER.read(root)} == {None}
    with pytest.raises(DatasetError, match=r"test_list\.txt"):
        READER.read(root, split="official")


def test_records_carry_the_split_of_the_lists(phantom_root: Path) -> None:
    root = phantom_root / "nih"
    test = (root / "test_list.txt").read_text().split()
    records = list(READER.read(root))
    assert [r.image_id for r in records if r.split == "test"] == test
    assert all(r.split == "train_val" for r in records if r.image_id not in test)
    assert [r.image_id for r in READER.read(root, split="official")] == test
