"""Model cards built in code: :func:`card_dict` as parsed YAML, :func:`card` as a ModelCard."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from models.card import ModelCard, card_from_dict

DEMO_LABELS: tuple[tuple[str, str, str, str], ...] = (
    ("pneumothorax", "36118008", "Pneumothorax", "P1"),
    ("pleural_effusion", "60046008", "Pleural effusion", "P2"),
    ("nodule_mass", "416940007", "Pulmonary nodule", "P2"),
    ("cardiomegaly", "8186001", "Cardiomegaly", "P3"),
    ("consolidation", "95436008", "Lung consolidation", "P2"),
)
"""The demo model's findings: name, SNOMED CT code and meaning, category."""

_CONCEPTS = {name: (code, meaning) for name, code, meaning, _ in DEMO_LABELS}


def card_dict(
    name: str = "tiny",
    version: str = "1.0.0",
    sha256: str = "0" * 64,
    *,
    labels: Sequence[tuple[str, float, str]] | None = None,
    n_labels: int = 5,
    size: int = 32,
    channels: int = 1,
    batch: int = -1,
    heatmap: bool = True,
    outputs: tuple[str, str] = ("logits", "heatmap"),
    activation: str = "sigmoid",
    modalities: Sequence[str] = ("CR", "DX"),
    body_parts: Sequence[str] = ("CHEST",),
    view_positions: Sequence[str] = (),
    sop_classes: Sequence[str] = (),
    onnx_file: str = "model.onnx",
    status: str = "enabled",
) -> dict[str, Any]:
    """Return a valid model card as parsed YAML, for the tiny ONNX models of the tests.

    Its defaults describe :func:`tests.builders.onnx.classifier_onnx`; the models of
    :func:`tests.builders.onnx.build_onnx` name other outputs and take no activation.

    Parameters
    ----------
    name, version, sha256 : str, optional
        The identity of the model.
    labels : sequence of (str, float, str) or None, optional
        ``(name, threshold, category)`` per output column; ``None`` takes the first
        ``n_labels`` of :data:`DEMO_LABELS` (threshold 0.5). A label named after a demo finding
        has its SNOMED CT concept; any other has code ``100 + index``.
    n_labels : int, optional
        How many demo labels when ``labels`` is ``None`` (at most five).
    size, channels, batch : int, optional
        The input shape ``[batch, channels, size, size]``; ``batch=-1`` is dynamic.
    heatmap : bool, optional
        Whether the model has a heatmap output.
    outputs : tuple of (str, str), optional
        The names of the probabilities and heatmap outputs.
    activation : str, optional
        The activation applied to both outputs.
    modalities, body_parts, view_positions, sop_classes : sequence of str, optional
        What the model applies to.
    onnx_file, status : str, optional
        The ONNX file's name in the model directory, and the model's status.

    Returns
    -------
    dict
        The card, ready for :func:`models.card.card_from_dict` or ``yaml.safe_dump``.
    """
    if labels is None:
        labels = [(label, 0.5, category) for label, _, _, category in DEMO_LABELS[:n_labels]]
    label_rows = []
    for i, (label, threshold, category) in enumerate(labels):
        code, meaning = _CONCEPTS.get(label, (str(100 + i), label))
        label_rows.append(
            {
                "name": label,
                "index": i,
                "concept": {"scheme": "SCT", "code": code, "meaning": meaning},
                "threshold": threshold,
                "category": category,
            }
        )
    probabilities, heatmap_name = outputs
    card_outputs: dict[str, Any] = {
        "probabilities": {"name": probabilities, "activation": activation},
        "labels": label_rows,
    }
    if heatmap:
        card_outputs["heatmap"] = {"name": heatmap_name, "activation": activation}
    return {
        "schema_version": 1,
        "identity": {
            "creator": "Test",
            "name": name,
            "version": version,
            "uid": "2.25.1234567890",
            "onnx_file": onnx_file,
            "sha256": sha256,
        },
        "task": "classification",
        "applies_to": {
            "modalities": list(modalities),
            "body_parts": list(body_parts),
            "view_positions": list(view_positions),
            "sop_classes": list(sop_classes),
        },
        "input": {"name": "image", "shape": [batch, channels, size, size]},
        "preprocessing": {
            "modality_lut": True,
            "voi_lut": True,
            "window": None,
            "invert_monochrome1": True,
            "resize": {"size": [size, size], "interpolation": "bilinear"},
            "normalisation": {"kind": "minmax"},
        },
        "outputs": card_outputs,
        "intended_use": "Tests only.",
        "limitations": ["Random weights."],
        "training_data": "None.",
        "evaluation": {},
        "regulatory_status": "Not a medical device.",
        "status": status,
    }


def card(name: str = "chest", version: str = "1.0", **kw: Any) -> ModelCard:
    """Return the ModelCard of :func:`card_dict` (named ``chest@1.0`` unless told).

    Parameters
    ----------
    name, version : str, optional
        The model's name and version.
    **kw : Any
        Further arguments of :func:`card_dict`.

    Returns
    -------
    models.card.ModelCard
        The validated card.
    """
    return card_from_dict(card_dict(name, version, **kw))
