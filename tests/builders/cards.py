"""Model cards for the triage tests (built in code; no files)."""

from __future__ import annotations

from typing import Any

from models.card import ModelCard, card_from_dict


def card_dict(
    name: str = "chest",
    version: str = "1.0",
    *,
    modalities: tuple[str, ...] = ("CR", "DX"),
    body_parts: tuple[str, ...] = (),
    view_positions: tuple[str, ...] = (),
    sop_classes: tuple[str, ...] = (),
    labels: tuple[tuple[str, float, str], ...] = (("pneumothorax", 0.5, "P1"),),
    size: int = 16,
    heatmap: bool = False,
    sha256: str = "0" * 64,
    onnx_file: str = "model.onnx",
    status: str = "enabled",
    batch: int = -1,
) -> dict[str, Any]:
    outputs: dict[str, Any] = {
        "probabilities": {"name": "probs", "activation": "none"},
        "labels": [
            {
                "name": label,
                "index": i,
                "concept": {"scheme": "SCT", "code": str(100 + i), "meaning": label},
                "threshold": thr,
                "category": cat,
            }
            for i, (label, thr, cat) in enumerate(labels)
        ],
    }
    if heatmap:
        outputs["heatmap"] = {"name": "heat", "activation": "none"}
    return {
        "identity": {
            "creator": "Test",
            "name": name,
            "version": version,
            "uid": "1.2.826.0.1.3680043.8.498.1",
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
        "input": {"name": "image", "shape": [batch, 1, size, size]},
        "preprocessing": {"resize": {"size": [size, size]}},
        "outputs": outputs,
        "intended_use": "tests",
        "regulatory_status": "none",
        "status": status,
    }


def card(name: str = "chest", version: str = "1.0", **kw: Any) -> ModelCard:
    return card_from_dict(card_dict(name, version, **kw))
