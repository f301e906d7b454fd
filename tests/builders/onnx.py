"""Tiny ONNX graphs, model directories and DICOM files for the models tests (made in memory).

Nothing is trained: the graphs are built with ``onnx.helper`` from seeded random weights.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import yaml
from onnx import TensorProto, helper, numpy_helper
from pydicom.dataset import Dataset

from tests.dicom_factory import dicom_dataset, random_pixels

OPSET = 17

DEMO_LABELS: list[dict[str, Any]] = [
    {"name": n, "code": c, "meaning": m, "category": p}
    for n, c, m, p in [
        ("pneumothorax", "36118008", "Pneumothorax", "P1"),
        ("pleural_effusion", "60046008", "Pleural effusion", "P2"),
        ("nodule_mass", "416940007", "Pulmonary nodule", "P2"),
        ("cardiomegaly", "8186001", "Cardiomegaly", "P3"),
        ("consolidation", "95436008", "Lung consolidation", "P2"),
    ]
]


def _model(graph: onnx.GraphProto) -> bytes:
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model.SerializeToString()


def classifier_onnx(
    n_labels: int = 5,
    size: int = 32,
    channels: int = 1,
    *,
    heatmap: bool = True,
    batch: str | int = "N",
    nan: bool = False,
    seed: int = 0,
) -> bytes:
    """A conv classifier: Conv 3x3 -> GlobalAveragePool -> logits; AveragePool -> heatmap.

    ``nan=True`` adds NaN to the logits, as a broken model would.
    """
    rng = np.random.default_rng(seed)
    weights = rng.standard_normal((n_labels, channels, 3, 3)).astype(np.float32) * 4
    bias = rng.standard_normal(n_labels).astype(np.float32)
    inits = [numpy_helper.from_array(weights, "W"), numpy_helper.from_array(bias, "B")]
    nodes = [
        helper.make_node("Conv", ["image", "W", "B"], ["conv"], pads=[1, 1, 1, 1]),
        helper.make_node("GlobalAveragePool", ["conv"], ["pooled"]),
        helper.make_node("Flatten", ["pooled"], ["flat"], axis=1),
    ]
    if nan:
        inits.append(numpy_helper.from_array(np.array([np.nan], dtype=np.float32), "NAN"))
        nodes.append(helper.make_node("Add", ["flat", "NAN"], ["logits"]))
    else:
        nodes.append(helper.make_node("Identity", ["flat"], ["logits"]))
    outputs = [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [batch, n_labels])]
    if heatmap:
        nodes.append(
            helper.make_node(
                "AveragePool", ["conv"], ["heatmap"], kernel_shape=[4, 4], strides=[4, 4]
            )
        )
        outputs.append(
            helper.make_tensor_value_info(
                "heatmap", TensorProto.FLOAT, [batch, n_labels, size // 4, size // 4]
            )
        )
    graph = helper.make_graph(
        nodes,
        "classifier",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, [batch, channels, size, size])],
        outputs,
        initializer=inits,
    )
    return _model(graph)


def slow_onnx(size: int = 384, steps: int = 200) -> bytes:
    """A graph that takes seconds: ``steps`` chained MatMuls on the input image, one label.

    Every MatMul depends on the input, so nothing is folded at load time, and ONNX Runtime checks
    ``RunOptions.terminate`` between them.
    """
    eye = numpy_helper.from_array(np.eye(size, dtype=np.float32), "EYE")
    shape3 = numpy_helper.from_array(np.array([-1, size, size], dtype=np.int64), "S3")
    shape4 = numpy_helper.from_array(np.array([-1, 1, size, size], dtype=np.int64), "S4")
    nodes = [helper.make_node("Reshape", ["image", "S3"], ["m0"])]
    for i in range(steps):
        nodes.append(helper.make_node("MatMul", [f"m{i}", "EYE"], [f"m{i + 1}"]))
    nodes += [
        helper.make_node("Reshape", [f"m{steps}", "S4"], ["back"]),
        helper.make_node("GlobalAveragePool", ["back"], ["pooled"]),
        helper.make_node("Flatten", ["pooled"], ["logits"], axis=1),
    ]
    graph = helper.make_graph(
        nodes,
        "slow",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 1, size, size])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 1])],
        initializer=[eye, shape3, shape4],
    )
    return _model(graph)


def card_dict(
    name: str = "tiny",
    version: str = "1.0.0",
    sha256: str = "0" * 64,
    *,
    n_labels: int = 5,
    size: int = 32,
    channels: int = 1,
    heatmap: bool = True,
    batch: int = -1,
    status: str = "enabled",
) -> dict[str, Any]:
    """A valid card (as parsed YAML) for :func:`classifier_onnx`."""
    labels = [
        {
            "name": DEMO_LABELS[i]["name"] if i < len(DEMO_LABELS) else f"label_{i}",
            "index": i,
            "concept": {
                "scheme": "SCT",
                "code": DEMO_LABELS[i % len(DEMO_LABELS)]["code"],
                "meaning": DEMO_LABELS[i % len(DEMO_LABELS)]["meaning"],
            },
            "threshold": 0.5,
            "category": DEMO_LABELS[i % len(DEMO_LABELS)]["category"],
        }
        for i in range(n_labels)
    ]
    outputs: dict[str, Any] = {
        "probabilities": {"name": "logits", "activation": "sigmoid"},
        "labels": labels,
    }
    if heatmap:
        outputs["heatmap"] = {"name": "heatmap", "activation": "sigmoid"}
    return {
        "schema_version": 1,
        "identity": {
            "creator": "ICS Triage tests",
            "name": name,
            "version": version,
            "uid": "2.25.1234567890",
            "onnx_file": "model.onnx",
            "sha256": sha256,
        },
        "task": "classification",
        "applies_to": {
            "modalities": ["CR", "DX"],
            "body_parts": ["CHEST"],
            "view_positions": [],
            "sop_classes": [],
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
        "outputs": outputs,
        "intended_use": "Tests only.",
        "limitations": ["Random weights."],
        "training_data": "None.",
        "evaluation": {},
        "regulatory_status": "Not a medical device.",
        "status": status,
    }


def write_model(
    models_dir: Path,
    onnx_bytes: bytes,
    card: Mapping[str, Any] | None = None,
    **card_kwargs: Any,
) -> Path:
    """Write ``models_dir/NAME/VERSION/{model.onnx,card.yaml}`` with the right sha256."""
    data = dict(card) if card is not None else card_dict(**card_kwargs)
    identity = dict(data["identity"])
    identity["sha256"] = hashlib.sha256(onnx_bytes).hexdigest()
    data["identity"] = identity
    directory = models_dir / identity["name"] / identity["version"]
    directory.mkdir(parents=True, exist_ok=True)
    (directory / identity["onnx_file"]).write_bytes(onnx_bytes)
    (directory / "card.yaml").write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return directory


def chest_dataset(
    rows: int = 48,
    columns: int = 40,
    *,
    seed: int = 0,
    photometric: str = "MONOCHROME2",
    bits_stored: int = 12,
) -> Dataset:
    """A small CR chest image with random 12-bit pixels, ready for ``dcmwrite``."""
    return dicom_dataset(
        random_pixels(rows, columns, seed=seed, bits_stored=bits_stored),
        modality="CR",
        patient_id="TEST",
        body_part="CHEST",
        view_position="PA",
        photometric=photometric,
        bits_stored=bits_stored,
    )
