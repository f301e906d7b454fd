"""The model card: what a model is, what it applies to, and how to feed and read it.

A model lives in ``models_dir/<name>/<version>/`` as ``card.yaml`` beside its ONNX file. The
identity block follows IHE AI Results (AIR) and DICOM TID 4019 algorithm identification
(creator, name, version, UID) and adds the sha256 of the ONNX file, so every finding can name
exactly the model that made it.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Literal, Self

import yaml
from pydantic import Field, ValidationError, field_validator, model_validator

from models.card_blocks import (
    Activation,
    AppliesTo,
    Category,
    Concept,
    Evaluation,
    Frozen,
    Identity,
    InputSpec,
    Interpolation,
    Label,
    ModelStatus,
    Normalisation,
    NormalisationKind,
    Outputs,
    OutputSpec,
    Preprocessing,
    Resize,
    Task,
    ThresholdSource,
    Window,
)
from models.errors import CardError

__all__ = [
    "CARD_FILE",
    "Activation",
    "AppliesTo",
    "Category",
    "Concept",
    "Evaluation",
    "Identity",
    "InputSpec",
    "Interpolation",
    "Label",
    "ModelCard",
    "ModelStatus",
    "Normalisation",
    "NormalisationKind",
    "OutputSpec",
    "Outputs",
    "Preprocessing",
    "Resize",
    "Task",
    "ThresholdSource",
    "Window",
    "card_from_dict",
    "dump_card",
    "format_validation_error",
    "load_card",
]

logger = logging.getLogger(__name__)

CARD_FILE = "card.yaml"
"""The file name of a model card inside a model's version directory."""


class ModelCard(Frozen):
    """A model card (``card.yaml``), validated. An instance is a valid card."""

    schema_version: Literal[1] = 1
    identity: Identity
    task: Task
    applies_to: AppliesTo
    input: InputSpec
    preprocessing: Preprocessing
    outputs: Outputs
    intended_use: str = Field(min_length=1)
    limitations: tuple[str, ...] = ()
    training_data: str = ""
    evaluation: Evaluation = Evaluation()
    regulatory_status: str = Field(min_length=1)
    status: ModelStatus = ModelStatus.SHADOW

    @field_validator("task")
    @classmethod
    def _supported_task(cls, value: Task) -> Task:
        if value is not Task.CLASSIFICATION:
            raise ValueError(
                f"task {value.value!r} is reserved and not supported yet; use 'classification'"
            )
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if tuple(self.preprocessing.resize.size) != self.input.size:
            raise ValueError(
                f"preprocessing.resize.size {list(self.preprocessing.resize.size)} differs from "
                f"the input's height and width {list(self.input.size)}"
            )
        softmax = self.outputs.probabilities.activation is Activation.SOFTMAX
        if softmax and len(self.outputs.labels) < 2:
            raise ValueError("a softmax output needs at least two labels")
        return self

    @property
    def label_names(self) -> tuple[str, ...]:
        """Label names in output order."""
        return tuple(label.name for label in self.outputs.labels)

    @property
    def ref(self) -> str:
        """The model reference ``NAME@VERSION``."""
        return f"{self.identity.name}@{self.identity.version}"


def format_validation_error(source: str, error: ValidationError) -> str:
    """Render a pydantic error as ``card SOURCE: field.path: message`` lines.

    Parameters
    ----------
    source
        What was validated (usually the card's path).
    error
        The validation error.

    Returns
    -------
    str
        One line per problem, each naming the field.
    """
    lines = []
    for item in error.errors():
        where = ".".join(str(part) for part in item["loc"]) or "(card)"
        message = str(item["msg"]).removeprefix("Value error, ")
        lines.append(f"card {source}: {where}: {message}")
    return "\n".join(lines)


def card_from_dict(data: Any, source: str = "<dict>") -> ModelCard:
    """Validate a mapping as a model card.

    Parameters
    ----------
    data
        The parsed YAML.
    source
        Named in error messages.

    Returns
    -------
    ModelCard
        The validated card.

    Raises
    ------
    CardError
        If the data is not a valid card; the message names the source and each bad field.
    """
    if not isinstance(data, dict):
        raise CardError(f"card {source}: expected a mapping at the top level")
    try:
        return ModelCard.model_validate(data)
    except ValidationError as exc:
        raise CardError(format_validation_error(source, exc)) from exc


def load_card(path: Path | str) -> ModelCard:
    """Read and validate a ``card.yaml``.

    Parameters
    ----------
    path
        The card file, or a model's version directory holding ``card.yaml``.

    Returns
    -------
    ModelCard
        The validated card.

    Raises
    ------
    CardError
        If the file is missing, not YAML, or not a valid card. The message names the file and
        the field, e.g. ``card m/1.0/card.yaml: outputs.labels.0.threshold: Input should be
        less than or equal to 1``.
    """
    path = Path(path)
    if path.is_dir():
        path = path / CARD_FILE
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise CardError(f"card {path}: cannot be read: {exc.strerror or exc}") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise CardError(f"card {path}: not valid YAML: {exc}") from exc
    return card_from_dict(data, str(path))


def dump_card(card: ModelCard, path: Path | str) -> Path:
    """Write a card as YAML (keys in schema order).

    Parameters
    ----------
    card
        The card to write.
    path
        The target file, or a directory to write ``card.yaml`` into.

    Returns
    -------
    Path
        The file written.
    """
    path = Path(path)
    if path.is_dir():
        path = path / CARD_FILE
    data = card.model_dump(mode="json")
    text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True, default_flow_style=False)
    path.write_text(text, encoding="utf-8")
    logger.debug("wrote card %s to %s", card.ref, path)
    return path
