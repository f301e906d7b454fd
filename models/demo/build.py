"""Train the demo model on synthetic phantoms, export it to ONNX and write its model card.

torch and MONAI are imported lazily, inside :func:`train_demo`, so importing this module (the
``triage`` command line does) costs nothing on the serving path.

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

import numpy as np
from numpy.typing import NDArray

from models.card import CARD_FILE, dump_card
from models.demo.card import (
    DEMO_NAME,
    DEMO_VERSION,
    ONNX_FILE,
    demo_card,
    demo_input_spec,
    demo_preprocessing,
)
from models.phantoms import FINDINGS

__all__ = ["DemoTrainingConfig", "Report", "train_demo"]

logger = logging.getLogger(__name__)

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


def _auroc(labels: NDArray[np.float32], scores: NDArray[np.float32]) -> dict[str, float]:
    from sklearn.metrics import roc_auc_score

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
    from models.demo.data import make_phantom_set
    from models.demo.train import export_demo, fit, predict_onnx

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
