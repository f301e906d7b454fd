"""Train the demo model on synthetic phantoms, export it to ONNX and write its model card.

torch and MONAI are imported lazily, inside the functions that train and export, so importing
this module (the ``triage`` command line does) costs nothing on the serving path.

The result, ``<out>/chest-phantom-demo/1.0.0/{card.yaml, model.onnx}``, is a real model in the
project's format: a MONAI residual CNN with a class-activation heatmap output, exported with a
parity check against PyTorch, with held-out AUROC per label in its card. It was trained on
synthetic phantoms only and is not for clinical use.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from pydicom.uid import generate_uid

from models.card import (
    CARD_FILE,
    InputSpec,
    ModelCard,
    Preprocessing,
    card_from_dict,
    dump_card,
)
from models.phantoms import FINDINGS

__all__ = [
    "DEMO_LABELS",
    "DEMO_NAME",
    "DEMO_VERSION",
    "DemoTrainingConfig",
    "demo_card",
    "demo_input_spec",
    "demo_preprocessing",
    "train_demo",
]

logger = logging.getLogger(__name__)

DEMO_NAME = "chest-phantom-demo"
DEMO_VERSION = "1.0.0"
ONNX_FILE = "model.onnx"

DEMO_LABELS: tuple[tuple[str, str, str, str], ...] = (
    ("pneumothorax", "36118008", "Pneumothorax", "P1"),
    ("pleural_effusion", "60046008", "Pleural effusion", "P2"),
    ("nodule_mass", "416940007", "Pulmonary nodule", "P2"),
    ("cardiomegaly", "8186001", "Cardiomegaly", "P3"),
    ("consolidation", "95436008", "Lung consolidation", "P2"),
)
"""``(name, SNOMED CT code, meaning, category)`` in output order."""

Report = Callable[[str], None]


@dataclass(frozen=True)
class DemoTrainingConfig:
    """How the demo model is trained (defaults: a few minutes on two CPU cores).

    Attributes
    ----------
    out_dir
        The models directory to write ``chest-phantom-demo/1.0.0/`` into.
    n_train, n_val, n_test
        Training phantoms; validation phantoms (same seed stream, used to pick each label's
        threshold); held-out test phantoms (a different seed, full matrix-size range) for AUROC.
    seed
        Seed of the training set and of the network's initialisation; the test set uses
        ``seed + 1``.
    epochs, batch_size, learning_rate
        Optimisation.
    input_size
        Height and width of the input tensor.
    map_weight
        Weight of the heatmap loss: the heatmap is also trained to show where each finding was
        drawn (the phantoms' masks, at the heatmap's size), besides the image labels.
    map_pos_weight
        Weight of the finding cells in the heatmap loss (they are rare).
    threads
        torch intra-op threads.
    workers
        Processes generating phantoms.
    """

    out_dir: Path
    n_train: int = 3000
    n_val: int = 400
    n_test: int = 400
    seed: int = 0
    epochs: int = 10
    batch_size: int = 32
    learning_rate: float = 3e-3
    input_size: int = 128
    map_weight: float = 1.0
    map_pos_weight: float = 20.0
    threads: int = 2
    workers: int = 2


def demo_preprocessing(input_size: int = 128) -> Preprocessing:
    """Return the preprocessing block of the demo card.

    Parameters
    ----------
    input_size
        Height and width of the model input.

    Returns
    -------
    models.card.Preprocessing
        Modality LUT, the dataset's VOI window, MONOCHROME1 inverted, bilinear resize, min-max.
    """
    return Preprocessing.model_validate(
        {
            "modality_lut": True,
            "voi_lut": True,
            "window": None,
            "invert_monochrome1": True,
            "resize": {"size": [input_size, input_size], "interpolation": "bilinear"},
            "normalisation": {"kind": "minmax"},
        }
    )


def demo_input_spec(input_size: int = 128) -> InputSpec:
    """Return the input block of the demo card: ``image``, ``[-1, 1, size, size]`` float32.

    Parameters
    ----------
    input_size
        Height and width of the model input.

    Returns
    -------
    models.card.InputSpec
        The input block.
    """
    return InputSpec(name="image", shape=(-1, 1, input_size, input_size))


def demo_card(
    *,
    sha256: str,
    input_size: int = 128,
    thresholds: dict[str, float] | None = None,
    evaluation: dict[str, Any] | None = None,
    training_data: str = "",
) -> ModelCard:
    """Build the demo model's card.

    Parameters
    ----------
    sha256
        Digest of the ONNX file.
    input_size
        Height and width of the input.
    thresholds
        Operating point per label (default 0.5).
    evaluation
        The card's evaluation block.
    training_data
        How the model was trained.

    Returns
    -------
    models.card.ModelCard
        The validated card.
    """
    thresholds = thresholds or {}
    labels = [
        {
            "name": name,
            "index": i,
            "concept": {"scheme": "SCT", "code": code, "meaning": meaning},
            "threshold": round(float(thresholds.get(name, 0.5)), 4),
            "category": category,
        }
        for i, (name, code, meaning, category) in enumerate(DEMO_LABELS)
    ]
    data = {
        "schema_version": 1,
        "identity": {
            "creator": "ICS Triage project",
            "name": DEMO_NAME,
            "version": DEMO_VERSION,
            "uid": str(generate_uid(entropy_srcs=["ics-triage-model", DEMO_NAME, DEMO_VERSION])),
            "onnx_file": ONNX_FILE,
            "sha256": sha256,
        },
        "task": "classification",
        "applies_to": {
            "modalities": ["CR", "DX"],
            "body_parts": ["CHEST"],
            "view_positions": ["PA", "AP"],
            "sop_classes": ["1.2.840.10008.5.1.4.1.1.1", "1.2.840.10008.5.1.4.1.1.1.1"],
        },
        "input": demo_input_spec(input_size).model_dump(mode="json"),
        "preprocessing": demo_preprocessing(input_size).model_dump(mode="json"),
        "outputs": {
            "probabilities": {"name": "logits", "activation": "sigmoid"},
            "heatmap": {"name": "heatmap", "activation": "sigmoid"},
            "labels": labels,
        },
        "intended_use": (
            "Demonstration and testing of the ICS triage pipeline only: scores synthetic chest "
            "radiograph phantoms generated by models.phantoms. SYNTHETIC DEMO - NOT FOR CLINICAL "
            "USE; its outputs mean nothing for real patients."
        ),
        "limitations": [
            "Trained only on synthetic phantoms (models.phantoms); it has never seen a real "
            "radiograph and its scores on real images are meaningless.",
            "Small network at 128x128 input: small nodules and subtle findings are missed.",
            "Heatmaps are coarse (input/8) class-activation maps.",
        ],
        "training_data": training_data
        or "Synthetic chest radiograph phantoms generated by models.phantoms.",
        "evaluation": evaluation or {},
        "regulatory_status": "Not a medical device. Synthetic demo, not for clinical use.",
        "status": "enabled",
    }
    return card_from_dict(data, f"{DEMO_NAME}@{DEMO_VERSION}")


def _auroc(labels: NDArray[np.float32], scores: NDArray[np.float32]) -> dict[str, float]:
    from sklearn.metrics import roc_auc_score  # type: ignore[import-untyped]

    return {
        name: round(float(roc_auc_score(labels[:, i], scores[:, i])), 4)
        for i, name in enumerate(FINDINGS)
    }


def _youden_thresholds(labels: NDArray[np.float32], probs: NDArray[np.float32]) -> dict[str, float]:
    """Pick each label's threshold at the maximum of Youden's J on the validation set.

    The threshold is put halfway between the lowest score kept and the next score below it,
    not on a validation score itself, so that it does not sit on the edge of the positives.
    """
    from sklearn.metrics import roc_curve

    out = {}
    for i, name in enumerate(FINDINGS):
        fpr, tpr, thr = roc_curve(labels[:, i], probs[:, i])
        j = int(np.argmax(tpr - fpr))
        below = float(thr[j + 1]) if j + 1 < len(thr) else 0.0
        out[name] = float(np.clip((float(thr[j]) + below) / 2.0, 0.01, 0.99))
    return out


def train_demo(config: DemoTrainingConfig, report: Report | None = None) -> Path:
    """Train, export and card the demo model.

    Parameters
    ----------
    config
        Sizes, seed and optimisation settings.
    report
        Called with one line per step (progress for the command line).

    Returns
    -------
    pathlib.Path
        The written ``card.yaml``.
    """
    from models.demo_data import make_phantom_set
    from models.demo_train import export_demo, fit, predict_onnx

    say = report or (lambda line: logger.info("%s", line))
    started = time.monotonic()
    prep = demo_preprocessing(config.input_size)
    spec = demo_input_spec(config.input_size)
    say(f"generating {config.n_train + config.n_val} training/validation phantoms")
    cells = config.input_size // 8  # the heatmap's size (three stride-2 stages)
    train = make_phantom_set(
        config.seed, 0, config.n_train, prep, spec, map_size=cells, workers=config.workers
    )
    val = make_phantom_set(
        config.seed, config.n_train, config.n_val, prep, spec, workers=config.workers
    )
    say(f"generating {config.n_test} held-out test phantoms (seed {config.seed + 1})")
    test = make_phantom_set(
        config.seed + 1, 0, config.n_test, prep, spec, sizes=None, workers=config.workers
    )
    say(f"data ready after {time.monotonic() - started:.0f} s; training")
    net = fit(config, train, val, say)

    target = config.out_dir / DEMO_NAME / DEMO_VERSION
    target.mkdir(parents=True, exist_ok=True)
    onnx_path = target / ONNX_FILE
    digest, parity = export_demo(net, onnx_path, val.images[:16], config.input_size)
    say(f"exported {onnx_path} ({onnx_path.stat().st_size / 1e6:.1f} MB), parity {parity:.2e}")

    val_probs = predict_onnx(onnx_path, val.images)
    thresholds = _youden_thresholds(val.labels, val_probs)
    test_probs = predict_onnx(onnx_path, test.images)
    auroc = _auroc(test.labels, test_probs)
    say("held-out AUROC: " + ", ".join(f"{k} {v:.3f}" for k, v in auroc.items()))
    evaluation = {
        "auroc": auroc,
        "dataset": (
            f"{config.n_test} held-out synthetic phantoms (models.phantoms, set seed "
            f"{config.seed + 1}, matrix 384..1024, findings drawn independently with p=0.3)"
        ),
        "parity_max_abs_diff": float(parity),
        "prevalence": {
            n: round(float(v), 3) for n, v in zip(FINDINGS, test.labels.mean(0), strict=True)
        },
        "thresholds_from": f"Youden's J on {config.n_val} validation phantoms (seed {config.seed})",
    }
    training_data = (
        f"{config.n_train} synthetic chest radiograph phantoms from models.phantoms (set seed "
        f"{config.seed}, matrix 160..448, DX and CR, MONOCHROME1 and MONOCHROME2, findings drawn "
        f"independently with p=0.3); labels per image plus the phantoms' finding masks as targets "
        f"of the heatmap; {config.epochs} epochs, batch {config.batch_size}, AdamW; "
        "reproduce with: triage models train-demo --out models/bundled"
    )
    card = demo_card(
        sha256=digest,
        input_size=config.input_size,
        thresholds=thresholds,
        evaluation=evaluation,
        training_data=training_data,
    )
    card_path = dump_card(card, target / CARD_FILE)
    say(f"wrote {card_path} in {time.monotonic() - started:.0f} s")
    return card_path
