"""The card skeleton written beside an exported model, for its author to complete."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from pydicom.uid import generate_uid

from models.card import (
    CARD_FILE,
    Activation,
    AppliesTo,
    Category,
    Concept,
    Evaluation,
    Identity,
    InputSpec,
    Label,
    ModelCard,
    ModelStatus,
    Outputs,
    OutputSpec,
    Preprocessing,
    Resize,
    Task,
    dump_card,
)
from models.errors import ExportError

__all__ = ["LOCAL_SCHEME", "ExportResult", "card_skeleton", "chw", "write_card_skeleton"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ExportResult:
    """An exported ONNX file and how closely it matches the PyTorch network."""

    path: Path
    sha256: str
    max_abs_diff: float
    output_names: tuple[str, ...]


LOCAL_SCHEME = "99ICSTRIAGE"
"""Coding scheme of placeholder concepts in a card skeleton (a DICOM private scheme)."""


def chw(input_shape: Sequence[int]) -> tuple[int, int, int]:
    """Return ``(C, H, W)`` from ``(C, H, W)`` or ``(N, C, H, W)``.

    Raises
    ------
    ExportError
        If the shape has another length or a dimension is not positive.
    """
    dims = tuple(int(d) for d in input_shape)
    if len(dims) == 4:
        dims = dims[1:]
    if len(dims) != 3 or min(dims) <= 0:
        raise ExportError(f"input_shape must be (C, H, W) or (N, C, H, W); got {input_shape}")
    return dims[0], dims[1], dims[2]


def card_skeleton(
    result: ExportResult,
    *,
    name: str,
    version: str,
    input_shape: Sequence[int],
    labels: Sequence[str],
    input_name: str = "image",
    activation: Activation = Activation.SIGMOID,
    creator: str = "ICS Triage project",
    modalities: Sequence[str] = ("CR", "DX"),
    category: Category = "P3",
    threshold: float = 0.5,
) -> ModelCard:
    """Write-ready card for an exported model, to be completed by its author.

    Concepts get a placeholder private coding scheme (``99ICSTRIAGE``), every label the same
    threshold and category, and the status ``shadow``: edit them before enabling the model.

    Parameters
    ----------
    result
        The export's result (file name, sha256, parity).
    name, version
        The model's identity.
    input_shape
        ``(C, H, W)`` or ``(N, C, H, W)``.
    labels
        Label names in output order.
    input_name
        The graph's input name.
    activation
        Activation of the probabilities output.
    creator
        The model's creator.
    modalities
        Modalities it applies to.
    category, threshold
        Defaults for every label.

    Returns
    -------
    ModelCard
        A valid card.
    """
    c, h, w = chw(input_shape)
    heatmap = (
        OutputSpec(name=result.output_names[1], activation=Activation.SIGMOID)
        if len(result.output_names) > 1
        else None
    )
    return ModelCard(
        identity=Identity(
            creator=creator,
            name=name,
            version=version,
            uid=generate_uid(),
            onnx_file=result.path.name,
            sha256=result.sha256,
        ),
        task=Task.CLASSIFICATION,
        applies_to=AppliesTo(modalities=tuple(modalities)),
        input=InputSpec(name=input_name, shape=(-1, c, h, w)),
        preprocessing=Preprocessing(resize=Resize(size=(h, w))),
        outputs=Outputs(
            probabilities=OutputSpec(name=result.output_names[0], activation=activation),
            heatmap=heatmap,
            labels=tuple(
                Label(
                    name=label,
                    index=i,
                    concept=Concept(scheme=LOCAL_SCHEME, code=label, meaning=label),
                    threshold=threshold,
                    category=category,
                )
                for i, label in enumerate(labels)
            ),
        ),
        intended_use="To be written by the model's author before the model is enabled.",
        limitations=("Card skeleton written by `triage models export`; not yet reviewed.",),
        training_data="Unknown (exported network).",
        evaluation=Evaluation(parity_max_abs_diff=result.max_abs_diff),
        regulatory_status="Not assessed. Not for clinical use.",
        status=ModelStatus.SHADOW,
    )


def write_card_skeleton(card: ModelCard, directory: Path) -> Path:
    """Write ``card.yaml`` into a model's directory.

    Parameters
    ----------
    card
        The card.
    directory
        The model's version directory.

    Returns
    -------
    Path
        The card file.
    """
    directory.mkdir(parents=True, exist_ok=True)
    return dump_card(card, directory / CARD_FILE)
