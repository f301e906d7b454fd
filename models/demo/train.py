"""The torch side of the demo model: fit on phantom tensors, export to ONNX, score with ORT.

Imports torch at module level; :mod:`models.demo.build` imports this module only when training.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from numpy.typing import NDArray

from models.demo.net import DemoNet

if TYPE_CHECKING:
    from models.demo.build import DemoTrainingConfig
    from models.demo.data import PhantomSet

__all__ = ["PARITY_TOLERANCE", "export_demo", "fit", "predict_onnx"]

logger = logging.getLogger(__name__)

PARITY_TOLERANCE = 1e-3
"""Largest absolute difference between PyTorch and ONNX Runtime accepted at export."""


def fit(
    config: DemoTrainingConfig,
    train: PhantomSet,
    val: PhantomSet,
    say: Callable[[str], None],
) -> DemoNet:
    """Train a :class:`DemoNet` with AdamW and a one-cycle schedule.

    Parameters
    ----------
    config
        Epochs, batch size, learning rate, threads, seed.
    train, val
        Training tensors, and validation tensors reported after each epoch.
    say
        Progress lines.

    Returns
    -------
    DemoNet
        The trained network, in eval mode.
    """
    from sklearn.metrics import roc_auc_score

    torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    net = DemoNet(n_labels=train.labels.shape[1])
    x = torch.from_numpy(train.images)
    y = torch.from_numpy(train.labels)
    where = torch.from_numpy(train.maps)
    steps = config.epochs * ((len(x) + config.batch_size - 1) // config.batch_size)
    optimiser = torch.optim.AdamW(net.parameters(), lr=config.learning_rate, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimiser, max_lr=config.learning_rate, total_steps=steps, pct_start=0.2
    )
    loss_fn = torch.nn.BCEWithLogitsLoss()
    # finding cells are rare (a nodule covers a few of 256): weight them up, or the heatmap
    # learns to say "nothing here" everywhere and small findings are never learned
    weight = torch.full((train.maps.shape[1], 1, 1), config.map_pos_weight)
    map_loss_fn = torch.nn.BCEWithLogitsLoss(pos_weight=weight)
    shuffle = torch.Generator().manual_seed(config.seed)
    for epoch in range(config.epochs):
        started = time.monotonic()
        net.train()
        order = torch.randperm(len(x), generator=shuffle)
        total = 0.0
        for i in range(0, len(x), config.batch_size):
            idx = order[i : i + config.batch_size]
            logits, heatmap = net(x[idx])
            # image labels, plus where the phantom drew each finding (the heatmap's target)
            loss = loss_fn(logits, y[idx]) + config.map_weight * map_loss_fn(heatmap, where[idx])
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            schedule.step()
            total += float(loss.detach()) * len(idx)
        probs = _predict_torch(net, val.images)
        aucs = [roc_auc_score(val.labels[:, j], probs[:, j]) for j in range(probs.shape[1])]
        say(
            f"epoch {epoch + 1}/{config.epochs}: loss {total / len(x):.4f}, validation AUROC "
            + " ".join(f"{a:.3f}" for a in aucs)
            + f" ({time.monotonic() - started:.0f} s)"
        )
    net.eval()
    return net


def _predict_torch(net: DemoNet, images: NDArray[np.float32]) -> NDArray[np.float32]:
    net.eval()
    out = []
    with torch.no_grad():
        for i in range(0, len(images), 128):
            logits, _ = net(torch.from_numpy(images[i : i + 128]))
            out.append(torch.sigmoid(logits).numpy())
    result: NDArray[np.float32] = np.concatenate(out).astype(np.float32)
    return result


def export_demo(
    net: DemoNet, path: Path, sample: NDArray[np.float32], input_size: int
) -> tuple[str, float]:
    """Export with :func:`models.export.onnx.export_to_onnx`, then check parity on phantoms too.

    :func:`~models.export.onnx.export_to_onnx` writes the graph (dynamic batch; outputs ``logits``
    and ``heatmap``) and compares ONNX Runtime with PyTorch on random inputs; this adds the same
    comparison on preprocessed phantoms, the inputs the model actually sees.

    Parameters
    ----------
    net
        The trained network.
    path
        The ONNX file to write.
    sample
        ``[N, 1, H, W]`` preprocessed phantoms.
    input_size
        Height and width of the input.

    Returns
    -------
    tuple of (str, float)
        The file's sha256 and the largest absolute difference seen over both checks and both
        outputs.
    """
    import onnxruntime as ort

    from models.export.onnx import export_to_onnx

    net.eval()
    # Heatmap logits reach tens in magnitude on the random inputs of the parity check; float32
    # sums of that size differ between runtimes by ~1e-5 relative, hence 1e-3 absolute here.
    result = export_to_onnx(
        net,
        path,
        (1, input_size, input_size),
        "image",
        ("logits", "heatmap"),
        tolerance=PARITY_TOLERANCE,
        seed=1,
    )
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run(["logits", "heatmap"], {"image": sample})
    with torch.no_grad():
        want = net(torch.from_numpy(sample))
    worst = max(
        float(np.max(np.abs(np.asarray(g) - w.numpy()))) for g, w in zip(got, want, strict=True)
    )
    return result.sha256, max(worst, result.max_abs_diff)


def predict_onnx(path: Path, images: NDArray[np.float32]) -> NDArray[np.float32]:
    """Score tensors with ONNX Runtime (CPU) and return sigmoid probabilities ``[N, L]``."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    out = []
    for i in range(0, len(images), 64):
        (logits,) = session.run(["logits"], {"image": images[i : i + 64]})
        out.append(1.0 / (1.0 + np.exp(-np.asarray(logits))))
    result: NDArray[np.float32] = np.concatenate(out).astype(np.float32)
    return result
