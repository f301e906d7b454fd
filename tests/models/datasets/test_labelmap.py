"""Label maps, value parsing and the record: the pieces every reader shares."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from models.card import load_card
from models.datasets import READERS, DatasetError, LabelMap, Record, Uncertainty, load_label_map
from models.datasets.values import Sex, parse_age, parse_sex, parse_view

BUNDLED_CARD = Path(__file__).resolve().parents[3] / "models/bundled/chest-phantom-demo/1.0.0"

MAP = LabelMap("x", {"nodule_mass": ("Nodule", "Mass"), "pneumothorax": ("Pneumothorax",)})


def test_a_card_label_is_positive_when_any_of_its_findings_is() -> None:
    ignore = Uncertainty.IGNORE
    assert MAP.apply({"Mass": 1}, ignore) == {"nodule_mass": 1, "pneumothorax": 0}
    assert MAP.apply({"Nodule": 0, "Mass": 1, "Pneumothorax": 0}, ignore)["nodule_mass"] == 1
    assert MAP.apply({}, ignore) == {"nodule_mass": 0, "pneumothorax": 0}
    assert MAP.apply(None, ignore) == {"nodule_mass": None, "pneumothorax": None}


@pytest.mark.parametrize(
    ("policy", "alone", "with_a_positive", "with_a_negative"),
    [("ignore", None, 1, None), ("negative", 0, 1, 0), ("positive", 1, 1, 1)],
)
def test_uncertain_findings_follow_the_policy(
    policy: str, alone: int | None, with_a_positive: int, with_a_negative: int | None
) -> None:
    uncertainty = Uncertainty(policy)
    assert MAP.apply({"Pneumothorax": -1}, uncertainty)["pneumothorax"] == alone
    assert MAP.apply({"Nodule": -1, "Mass": 1}, uncertainty)["nodule_mass"] == with_a_positive
    assert MAP.apply({"Nodule": -1, "Mass": 0}, uncertainty)["nodule_mass"] == with_a_negative


def test_the_packaged_maps_cover_every_reader_with_the_bundled_card_labels() -> None:
    card_labels = set(load_card(BUNDLED_CARD / "card.yaml").label_names)
    for name, reader in READERS.items():
        label_map = reader.label_map()
        assert label_map.dataset == name and label_map.targets
        assert set(label_map.targets) <= card_labels, name
        if reader.vocabulary is not None:
            assert {n for names in label_map.sources.values() for n in names} <= set(
                reader.vocabulary
            )
    assert set(READERS["nih"].label_map().targets) == card_labels
    assert READERS["siim"].label_map().targets == ("pneumothorax",)


def test_a_custom_map_file_replaces_the_packaged_one(tmp_path: Path) -> None:
    path = tmp_path / "other-card.yaml"
    path.write_text("nih:\n  effusion: Effusion\n  mass_or_nodule: [Mass, Nodule]\n")
    label_map = READERS["nih"].label_map(path)
    assert label_map.sources == {"effusion": ("Effusion",), "mass_or_nodule": ("Mass", "Nodule")}
    assert label_map.origin == str(path)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("chexpert: {}\n", "no section 'nih'"),
        ("nih:\n  pneumothorax: [Pneumothorax, Collapsed lung]\n", "nih.pneumothorax"),
        ("nih:\n  pneumothorax: [1, 2]\n", "expected a finding name"),
        ("nih: [unclosed\n", "is not YAML"),
    ],
)
def test_a_bad_map_file_is_an_error_naming_the_file_and_label(
    tmp_path: Path, text: str, message: str
) -> None:
    path = tmp_path / "map.yaml"
    path.write_text(text)
    with pytest.raises(DatasetError, match=message) as caught:
        READERS["nih"].label_map(path)
    assert str(path) in str(caught.value)


def test_an_absent_map_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="cannot be read"):
        load_label_map("nih", tmp_path / "none.yaml")


@pytest.mark.parametrize(
    ("value", "years"),
    [
        ("58", 58.0),
        ("058Y", 58.0),
        ("58.0", 58.0),
        ("006M", 0.5),
        ("", None),
        (None, None),
        ("414", None),
        ("unknown", None),
    ],
)
def test_ages_in_years_or_dicom_age_strings(value: str | None, years: float | None) -> None:
    assert parse_age(value) == years


def test_sex_and_view_are_folded_into_dicom_terms() -> None:
    assert [parse_sex(v) for v in ("M", "Female", "male", "O", "Unknown", "", None)] == [
        Sex.MALE,
        Sex.FEMALE,
        Sex.MALE,
        Sex.OTHER,
        None,
        None,
        None,
    ]
    assert [parse_view(v) for v in ("PA", "ap", "AP_horizontal", "L", "POSTEROANTERIOR", "")] == [
        "PA",
        "AP",
        "AP",
        "LATERAL",
        "PA",
        None,
    ]


def test_a_record_is_frozen_with_read_only_labels() -> None:
    labels = {"pneumothorax": 1}
    record = Record("x", "1", Path("1.png"), "p", None, labels, {"Pneumothorax": 1})
    labels["pneumothorax"] = 0
    assert record.labels["pneumothorax"] == 1
    with pytest.raises(TypeError):
        record.labels["pneumothorax"] = 0  # type: ignore[index]
    with pytest.raises(dataclasses.FrozenInstanceError):
        record.patient = "q"  # type: ignore[misc]
    assert hash(record) == hash(dataclasses.replace(record))
    assert record == dataclasses.replace(record)
