from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from models.card import ModelCard, ModelStatus, Task, card_from_dict, dump_card, load_card
from models.errors import CardError, TriageError
from tests.builders.cards import card_dict


def _write(tmp_path: Path, data: Any) -> Path:
    path = tmp_path / "m" / "1.0" / "card.yaml"
    path.parent.mkdir(parents=True)
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def test_good_card_loads_and_round_trips(tmp_path: Path) -> None:
    path = _write(tmp_path, card_dict())
    card = load_card(path)
    assert isinstance(card, ModelCard)
    assert card.label_names == (
        "pneumothorax",
        "pleural_effusion",
        "nodule_mass",
        "cardiomegaly",
        "consolidation",
    )
    assert card.outputs.labels[0].concept.code == "36118008"
    assert card.status is ModelStatus.ENABLED
    assert card.input.fixed_batch is None
    out = dump_card(card, tmp_path / "copy.yaml")
    assert load_card(out) == card
    # a directory is accepted too
    assert load_card(path.parent) == card


def test_card_is_frozen() -> None:
    card = card_from_dict(card_dict())
    with pytest.raises(Exception, match="frozen"):
        card.task = Task.CLASSIFICATION  # type: ignore[misc]  # frozen: refused at run time


def test_status_defaults_to_shadow() -> None:
    data = card_dict()
    del data["status"]
    assert card_from_dict(data).status is ModelStatus.SHADOW


def test_labels_are_ordered_by_index() -> None:
    data = card_dict()
    data["outputs"]["labels"].reverse()
    card = card_from_dict(data)
    assert [label.index for label in card.outputs.labels] == [0, 1, 2, 3, 4]


def _mutate(path: str, value: Any) -> dict[str, Any]:
    data = copy.deepcopy(card_dict())
    *parents, last = path.split(".")
    node: Any = data
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    if isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value
    return data


@pytest.mark.parametrize(
    ("path", "value", "field", "words"),
    [
        (
            "outputs.labels.0.threshold",
            1.5,
            "outputs.labels.0.threshold",
            "less than or equal to 1",
        ),
        ("outputs.labels.1.threshold", -0.1, "outputs.labels.1.threshold", "greater than or equal"),
        ("identity.uid", "1.2.03", "identity.uid", "not a valid DICOM UID"),
        ("identity.uid", "1.2.abc", "identity.uid", "not a valid DICOM UID"),
        ("identity.uid", "1." + "2" * 70, "identity.uid", "at most 64"),
        ("identity.sha256", "xyz", "identity.sha256", "not a sha256"),
        ("identity.onnx_file", "../model.onnx", "identity.onnx_file", "file name"),
        ("task", "detection", "task", "reserved and not supported"),
        ("task", "segmentation", "task", "reserved and not supported"),
        ("task", "regression", "task", "classification"),
        ("input.shape", [-1, 1, 32], "input.shape.3", "Field required"),
        ("input.shape", [-1, 2, 32, 32], "input.shape", "channel dimension"),
        ("input.layout", "NHWC", "input.layout", "NCHW"),
        ("outputs.labels.2.index", 0, "outputs.labels", "unique"),
        ("outputs.labels.4.index", 7, "outputs.labels", "0..4"),
        ("outputs.labels.0.category", "P0", "outputs.labels.0.category", "P1"),
        ("outputs.probabilities.activation", "relu", "outputs.probabilities.activation", "sigmoid"),
        (
            "preprocessing.resize.interpolation",
            "cubic",
            "preprocessing.resize.interpolation",
            "area",
        ),
        ("preprocessing.resize.size", [64, 64], "(card)", "differs from the input"),
        ("preprocessing.normalisation", {"kind": "zscore", "mean": 0.5}, "normalisation", "both"),
        ("status", "live", "status", "shadow"),
        ("applies_to.sop_classes", ["1.2.x"], "applies_to.sop_classes.0", "DICOM UID"),
        ("schema_version", 2, "schema_version", "1"),
    ],
)
def test_bad_card_names_file_and_field(
    tmp_path: Path, path: str, value: Any, field: str, words: str
) -> None:
    card_path = _write(tmp_path, _mutate(path, value))
    with pytest.raises(CardError) as info:
        load_card(card_path)
    message = str(info.value)
    assert message.startswith(f"card {card_path}: ")
    assert field in message
    assert words in message
    assert isinstance(info.value, TriageError)


def test_threshold_message_is_exact(tmp_path: Path) -> None:
    card_path = _write(tmp_path, _mutate("outputs.labels.0.threshold", 1.5))
    with pytest.raises(CardError) as info:
        load_card(card_path)
    assert str(info.value) == (
        f"card {card_path}: outputs.labels.0.threshold: Input should be less than or equal to 1"
    )


def test_unknown_field_is_refused(tmp_path: Path) -> None:
    data = card_dict()
    data["identity"]["colour"] = "blue"
    with pytest.raises(CardError, match=r"identity\.colour: Extra inputs are not permitted"):
        load_card(_write(tmp_path, data))


def test_missing_field_is_named(tmp_path: Path) -> None:
    data = card_dict()
    del data["outputs"]["probabilities"]
    with pytest.raises(CardError, match=r"outputs\.probabilities: Field required"):
        load_card(_write(tmp_path, data))


def test_missing_file_and_bad_yaml(tmp_path: Path) -> None:
    with pytest.raises(CardError, match="cannot be read"):
        load_card(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("identity: [unclosed", encoding="utf-8")
    with pytest.raises(CardError, match="not valid YAML"):
        load_card(bad)
    bad.write_text("- a list\n", encoding="utf-8")
    with pytest.raises(CardError, match="mapping"):
        load_card(bad)


def test_zscore_and_window_are_accepted() -> None:
    data = card_dict()
    data["preprocessing"]["normalisation"] = {"kind": "zscore", "mean": 0.5, "std": 0.25}
    data["preprocessing"]["window"] = {"center": 40, "width": 400}
    card = card_from_dict(data)
    assert card.preprocessing.window is not None
    assert card.preprocessing.window.width == 400


def test_applies_to_matching() -> None:
    card = card_from_dict(card_dict())
    applies = card.applies_to
    assert applies.matches("CR", "CHEST", "PA", "1.2.840.10008.5.1.4.1.1.1")
    assert applies.matches("dx ", "chest", None, None)  # empty view list means any
    assert not applies.matches("CT", "CHEST")
    assert not applies.matches("CR", "ABDOMEN")
    assert not applies.matches("CR", None)
