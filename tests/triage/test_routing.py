from __future__ import annotations

from pathlib import Path

import pytest

from tests.builders.cards import card
from triage.routing import (
    ImageRef,
    RoutingError,
    load_routing,
    parse_routing,
    route_image,
    select_images,
)

CR = "1.2.840.10008.5.1.4.1.1.1"
DX = "1.2.840.10008.5.1.4.1.1.1.1"
SC = "1.2.840.10008.5.1.4.1.1.7"


def img(
    uid: str,
    *,
    modality: str = "CR",
    body: str = "CHEST",
    view: str = "PA",
    sop: str = CR,
    number: str = "",
) -> ImageRef:
    return ImageRef(uid, sop, modality, body, view, f"{uid}.dcm", number)


def test_default_rules_route_by_card_and_skip_derived_objects() -> None:
    rules = load_routing()
    chest = card("chest", modalities=("CR", "DX"), body_parts=("CHEST",))
    ct = card("head", modalities=("CT",))
    images = [
        img("1.1"),
        img("1.2", modality="DX", sop=DX, body="chest "),
        img("1.3", body="ABDOMEN"),
        img("1.4", sop=SC),
        img("1.5", modality="CT"),
    ]
    got = select_images(images, rules, [chest, ct])
    assert {k: [i.sop_instance_uid for i in v] for k, v in got.items()} == {
        "chest@1.0": ["1.1", "1.2"],
        "head@1.0": ["1.5"],
    }


def test_no_applicable_model_gives_empty_selection() -> None:
    assert select_images([img("1.1", modality="MR")], load_routing(), [card()]) == {}
    assert select_images([], load_routing(), [card()]) == {}


def test_first_matching_rule_decides_per_model() -> None:
    rules = parse_routing(
        {
            "rules": [
                {
                    "name": "lateral-not-for-a",
                    "match": {"view_positions": ["LL", "RL"]},
                    "models": ["a"],
                    "action": "skip",
                },
                {
                    "name": "b-v2-only-on-dx",
                    "match": {"modalities": ["CR"]},
                    "models": ["b@2"],
                    "action": "skip",
                },
                {"name": "rest", "models": ["*"]},
            ]
        }
    )
    a, b1, b2 = card("a"), card("b", "1"), card("b", "2")
    lat = img("2.1", view="ll")
    cr = img("2.2")
    assert route_image(lat, rules, a) is None
    assert route_image(lat, rules, b1) is not None
    assert route_image(cr, rules, b2) is None
    rule = route_image(cr, rules, b1)
    assert rule is not None and rule.name == "rest"
    got = select_images([lat, cr], rules, {"x": a, "y": b1, "z": b2})
    assert {k: [i.sop_instance_uid for i in v] for k, v in got.items()} == {
        "a@1.0": ["2.2"],
        "b@1": ["2.1", "2.2"],
    }


def test_unnamed_model_is_not_routed_and_card_criteria_still_apply() -> None:
    rules = parse_routing({"rules": [{"name": "only-a", "models": ["a"]}]})
    assert select_images([img("3.1")], rules, [card("b")]) == {}
    pa_only = card("a", view_positions=("PA",))
    assert select_images([img("3.2", view="AP")], rules, [pa_only]) == {}
    assert list(select_images([img("3.3", view="")], rules, [card("a")])) == ["a@1.0"]
    # A card criterion needs the attribute: an image without ViewPosition is not PA.
    assert select_images([img("3.4", view="")], rules, [pa_only]) == {}


def test_max_images_takes_lowest_instance_numbers() -> None:
    rules = parse_routing({"rules": [{"name": "two", "models": ["*"], "max_images": 2}]})
    images = [
        img("4.3", number="3"),
        img("4.x", number=""),
        img("4.1", number="1"),
        img("4.2", number="2"),
    ]
    got = select_images(images, rules, [card()])
    assert [i.sop_instance_uid for i in got["chest@1.0"]] == ["4.1", "4.2"]


def test_invalid_routing_names_the_field(tmp_path: Path) -> None:
    with pytest.raises(RoutingError, match=r"rules\.0\.action"):
        parse_routing({"rules": [{"name": "x", "action": "maybe"}]})
    with pytest.raises(RoutingError, match="repeated"):
        parse_routing({"rules": [{"name": "x"}, {"name": "x"}]})
    with pytest.raises(RoutingError, match=r"rules\.0\.colour"):
        parse_routing({"rules": [{"name": "x", "colour": "red"}]})
    bad = tmp_path / "r.yaml"
    bad.write_text("rules: [", encoding="utf-8")
    with pytest.raises(RoutingError, match="not valid YAML"):
        load_routing(bad)
    with pytest.raises(RoutingError, match="cannot be read"):
        load_routing(tmp_path / "missing.yaml")
