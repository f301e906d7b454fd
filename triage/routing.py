"""Routing rules as data: which models run on which images of a study.

An image goes to a model when both agree:

1. the model's card applies to it (``card.applies_to``: modality, body part, view position, SOP
   class; an empty list means any), and
2. the site's routing rules route it there. Rules are read from YAML and tried in order; for each
   model the *first* rule that matches the image and names the model (by ``NAME``,
   ``NAME@VERSION`` or ``"*"``) decides: ``action: run`` routes the image, ``action: skip`` keeps
   it away. A model that no matching rule names does not get the image.

Everything here is a pure function of its arguments; the worker reads the archive.

Example (the bundled ``triage/rules/routing.yaml``)::

    version: 1
    rules:
      - name: no-derived-objects
        match: {sop_classes: ["1.2.840.10008.5.1.4.1.1.7"]}
        models: ["*"]
        action: skip
      - name: any-applicable
        models: ["*"]
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field, TypeAdapter
from pydantic.dataclasses import dataclass as pydantic_dataclass

from models.card import ModelCard
from models.errors import Invalid
from triage.rulefile import read_rule_file, validate_rules

__all__ = [
    "DEFAULT_ROUTING_FILE",
    "ImageRef",
    "Match",
    "RoutingAction",
    "RoutingError",
    "RoutingRule",
    "RoutingRules",
    "load_routing",
    "model_matches",
    "parse_routing",
    "route_image",
    "select_images",
]

logger = logging.getLogger(__name__)

DEFAULT_ROUTING_FILE = Path(str(resources.files("triage") / "rules" / "routing.yaml"))
"""The bundled routing rules: every model runs on every image its card applies to."""

_STRICT = ConfigDict(extra="forbid")


class RoutingError(Invalid):
    """A routing file is missing, not YAML, or does not follow the schema."""


class RoutingAction(StrEnum):
    """What a matching rule does for the models it names."""

    RUN = "run"
    SKIP = "skip"


@dataclass(frozen=True)
class ImageRef:
    """One stored image as routing sees it (DICOM attributes, no pixels).

    Parameters
    ----------
    sop_instance_uid, sop_class_uid
        The instance's identity and SOP class.
    modality, body_part, view_position
        Modality (0008,0060), BodyPartExamined (0018,0015), ViewPosition (0018,5101); ``""``
        when absent.
    path
        Where the file is, relative to the archive root.
    instance_number
        InstanceNumber as text (used to order images); ``""`` when absent.
    """

    sop_instance_uid: str
    sop_class_uid: str
    modality: str = ""
    body_part: str = ""
    view_position: str = ""
    path: str = ""
    instance_number: str = ""


def _norm(values: Iterable[str]) -> frozenset[str]:
    return frozenset(v.strip().upper() for v in values)


@pydantic_dataclass(frozen=True, config=_STRICT)
class Match:
    """Image criteria of a rule; an empty tuple means any value (case and blanks ignored)."""

    modalities: tuple[str, ...] = ()
    body_parts: tuple[str, ...] = ()
    view_positions: tuple[str, ...] = ()
    sop_classes: tuple[str, ...] = ()

    def matches(self, image: ImageRef) -> bool:
        """Say whether ``image`` satisfies every non-empty criterion.

        Parameters
        ----------
        image
            The image's attributes.

        Returns
        -------
        bool
            ``True`` when each criterion is empty or contains the image's value.
        """
        pairs = (
            (self.modalities, image.modality),
            (self.body_parts, image.body_part),
            (self.view_positions, image.view_position),
            (self.sop_classes, image.sop_class_uid),
        )
        return all(
            not allowed or value.strip().upper() in _norm(allowed) for allowed, value in pairs
        )


@pydantic_dataclass(frozen=True, config=_STRICT)
class RoutingRule:
    """One rule: for images that ``match``, ``run`` (or ``skip``) the ``models`` named.

    ``max_images`` caps how many images of one study a model gets through this rule (lowest
    InstanceNumber first); ``None`` means all.
    """

    name: Annotated[str, Field(min_length=1)]
    models: Annotated[tuple[str, ...], Field(min_length=1)] = ("*",)
    match: Match = field(default_factory=Match)
    action: RoutingAction = RoutingAction.RUN
    max_images: Annotated[int | None, Field(ge=1)] = None


@pydantic_dataclass(frozen=True, config=_STRICT)
class RoutingRules:
    """The whole routing file."""

    rules: tuple[RoutingRule, ...]
    version: Literal[1] = 1

    def __post_init__(self) -> None:
        names = [r.name for r in self.rules]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ValueError(f"rule names must be unique; repeated: {repeated}")


_ADAPTER: TypeAdapter[RoutingRules] = TypeAdapter(RoutingRules)


def parse_routing(data: Any, source: str = "<routing>") -> RoutingRules:
    """Validate parsed YAML as routing rules.

    Parameters
    ----------
    data
        The parsed YAML mapping.
    source
        Named in error messages.

    Returns
    -------
    RoutingRules
        The validated rules.

    Raises
    ------
    RoutingError
        If the data does not follow the schema; the message names the field.
    """
    return validate_rules(_ADAPTER, data, source, "routing", RoutingError)


def load_routing(path: Path | None = None) -> RoutingRules:
    """Read routing rules from YAML.

    Parameters
    ----------
    path
        The file; ``None`` reads the bundled default.

    Returns
    -------
    RoutingRules
        The validated rules.

    Raises
    ------
    RoutingError
        If the file cannot be read, is not YAML or is not valid.
    """
    path = path or DEFAULT_ROUTING_FILE
    data = read_rule_file(path, "routing", RoutingError)
    return parse_routing(data, str(path))


def model_matches(pattern: str, card: ModelCard) -> bool:
    """Say whether a rule's model pattern names ``card``.

    Parameters
    ----------
    pattern
        ``"*"``, ``NAME`` or ``NAME@VERSION``.
    card
        The model's card.

    Returns
    -------
    bool
        ``True`` when the pattern names the model.
    """
    if pattern == "*":
        return True
    if "@" in pattern:
        return pattern == card.ref
    return pattern == card.identity.name


def _card_applies(card: ModelCard, image: ImageRef) -> bool:
    return card.applies_to.matches(
        image.modality or None,
        image.body_part or None,
        image.view_position or None,
        image.sop_class_uid or None,
    )


def route_image(image: ImageRef, rules: RoutingRules, card: ModelCard) -> RoutingRule | None:
    """Return the rule that sends ``image`` to ``card``'s model, or ``None``.

    Parameters
    ----------
    image
        The image.
    rules
        The routing rules, tried in order.
    card
        The model's card.

    Returns
    -------
    RoutingRule or None
        The first matching rule naming the model when it says ``run`` and the card applies;
        ``None`` otherwise.
    """
    if not _card_applies(card, image):
        return None
    for rule in rules.rules:
        if rule.match.matches(image) and any(model_matches(p, card) for p in rule.models):
            return rule if rule.action is RoutingAction.RUN else None
    return None


def _order_key(image: ImageRef) -> tuple[int, int, str]:
    number = image.instance_number.strip()
    try:
        return (0, int(float(number)), image.sop_instance_uid)
    except ValueError:
        return (1, 0, image.sop_instance_uid)


def select_images(
    study_instances: Sequence[ImageRef],
    rules: RoutingRules,
    cards: Iterable[ModelCard] | Mapping[str, ModelCard],
) -> dict[str, list[ImageRef]]:
    """Select the images of one study that each model should score.

    Parameters
    ----------
    study_instances
        The study's images.
    rules
        The routing rules.
    cards
        The cards of the models that may run (enabled and shadow); a mapping's values are used.

    Returns
    -------
    dict of str to list of ImageRef
        ``{"NAME@VERSION": [images]}`` for every model that gets at least one image; images in
        InstanceNumber order, capped by the deciding rule's ``max_images``.
    """
    card_list = list(cards.values()) if isinstance(cards, Mapping) else list(cards)
    ordered = sorted(study_instances, key=_order_key)
    selected: dict[str, list[ImageRef]] = {}
    for card in card_list:
        per_rule: dict[str, int] = {}
        chosen: list[ImageRef] = []
        for image in ordered:
            rule = route_image(image, rules, card)
            if rule is None:
                continue
            used = per_rule.get(rule.name, 0)
            if rule.max_images is not None and used >= rule.max_images:
                continue
            per_rule[rule.name] = used + 1
            chosen.append(image)
        if chosen:
            selected[card.ref] = chosen
    return selected
