"""Every reader on its layout's phantom copy: images, patients, splits, labels, clear errors."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from collections import Counter, defaultdict
from collections.abc import Callable
from pathlib import Path

import pydicom
import pytest
from PIL import Image

from models.card import load_card
from models.datasets import READERS, DatasetError, LeftOut, Record, Uncertainty
from models.phantoms import LAYOUTS, write_dataset
from tests.builders.datasets import (
    SIZE,
    STUDY_LAYOUTS,
    N,
    Truth,
    patient_first,
    reader_order,
    rewrite_header,
)

BUNDLED_CARD = Path(__file__).resolve().parents[3] / "models/bundled/chest-phantom-demo/1.0.0"
SPLIT_LAYOUTS = [name for name in READERS if READERS[name].splits]


def _read(root: Path, layout: str, split: str = "all", uncertainty: str = "ignore") -> list[Record]:
    return list(READERS[layout].read(root / layout, split=split, uncertainty=uncertainty))


def test_every_phantom_layout_has_a_reader() -> None:
    assert set(READERS) == set(LAYOUTS)
    assert all(READERS[name].name == name for name in READERS)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_every_image_is_read_once_and_opens(phantom_root: Path, layout: str) -> None:
    records = _read(phantom_root, layout)
    assert len(records) == N
    assert len({r.image for r in records}) == N and len({r.image_id for r in records}) == N
    for record in records:
        assert record.dataset == layout and record.image.is_file()
        assert record.image.resolve().is_relative_to((phantom_root / layout).resolve())
        if record.image.suffix in {".dcm", ".dicom"}:
            assert pydicom.dcmread(record.image).pixel_array.shape == (SIZE, SIZE)
        else:
            with Image.open(record.image) as img:
                img.load()
                assert img.size == (SIZE, SIZE)
                assert img.mode in {"L", "I;16"}


@pytest.mark.parametrize("layout", LAYOUTS)
def test_labels_are_card_labels_and_bound_the_truth_under_each_policy(
    phantom_root: Path, truth: Truth, layout: str
) -> None:
    card_labels = load_card(BUNDLED_CARD / "card.yaml").label_names
    expected = truth.of_study(layout)
    positive = _read(phantom_root, layout, uncertainty="positive")
    negative = _read(phantom_root, layout, uncertainty="negative")
    for as_one, as_zero, index in zip(positive, negative, reader_order(layout), strict=True):
        assert as_one.labels and set(as_one.labels) <= set(card_labels)
        for label, value in as_one.labels.items():
            # uncertain as positive keeps every drawn finding; as negative, every absent one
            zero = as_zero.labels[label]
            assert value is not None and value >= expected[index][label], (index, label)
            assert zero is not None and zero <= expected[index][label], (index, label)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_certain_labels_agree_with_the_truth(phantom_root: Path, truth: Truth, layout: str) -> None:
    records = _read(phantom_root, layout, uncertainty="ignore")
    expected = truth.of_study(layout)
    for record, index in zip(records, reader_order(layout), strict=True):
        for label, value in record.labels.items():
            if value is not None:
                assert value == expected[index][label], (layout, record.image_id, label)


@pytest.mark.parametrize("layout", SPLIT_LAYOUTS)
def test_official_splits_keep_each_patient_on_one_side(phantom_root: Path, layout: str) -> None:
    reader = READERS[layout]
    records = _read(phantom_root, layout)
    sides: dict[str, set[str | None]] = defaultdict(set)
    for record in records:
        sides[record.patient].add(record.split)
    assert all(len(s) == 1 for s in sides.values()), {p: s for p, s in sides.items() if len(s) > 1}
    assert {r.split for r in records} == set(reader.splits)
    official = _read(phantom_root, layout, split="official")
    assert official and {r.split for r in official} == {reader.evaluation_split}
    assert [r.image_id for r in official] == [
        r.image_id for r in records if r.split == reader.evaluation_split
    ]
    for split in reader.splits:
        assert {r.split for r in _read(phantom_root, layout, split=split)} == {split}


@pytest.mark.parametrize("layout", (*STUDY_LAYOUTS, "siim"))
def test_patients_have_several_images_and_keep_their_sex_and_age(
    phantom_root: Path, layout: str
) -> None:
    records = _read(phantom_root, layout)
    per_patient = Counter(r.patient for r in records)
    assert max(per_patient.values()) >= 2 and len(per_patient) >= 5
    for patient in per_patient:
        mine = [r for r in records if r.patient == patient]
        assert len({(r.sex, r.age) for r in mine}) == 1, patient
    if layout in STUDY_LAYOUTS:
        studies = Counter(r.study for r in records)
        assert max(studies.values()) == 2
        for study in studies:
            assert len({tuple(r.labels.items()) for r in records if r.study == study}) == 1


@pytest.mark.parametrize("layout", ["generic", "nih", "rsna", "siim", "vindr"])
def test_sex_age_and_view_come_from_the_csv_or_the_dicom_header(
    phantom_root: Path, truth: Truth, layout: str
) -> None:
    for record, index in zip(_read(phantom_root, layout), reader_order(layout), strict=True):
        first = patient_first(layout)[index] if layout == "siim" else index
        assert (record.sex, record.age) == (truth.sex[first], truth.age[first])
        assert record.view == truth.view[index]


MAIN_FILES: dict[str, tuple[str, str]] = {
    "generic": ("labels.csv", "sop_instance_uid"),
    "nih": ("Data_Entry_2017.csv", "Patient ID"),
    "rsna": ("stage_2_train_labels.csv", "Target"),
    "chexpert": ("valid.csv", "Pleural Effusion"),
    "mimic": ("mimic-cxr-2.0.0-metadata.csv.gz", "dicom_id"),
    "siim": ("train-rle.csv", "EncodedPixels"),
    "vindr": ("annotations/image_labels_test.csv", "Nodule/Mass"),
    "padchest": ("PADCHEST_chest_x_ray_images_labels_160K_01.02.19.csv", "Labels"),
}
"""A labels file of each layout and a column its reader needs."""


@pytest.mark.parametrize("layout", LAYOUTS)
def test_a_missing_column_is_an_error_naming_it_and_the_file(
    copy_of: Callable[[str], Path], layout: str
) -> None:
    root = copy_of(layout)
    name, column = MAIN_FILES[layout]
    path = root / name
    if path.suffix == ".gz":
        text = gzip.decompress(path.read_bytes()).decode()
        path.unlink()
        path = path.with_suffix("")
        path.write_text(text)
    rewrite_header(path, column, "Something Else")
    with pytest.raises(DatasetError) as caught:
        list(READERS[layout].read(root))
    message = str(caught.value)
    assert repr(column) in message and path.name in message


@pytest.mark.parametrize("layout", LAYOUTS)
def test_a_missing_file_is_an_error_naming_it(copy_of: Callable[[str], Path], layout: str) -> None:
    root = copy_of(layout)
    name, _ = MAIN_FILES[layout]
    (root / name).unlink()
    with pytest.raises(DatasetError) as caught:
        list(READERS[layout].read(root))
    assert Path(name).name.replace(".gz", "").replace(".csv", "") in str(caught.value)


def test_a_missing_folder_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="does not exist"):
        READERS["nih"].read(tmp_path / "nowhere")


@pytest.mark.parametrize("layout", ["generic", "rsna", "siim", "padchest"])
def test_official_split_of_a_dataset_without_one_is_refused(
    phantom_root: Path, layout: str
) -> None:
    with pytest.raises(DatasetError, match="no official split"):
        READERS[layout].read(phantom_root / layout, split="official")


def test_unknown_split_uncertainty_or_missing_option_is_refused(phantom_root: Path) -> None:
    reader = READERS["chexpert"]
    with pytest.raises(DatasetError, match="split must be one of all, official, train, valid"):
        reader.read(phantom_root / "chexpert", split="test")
    with pytest.raises(DatasetError, match="uncertainty must be one of ignore"):
        reader.read(phantom_root / "chexpert", uncertainty="maybe")
    with pytest.raises(DatasetError, match="missing must be"):
        reader.read(phantom_root / "chexpert", missing="ignore")  # type: ignore[arg-type]


@pytest.mark.parametrize("layout", LAYOUTS)
def test_a_missing_image_raises_or_is_skipped(copy_of: Callable[[str], Path], layout: str) -> None:
    root = copy_of(layout)
    victim = next(iter(READERS[layout].read(root))).image
    victim.unlink()
    with pytest.raises(DatasetError, match="does not exist"):
        list(READERS[layout].read(root))
    left_out: list[LeftOut] = []
    kept = list(READERS[layout].read(root, missing="skip", left_out=left_out))
    assert len(kept) == N - 1 and victim not in {r.image for r in kept}
    # (SIIM's reader names where it looked: its images are found by name under any folder)
    assert [(item.image.name, item.reason) for item in left_out] == [(victim.name, "absent")]


@pytest.mark.parametrize("layout", ["rsna", "siim", "vindr", "generic"])
def test_an_unreadable_dicom_header_raises_or_is_skipped(
    copy_of: Callable[[str], Path], layout: str
) -> None:
    root = copy_of(layout)
    victim = list(READERS[layout].read(root))[2].image
    victim.write_bytes(b"DICM but not really")
    with pytest.raises(DatasetError, match=rf"{victim.name}.*--skip-bad-images"):
        list(READERS[layout].read(root))
    left_out: list[LeftOut] = []
    kept = list(READERS[layout].read(root, missing="skip", left_out=left_out))
    assert len(kept) == N - 1 and victim not in {r.image for r in kept}
    assert [(item.image, item.reason) for item in left_out] == [(victim, "unreadable")]
    assert "cannot be read as DICOM" in left_out[0].detail


def test_uncertainty_policies_are_values_of_the_enum() -> None:
    assert [u.value for u in Uncertainty] == ["ignore", "negative", "positive"]
    assert {name for name in READERS if READERS[name].uncertain} == {"chexpert", "mimic", "vindr"}


def test_importing_the_readers_loads_neither_numpy_nor_pydicom() -> None:
    probe = (
        "import json, sys, models.datasets; "
        "print(json.dumps([m for m in ('numpy', 'pydicom', 'PIL') if m in sys.modules]))"
    )
    root = Path(__file__).resolve().parents[3]
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=root, capture_output=True, text=True, check=True
    )
    assert json.loads(done.stdout) == []


@pytest.mark.parametrize("layout", LAYOUTS)
def test_the_same_seed_writes_the_same_bytes(tmp_path: Path, layout: str) -> None:
    def tree(root: Path) -> dict[str, bytes]:
        return {
            p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()
        }

    one, two = tmp_path / "a", tmp_path / "b"
    for root in (one, two):
        write_dataset(root, 6, 3, layout, size=SIZE)
    assert tree(one) == tree(two)
    assert len(tree(one)) > 6
